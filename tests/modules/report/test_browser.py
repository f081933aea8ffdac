"""Playwright: a citizen files a report with a photo on a phone; the officer sees it arrive live."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright, expect
from tests.fixtures.app import make_settings

from townhall.core.config import Settings

from .conftest import World, jpeg, serving

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url  # one browser run is enough; the API tests cover PostgreSQL


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        job_poll_seconds=0.05,
        report_tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png",  # tiles cannot load
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run scripts/test-deps.sh"
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def test_citizen_files_on_a_phone_and_the_officer_sees_it_live(
    app: FastAPI, world: World, browser: Browser, tmp_path: Path
) -> None:
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(jpeg((90, 90, 90), (320, 240)))
    async with serving(app) as port:
        base = f"http://127.0.0.1:{port}"
        officer_ctx = await browser.new_context()
        await officer_ctx.add_cookies(
            [
                {
                    "name": "th_access",
                    "value": world.users["roads_officer"]["access_token"],
                    "url": base,
                }
            ]
        )
        officer = await officer_ctx.new_page()
        await officer.goto(f"{base}/reports/staff")
        await expect(officer.locator("#live")).to_have_text("live", timeout=15000)

        citizen_ctx = await browser.new_context(viewport={"width": 390, "height": 800})
        await citizen_ctx.add_cookies(
            [{"name": "th_access", "value": world.users["alice"]["access_token"], "url": base}]
        )
        citizen = await citizen_ctx.new_page()
        errors: list[str] = []
        citizen.on("pageerror", lambda e: errors.append(str(e)))
        await citizen.goto(f"{base}/reports")
        await expect(citizen.locator("#map-note")).to_be_visible(timeout=15000)  # list fallback
        await citizen.locator("#photos").set_input_files(str(photo))
        await citizen.locator("#lat").fill("35.8242")
        await citizen.locator("#lng").fill("127.1480")
        await citizen.locator("#title").fill("Pothole by the market")
        await citizen.locator("#description").fill("도로 포트홀 위험 deep pothole")
        await expect(citizen.locator("#suggest")).to_contain_text("Pothole")
        await citizen.get_by_role("button", name="Check nearby reports").click()
        await expect(citizen.locator("#dupes")).to_contain_text("Nothing similar nearby")
        await citizen.get_by_role("button", name="Send report").click()
        await expect(citizen).to_have_url(re.compile(r"/reports/view/"), timeout=15000)
        await expect(citizen.get_by_role("heading", level=1)).to_contain_text(
            "Pothole by the market"
        )

        await expect(officer.locator("#toast")).to_contain_text("New report", timeout=15000)
        await expect(officer.locator("#rows")).to_contain_text("Pothole by the market")
        await officer.get_by_role("link", name="Pothole by the market").click()
        await expect(officer.get_by_text("AI analysis")).to_be_visible()
        await officer.get_by_role("button", name="Assign to me").click()
        await expect(officer.get_by_role("heading", level=1)).to_contain_text("assigned")
        await citizen.goto(f"{base}/reports")
        await expect(citizen.locator("#mine")).to_contain_text("assigned")
        assert errors == []
        await officer_ctx.close()
        await citizen_ctx.close()
