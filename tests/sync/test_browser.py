"""Playwright: two windows (SSE and WebSocket) share the demo board and reconnect by themselves."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Request, async_playwright, expect

from tests.fixtures.app import make_settings, signup
from tests.sync.conftest import API
from tests.sync.test_live import (  # noqa: F401  (real-server fixtures)
    LiveServer,
    base_url,
    http,
    live_server,
)
from townhall.core.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url, worker_in_process=False)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run scripts/test-deps.sh"
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def window(browser: Browser, base: str, token: str) -> BrowserContext:
    context = await browser.new_context()
    await context.add_cookies([{"name": "th_access", "value": token, "url": base}])
    return context


async def test_two_windows_share_the_board(
    browser: Browser,
    client: httpx.AsyncClient,
    http: httpx.AsyncClient,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
) -> None:
    url = live_server.url
    alice = await signup(http, "alice@example.com")
    bob = await signup(http, "bob@example.com")
    await http.post(API, json={"name": "Demo", "slug": "demo-board"}, headers=alice["headers"])
    await http.post(
        f"{API}/demo-board/members",
        json={"email": "bob@example.com", "role": "write"},
        headers=alice["headers"],
    )
    one = await (await window(browser, url, alice["access_token"])).new_page()
    two = await (await window(browser, url, bob["access_token"])).new_page()
    streams: list[Request] = []
    one.on("request", lambda r: streams.append(r) if "/events" in r.url else None)
    await one.goto(f"{url}/sync")  # SSE
    await two.goto(f"{url}/sync?transport=ws")  # WebSocket
    await expect(one.locator("#status")).to_have_text("live")
    await expect(two.locator("#status")).to_have_text("live")

    await one.locator("#title").fill("Buy milk")
    await one.get_by_role("button", name="Add").click()
    todo_two = two.locator('[data-column="todo"] .card', has_text="Buy milk")
    await expect(todo_two).to_be_visible()

    await todo_two.get_by_role("button", name="→").click()
    await expect(one.locator('[data-column="doing"] .card', has_text="Buy milk")).to_be_visible()
    await expect(one.locator("#seq")).to_have_text("2")

    # The network goes away under both windows; a change is made meanwhile (in-process).
    await live_server.stop()
    await expect(one.locator("#status")).to_have_text("reconnecting…")
    await expect(two.locator("#status")).to_have_text("reconnecting…")
    made = await client.post(
        f"{API}/demo-board/documents",
        json={"data": {"title": "Walk dog", "column": "todo", "order": 9}},
        headers=alice["headers"],
    )
    assert made.status_code == 201
    await live_server.start()
    # Both pages reconnect by themselves and catch up: EventSource with Last-Event-ID.
    await expect(one.locator(".card", has_text="Walk dog")).to_be_visible(timeout=20_000)
    await expect(two.locator(".card", has_text="Walk dog")).to_be_visible(timeout=20_000)
    await expect(one.locator("#status")).to_have_text("live")
    resumed = [await r.all_headers() for r in streams[1:]]
    assert any(h.get("last-event-id") == "2" for h in resumed), resumed

    # A window closed for a while catches up when it is opened again.
    await two.close()
    await one.locator("#title").fill("Feed cat")
    await one.get_by_role("button", name="Add").click()
    await expect(one.locator(".card", has_text="Feed cat")).to_be_visible()
    again = await (await window(browser, url, bob["access_token"])).new_page()
    await again.goto(f"{url}/sync")
    await expect(again.locator(".card", has_text="Feed cat")).to_be_visible()
    await expect(again.locator('[data-column="doing"] .card', has_text="Buy milk")).to_be_visible()
