"""Playwright: every page reachable from the home page, signed in on demo data, breaks no CSP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.async_api import Browser

from tests.fixtures.app import make_settings
from tests.fixtures.browser import signed_in_context
from tests.fixtures.database import empty_tables
from tests.modules.quiz.helpers import live_server
from townhall.demo import load_demo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

MAX_PAGES = 40
# Leaving them would sign the crawler out or start downloads instead of pages.
SKIP = ("/logout", "/api/", "/static/", "/links/export", "/reports/export")
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


@pytest.fixture
async def server(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[str]:
    settings = make_settings(tmp_path, database_url=sqlite_database_url)
    await load_demo(settings, only_if_empty=False)
    async with live_server(settings) as base:
        yield base
    await empty_tables(sqlite_database_url)


async def test_no_page_violates_the_content_security_policy(server: str, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": "alice@example.com", "password": "demo-password"},
        )
        assert login.status_code == 200, login.text
    context = await signed_in_context(browser, server, login.json()["access_token"])
    await context.add_init_script(COLLECT_VIOLATIONS)
    page = await context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    queue, seen, violations = ["/"], {"/"}, {}
    while queue and len(seen) <= MAX_PAGES:
        path = queue.pop(0)
        response = await page.goto(urljoin(server, path), wait_until="networkidle")
        assert response is not None
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        found = await page.evaluate("window.__csp")
        if found:
            violations[path] = found
        hrefs = await page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != server or parts.path.startswith(SKIP):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target not in seen:
                seen.add(target)
                queue.append(target)
    await context.close()
    assert violations == {}
    assert console == []
    # The crawl reached every app and their editors, not just the home page.
    for prefix in ("/docs/p/", "/sheets/w/", "/links", "/quiz/", "/reports", "/sync"):
        assert any(p.startswith(prefix) for p in seen), (prefix, sorted(seen))
