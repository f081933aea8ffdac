"""Playwright on a real `townhall serve` with the demo data: issue 7's "done when" in a browser.

Alice (a demo account) saves a demo-site page the demo did not save for her, watches its card
go pending -> completed live over the page's WebSocket with a thumbnail and AI tags, then finds
it with the search box.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, WebSocket, expect
from tests.fixtures.browser import signed_in_context
from tests.fixtures.serve import serve_process, townhall_env

from townhall.modules.link.models import LinkStatus

# The server start (imports, migrations) and the demo load dominate on a loaded CI runner.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).parents[2] / "e2e" / "artifacts"
WAIT = 60_000  # ms: generous for a loaded machine; every wait ends as soon as the state holds
ALICE = "alice@example.com"
PAGE = "plain"  # a demo-site page that `townhall demo` does not save (see link/demo.py)
# Statuses of a link still in the pipeline.
ACTIVE = {str(s) for s in LinkStatus} - {LinkStatus.completed, LinkStatus.failed}

# Records every status text a link card's badge shows, so a quick pipeline cannot hide one.
OBSERVE_BADGES = """() => {
  window.__statuses = {};
  window.__notReloaded = true;
  const record = () => {
    for (const badge of document.querySelectorAll('#links [data-id] [data-status]')) {
      const id = badge.closest('[data-id]').dataset.id;
      const seen = (window.__statuses[id] ||= []);
      const status = badge.textContent.trim();
      if (seen[seen.length - 1] !== status) seen.push(status);
    }
  };
  new MutationObserver(record).observe(document.getElementById('links'),
    {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`townhall serve` on embedded defaults, then `townhall demo --if-empty` as `make run` does."""
    directory = tmp_path_factory.mktemp("links-e2e")
    with serve_process(directory) as base:
        loaded = subprocess.run(
            [sys.executable, "-m", "townhall.cli", "demo", "--if-empty"],
            cwd=directory,
            env=townhall_env(directory, TOWNHALL_BASE_URL=base),
            capture_output=True,
            timeout=180,
        )
        assert loaded.returncode == 0, loaded.stdout.decode() + loaded.stderr.decode()
        yield base


async def test_save_watch_complete_and_search_in_the_browser(server: str, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": ALICE, "password": "demo-password"}
        )
        assert login.status_code == 200, login.text
    context = await signed_in_context(
        browser, server, login.json()["access_token"], bypass_csp=True
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT)

    # The page's live feed: wait for the server's "ready" (subscribed) before saving.
    frames: list[dict[str, object]] = []
    ready = asyncio.get_running_loop().create_future()

    def on_socket(socket: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            frames.append(json.loads(payload))
            if frames[-1].get("type") == "ready" and not ready.done():
                ready.set_result(socket.url)

        if socket.url.endswith("/api/v1/links/ws"):
            socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    await page.goto(f"{server}/links")
    await expect(page.get_by_role("heading", name="Links")).to_be_visible()
    await asyncio.wait_for(ready, WAIT / 1000)
    await page.evaluate(OBSERVE_BADGES)

    # Save the URL from the save box; the card shows up at once, not yet processed.
    url = f"{server}/links/demo-site/{PAGE}"
    await page.get_by_label("URL to save").fill(url)
    async with page.expect_response(
        lambda r: r.url.endswith("/api/v1/links") and r.request.method == "POST"
    ) as saved_info:
        await page.get_by_role("button", name="Save", exact=True).click()
    saved = await (await saved_info.value).json()
    assert (await saved_info.value).status == 201, saved
    assert saved["status"] == "pending", saved
    assert not saved.get("duplicate"), saved
    card = page.locator(f'#links [data-id="{saved["id"]}"]')
    badge = card.locator("[data-status]")
    await expect(card).to_be_visible()
    await expect(page.locator("#save-message")).to_have_text("Saved. Fetching the page…")

    # Live, without a reload: the badge turns completed; a thumbnail that loads; AI tags.
    await expect(badge).to_have_text("completed", timeout=WAIT)
    image = card.locator("img")
    await expect(image).to_be_visible(timeout=WAIT)
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await image.element_handle()
    )
    await expect(card.locator(".badge--ai").first).to_be_visible()
    statuses = await page.evaluate(f"window.__statuses[{json.dumps(saved['id'])}]")
    assert statuses[0] == "pending", statuses
    assert statuses[-1] == "completed", statuses
    assert set(statuses[:-1]) <= ACTIVE, statuses
    assert await page.evaluate("window.__notReloaded === true"), "the page reloaded"
    pushed = [f["status"] for f in frames if f.get("id") == saved["id"]]
    assert pushed[-1] == "completed", frames

    # The demo links finish too; the screenshot shows the whole page.
    for other in await page.locator("#links [data-status]").all():
        await expect(other).to_have_text("completed", timeout=WAIT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "links.png", full_page=True)

    # Search a word of the page's text: the card is the one result; nonsense finds nothing.
    await page.get_by_label("Search").fill("PostgreSQL")
    await page.get_by_label("Search").press("Enter")
    await page.wait_for_url("**/links?q=PostgreSQL")
    results = page.locator("#links .link-card")
    await expect(results).to_have_count(1)
    await expect(results.first).to_have_attribute("data-id", saved["id"])
    await expect(results.first.locator("[data-status]")).to_have_text("completed")
    await page.get_by_label("Search").fill("zxqvbnonsense")
    await page.get_by_label("Search").press("Enter")
    await page.wait_for_url("**/links?q=zxqvbnonsense")
    await expect(page.locator("#links .link-card")).to_have_count(0)
    await expect(page.locator("#empty")).to_have_text("Nothing saved yet for “zxqvbnonsense”.")
    await context.close()
