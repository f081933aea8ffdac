"""Live notifications over /api/v1/links/ws and the web pages (cookies, share target)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.fixtures.services import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .conftest import Site, WaitFn


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task, f"ws://127.0.0.1:{port}/api/v1/links/ws"


async def test_websocket_reports_status_until_completed(
    app: FastAPI, client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    server, task, url = await serve(app)
    try:
        async with connect(url) as anonymous:
            await anonymous.send(json.dumps({"type": "auth", "token": "forged"}))
            with pytest.raises(ConnectionClosed) as refused:
                await asyncio.wait_for(anonymous.recv(), 10)
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 4401
        async with connect(f"{url}?token={user['access_token']}") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "ready"}
            saved = await client.post(
                "/api/v1/links", json={"url": site.page("article")}, headers=user["headers"]
            )
            link_id = saved.json()["id"]
            statuses = []
            while "completed" not in statuses:
                message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if message.get("type") == "link.status":
                    assert message["id"] == link_id
                    statuses.append(message["status"])
            assert statuses[0] == "pending"
            assert "scraping" in statuses
            assert statuses.index("scraping") < statuses.index("completed")
            failing = await client.post(
                "/api/v1/links", json={"url": site.page("binary")}, headers=user["headers"]
            )
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if message.get("status") == "failed":
                    assert message["id"] == failing.json()["id"]
                    assert "unsupported content type" in message["error"]
                    break
    finally:
        server.should_exit = True
        await task


async def test_web_pages(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    assert (await client.get("/links")).status_code == 303
    client.cookies.set("th_access", user["access_token"])
    shared = await client.get("/links/share", params={"text": f"look {site.page('article')} !"})
    assert shared.status_code == 303
    listing = (await client.get("/api/v1/links")).json()
    assert listing["items"][0]["source"] == "share"
    link = await wait_done(listing["items"][0]["id"], {})
    page = await client.get("/links")
    assert page.status_code == 200
    assert "PostgreSQL indexes explained" in page.text
    assert link["thumbnails"]["medium"].split("?")[0] in page.text
    found = await client.get("/links", params={"q": "postgresql"})
    assert "PostgreSQL indexes explained" in found.text
    detail = await client.get(f"/links/view/{link['id']}")
    assert detail.status_code == 200
    assert "Jane Doe" in detail.text
    tools = await client.get("/links/import-export")
    assert "javascript:" in tools.text
    manifest = (await client.get("/links/manifest.webmanifest")).json()
    assert manifest["share_target"]["action"] == "/links/share"
    bad_share = await client.get("/links/share", params={"url": "javascript:alert(1)"})
    assert bad_share.status_code == 422
    assert (await client.get("/links/static/links.js")).status_code == 200
    demo = await client.get("/links/demo-site/react-hooks")
    assert "og:title" in demo.text
    assert (await client.get("/links/demo-site/nope")).status_code == 404
