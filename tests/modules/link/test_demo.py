"""The issue's "done when": on a served app with the default SSRF policy, demo links complete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.fixtures.app import make_settings
from tests.fixtures.services import free_port

from townhall.core.auth.repository import UserRepository
from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.modules.link import demo
from townhall.modules.link.demo import is_demo_url

from .conftest import WaitFn


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, port: int) -> Settings:
    """No outbound allowlist: only the demo-site exception lets the scraper reach this server."""
    return make_settings(
        tmp_path,
        database_url=database_url,
        base_url=f"http://127.0.0.1:{port}",
        link_fetch_timeout_seconds=5.0,
        job_poll_seconds=0.05,
    )


@pytest.fixture
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def test_only_the_demo_site_counts_as_demo() -> None:
    base = "http://127.0.0.1:8000"
    assert is_demo_url(base, f"{base}/links/demo-site/react-hooks")
    assert is_demo_url(base, f"{base}/links/demo-site/img/react.png")
    for url in (
        f"{base}/links/demo-site/../../api/v1/auth/me",
        f"{base}/links/demo-site/%2e%2e/%2e%2e/api/v1/auth/me",
        f"{base}/links/demo-site\\..\\api",
        f"{base}/api/v1/links",
        "http://127.0.0.1:6379/links/demo-site/x",
        "https://127.0.0.1:8000/links/demo-site/x",
    ):
        assert not is_demo_url(base, url), url


async def test_demo_links_complete_with_thumbnails_tags_and_search(
    served: str,
    client: httpx.AsyncClient,
    user: dict[str, Any],
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    headers = user["headers"]
    async with platform.db.session() as session:
        account = await UserRepository(session).get_by_email("links@example.com")
        assert account is not None
        await demo.load(platform, session, {"alice@example.com": account})
    listing = (await client.get("/api/v1/links?limit=10", headers=headers)).json()
    assert listing["total"] == 3
    done = {}
    for item in listing["items"]:
        assert item["url"].startswith(f"{served}/links/demo-site/")
        done[item["url"].rsplit("/", 1)[-1]] = await wait_done(item["id"], headers, timeout=60)
    for name, link in done.items():
        assert link["status"] == "completed", (name, link["processing_error"])
        assert link["processing_error"] is None, name  # the image came from the demo site
        assert link["thumbnails"]["small"], name
        assert any(t["is_auto_generated"] for t in link["tags"]), name
    assert done["react-hooks"]["title"] == "React Hooks: a practical tutorial"
    assert done["react-hooks"]["author"] == "Dana Park"
    hooks = await client.get("/api/v1/search", params={"q": "hooks"}, headers=headers)
    assert [i["id"] for i in hooks.json()["items"]] == [done["react-hooks"]["id"]]
    seoul = await client.get("/api/v1/search", params={"q": "서울"}, headers=headers)
    assert [i["id"] for i in seoul.json()["items"]] == [done["seoul-trip"]["id"]]
    # The exception covers the demo pages only: another path of this server stays refused.
    sneaky = await client.post(
        "/api/v1/links",
        json={"url": f"{served}/links/demo-site/../../api/v1/links"},
        headers=headers,
    )
    failed = await wait_done(sneaky.json()["id"], headers, timeout=60)
    assert failed["status"] == "failed"
    assert "private or reserved" in failed["processing_error"]
