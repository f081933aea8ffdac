"""The SSRF guard and bounded fetch against a local server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from townhall.core.http import (
    BlockedDestination,
    FetchLimits,
    FetchTimeout,
    HTTPStatusError,
    OutboundPolicy,
    ResponseTooLarge,
    TooManyRedirects,
    decode_html,
    fetch,
    is_public,
)

LOCAL = OutboundPolicy(allowlist=("127.0.0.1/32",))


async def _hop(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    if n == 0:
        return web.Response(text="<html><title>end</title></html>", content_type="text/html")
    raise web.HTTPFound(f"/hop/{n - 1}")


async def _big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(64):
        await response.write(b"x" * 65536)
    return response


async def _slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(5)
    return web.Response(text="late")


async def _to_metadata(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")


async def _euc_kr(request: web.Request) -> web.StreamResponse:
    body = '<html><head><meta charset="euc-kr"><title>한국어</title></head></html>'
    return web.Response(body=body.encode("euc-kr"), content_type="text/html")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/hop/{n}", _hop)
    app.router.add_get("/big", _big)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/meta", _to_metadata)
    app.router.add_get("/euc", _euc_kr)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_private_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_pass() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://2130706433/",
    ],
)
async def test_guard_refuses_internal_destinations(url: str) -> None:
    with pytest.raises(BlockedDestination):
        await fetch(url, OutboundPolicy())


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "javascript:alert(1)", "ftp://x/", "http://u:p@example.com/"]
)
async def test_guard_refuses_other_schemes_and_credentials(url: str) -> None:
    with pytest.raises(BlockedDestination):
        await fetch(url, OutboundPolicy())


async def test_allowlist_lets_local_server_through(server: str) -> None:
    result = await fetch(f"{server}/hop/0", LOCAL)
    assert result.status_code == 200
    assert "end" in result.text()


async def test_without_allowlist_local_server_is_refused(server: str) -> None:
    with pytest.raises(BlockedDestination):
        await fetch(f"{server}/hop/0", OutboundPolicy())


async def test_redirects_are_followed_and_limited(server: str) -> None:
    result = await fetch(f"{server}/hop/3", LOCAL, limits=FetchLimits(max_redirects=3))
    assert len(result.redirects) == 3
    assert result.url.endswith("/hop/0")
    with pytest.raises(TooManyRedirects):
        await fetch(f"{server}/hop/4", LOCAL, limits=FetchLimits(max_redirects=3))


async def test_redirect_to_metadata_address_is_refused(server: str) -> None:
    with pytest.raises(BlockedDestination):
        await fetch(f"{server}/meta", LOCAL)


async def test_body_limit(server: str) -> None:
    with pytest.raises(ResponseTooLarge):
        await fetch(f"{server}/big", LOCAL, limits=FetchLimits(max_bytes=100_000))


async def test_timeout(server: str) -> None:
    with pytest.raises(FetchTimeout):
        await fetch(f"{server}/slow", LOCAL, limits=FetchLimits(timeout=0.3))


async def test_status_error_is_reported(server: str) -> None:
    with pytest.raises(HTTPStatusError) as info:
        await fetch(f"{server}/nothing", LOCAL)
    assert info.value.status == 404
    assert not info.value.retryable


async def test_meta_charset_is_honoured(server: str) -> None:
    result = await fetch(f"{server}/euc", LOCAL)
    assert "한국어" in result.text()


def test_decode_falls_back_to_detection() -> None:
    assert "café" in decode_html("<p>café crème brûlée</p>".encode("latin-1"))
