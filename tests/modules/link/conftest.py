"""Links fixtures: a local HTTP fixture site, fast retries, and helpers to wait on the pipeline."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import Image
from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_existing_tables

from townhall.core.config import Settings
from townhall.core.jobs.registry import TASKS, RetryPolicy
from townhall.main import create_app
from townhall.modules.link import tasks as link_tasks  # noqa: F401  (declares the tasks)

SLOW_SECONDS = 5.0


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    data = bytearray(png(8, 8))
    ihdr = struct.pack(">II", width, height)
    data[16:24] = ihdr
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (640, 480), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


class Site:
    """The fixture site: pages the pipeline scrapes, served on 127.0.0.1."""

    def __init__(self) -> None:
        self.url = ""
        self.hits: dict[str, int] = {}
        self.fail_times: dict[str, int] = {}

    def page(self, name: str) -> str:
        return f"{self.url}/{name}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oembed", self.oembed)
        app.router.add_get("/img/{name}", self.image)
        app.router.add_get("/r/{n}", self.redirect)
        app.router.add_get("/internal-redirect", self.internal_redirect)
        app.router.add_get("/endless", self.endless)
        app.router.add_get("/{name}", self.html)
        return app

    def count(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1

    async def oembed(self, request: web.Request) -> web.StreamResponse:
        self.count(request)
        return web.json_response(
            {
                "type": "video",
                "title": "Learn React Hooks in 10 minutes",
                "author_name": "Code Channel",
                "provider_name": "YouTube",
                "thumbnail_url": f"{self.url}/img/video.jpg",
                "asked_for": request.query.get("url"),
            }
        )

    async def image(self, request: web.Request) -> web.StreamResponse:
        self.count(request)
        name = request.match_info["name"]
        if name == "video.jpg":
            return web.Response(body=jpeg_with_exif(), content_type="image/jpeg")
        if name == "wide.png":
            return web.Response(body=png(900, 300), content_type="image/png")
        if name == "bomb.png":
            return web.Response(body=png_claiming(50_000, 50_000), content_type="image/png")
        if name == "fake.png":
            return web.Response(text="<html>not an image</html>", content_type="image/png")
        if name == "huge.jpg":
            return web.Response(body=b"\xff\xd8" + b"\0" * 3_000_000, content_type="image/jpeg")
        raise web.HTTPNotFound()

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        self.count(request)
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/r/{n - 1}" if n > 0 else "/article")

    async def internal_redirect(self, request: web.Request) -> web.StreamResponse:
        self.count(request)
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """An HTML page of up to 1 GB, chunked (no Content-Length to refuse it by)."""
        self.count(request)
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        chunk = b"<p>" + b"x" * 65_536 + b"</p>"
        try:
            for _ in range(1024**3 // len(chunk)):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the scraper hung up at its size limit
        return response

    async def html(self, request: web.Request) -> web.StreamResponse:
        self.count(request)
        name = request.match_info["name"]
        failures = self.fail_times.get(name, 0)
        if failures > 0:
            self.fail_times[name] = failures - 1
            raise web.HTTPServiceUnavailable()
        if name == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if name == "missing":
            raise web.HTTPNotFound()
        if name == "binary":
            return web.Response(body=b"\0\1\2", content_type="application/octet-stream")
        body = PAGES.get(name)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(text=body.replace("{site}", self.url), content_type="text/html")


PAGES: dict[str, str] = {
    "video": """<html><head><title>Video page</title>
<meta property="og:type" content="video.other"><meta property="og:title" content="Cat video">
<meta property="og:image" content="{site}/img/video.jpg">
<meta property="og:video" content="{site}/v.mp4">
</head><body></body></html>""",
    "article": """<!doctype html><html><head><meta charset="utf-8"><title>Fallback title</title>
<script type="application/ld+json">{"@context":"https://schema.org",
"@graph":[{"@type":"WebSite","name":"x"},
{"@type":"NewsArticle","headline":"PostgreSQL indexes explained",
"author":{"@type":"Person","name":"Jane Doe"},
"datePublished":"2025-10-05T09:00:00Z","image":"{site}/img/wide.png",
"description":"How B-tree and GIN indexes speed up queries."}]}</script></head>
<body><article><h1>PostgreSQL indexes</h1><p>An advanced deep dive into PostgreSQL database indexes:
B-tree, GIN and GiST indexes, query plans and performance tuning for database developers.</p>
<p>Indexes make queries fast but slow down writes; this article measures both.</p>
</article></body></html>""",
    "plain": "<html><body><p>Just some words about gardening tomatoes in summer.</p></body></html>",
    "korean": """<html><head><meta charset="utf-8"><title>리액트훅 완벽 가이드</title>
<meta name="description" content="리액트 개발자를 위한 튜토리얼"></head>
<body><p>리액트훅 사용법을 배워봅시다.</p></body></html>""",
    "bomb": """<html><head><title>Bomb image</title>
<meta property="og:image" content="{site}/img/bomb.png"></head></html>""",
    "fake-image": """<html><head><title>Fake image</title>
<meta property="og:image" content="{site}/img/fake.png"></head></html>""",
    "huge-image": """<html><head><title>Huge image</title>
<meta property="og:image" content="{site}/img/huge.jpg"></head></html>""",
    "broken": "<html><head><title>Broken <b>page</title><body><div><p>unclosed "
    "<a href='x'>text about owls",
    "slow": "<html><head><title>Finally</title></head></html>",
    "oembed-discovery": """<html><head>
<link rel="alternate" type="application/json+oembed" href="{site}/oembed?url=x&amp;format=json">
</head><body><p>A player page that only announces its oEmbed endpoint.</p></body></html>""",
    "metadata": """<html><head><title>Meta</title>
<meta property="og:image"
 content="http://169.254.169.254/latest/meta-data/x.png"></head></html>""",
}

# The article under another path, for tests that count its fetches on their own.
PAGES["locked"] = PAGES["article"]


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    fixture = Site()
    runner = web.AppRunner(fixture.app())
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fixture.url = f"http://127.0.0.1:{port}"
    yield fixture
    await runner.cleanup()


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    """Retries after 50 ms instead of 30 s (the policy is otherwise the production one)."""
    saved = {name: TASKS[name] for name in ("link.scrape", "link.thumbnail", "link.tag")}
    for name, spec in saved.items():
        TASKS[name] = dataclasses.replace(
            spec, policy=RetryPolicy(spec.policy.retries, 0.05, 1.0, jitter=False)
        )
    yield
    TASKS.update(saved)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, site: Site) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        outbound_allowlist=["127.0.0.1/32"],
        link_youtube_oembed_url=f"{site.url}/oembed",
        # Under a loaded test machine 1 s spuriously times out; the slow page takes 5 s.
        link_fetch_timeout_seconds=2.0,
        link_max_image_bytes=1_000_000,
        link_max_page_bytes=1_000_000,
        job_poll_seconds=0.05,
    )


@pytest.fixture
async def app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application
    await empty_existing_tables(database_url)


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, Any]:
    return await signup(client, "links@example.com")


WaitFn = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def wait_done(client: httpx.AsyncClient) -> WaitFn:
    """Poll a link until it is completed or failed; returns its JSON."""

    async def wait(link_id: str, headers: dict[str, str], timeout: float = 45.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        body: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            response = await client.get(f"/api/v1/links/{link_id}", headers=headers)
            body = response.json()
            if body.get("status") in ("completed", "failed"):
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"link {link_id} did not finish: {body.get('status')}")

    return wait
