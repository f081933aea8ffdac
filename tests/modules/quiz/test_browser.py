"""Playwright: a host and two players in three browser contexts play a two-question game."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from tests.fixtures.app import make_settings
from tests.fixtures.browser import signed_in_context
from tests.fixtures.database import empty_tables
from tests.modules.quiz.helpers import QUESTIONS, live_server, signup_and_quiz

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def server(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[str]:
    async with live_server(make_settings(tmp_path, database_url=sqlite_database_url)) as base:
        yield base
    await empty_tables(sqlite_database_url)


async def _player(browser: Browser, server: str, pin: str, nickname: str) -> Page:
    context = await browser.new_context(viewport={"width": 390, "height": 800})  # a phone
    page = await context.new_page()
    await page.goto(f"{server}/quiz/play?pin={pin}")
    await page.get_by_label("Nickname").fill(nickname)
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_text(f"You're in, {nickname}!")).to_be_visible()
    return page


async def test_host_and_two_players_play_in_browsers(server: str, browser: Browser) -> None:
    token, quiz_id = await signup_and_quiz(server, questions=[QUESTIONS[0], QUESTIONS[2]])
    host_context = await signed_in_context(browser, server, token)
    host = await host_context.new_page()
    await host.goto(f"{server}/quiz/{quiz_id}/host")
    pin_box = host.locator("#pin")
    await expect(pin_box).to_have_text(re.compile(r"^\d{6}$"), timeout=15000)
    pin = (await pin_box.text_content() or "").strip()
    assert pin.isdigit()

    ann = await _player(browser, server, pin, "Ann")
    bob = await _player(browser, server, pin, "Bob")
    await expect(host.locator("#count")).to_have_text("2")

    await host.get_by_role("button", name="Start").click()
    await expect(ann.get_by_text("2 + 2?")).to_be_visible()
    await ann.get_by_role("button", name="4").click()
    await expect(ann.get_by_text("Answer locked in")).to_be_visible()
    await bob.get_by_role("button", name="5").click()
    await expect(ann.locator("#r-verdict")).to_contain_text("Correct!")
    await expect(bob.locator("#r-verdict")).to_have_text("Not this time")
    await expect(host.locator("#r-top")).to_contain_text("Ann")

    await host.get_by_role("button", name="Next question").click()
    await expect(bob.get_by_text("Water is wet.")).to_be_visible()
    await bob.get_by_role("button", name="True").click()
    await ann.get_by_role("button", name="True").click()
    await expect(bob.locator("#r-verdict")).to_contain_text("Correct!")

    await host.get_by_role("button", name="Show podium").click()
    await expect(host.locator("#podium")).to_contain_text("Ann")
    await expect(ann.locator("#o-me")).to_contain_text("You finished #1")
    await expect(bob.locator("#o-me")).to_contain_text("You finished #2")
