"""Security headers: a nonce CSP on pages, nosniff and frame denial everywhere, HSTS under TLS."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse

from tests.fixtures.app import make_settings
from townhall.core.middleware import RequestContextMiddleware
from townhall.core.security_headers import SecurityHeadersMiddleware

SRC = Path(__file__).resolve().parents[2] / "src" / "townhall"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


@pytest.fixture(scope="session")
def database_url(sqlite_database_url: str) -> str:
    """Headers do not depend on the database: SQLite only."""
    return sqlite_database_url


def policy(response: httpx.Response) -> dict[str, str]:
    """The response's CSP as directive -> sources."""
    directives = response.headers["content-security-policy"].split(";")
    pairs = (d.strip().partition(" ") for d in directives if d.strip())
    return {name: sources for name, _, sources in pairs}


async def test_a_page_allows_only_its_own_nonced_inline_scripts(
    client: httpx.AsyncClient,
) -> None:
    first, second = await client.get("/quiz/play"), await client.get("/quiz/play")
    assert first.status_code == 200
    csp = policy(first)
    nonce = re.fullmatch(r"'self' 'nonce-([\w-]+)'", csp["script-src"])
    assert nonce, csp["script-src"]
    scripts = INLINE_SCRIPT.findall(first.text)
    assert scripts
    assert all(f'nonce="{nonce.group(1)}"' in tag for tag in scripts), scripts
    assert policy(second)["script-src"] != csp["script-src"]  # a fresh nonce per response
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'self'"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in first.headers  # plain HTTP: no HSTS


async def test_api_errors_and_documents_carry_the_headers_too(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/api/v1/auth/me"), await client.get("/healthz")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert policy(response)["frame-ancestors"] == "'none'"
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "https://cdn.jsdelivr.net" in policy(docs)["script-src"]  # Swagger UI's CDN


def test_every_inline_script_in_a_template_carries_the_nonce() -> None:
    missing = [
        f"{path.relative_to(SRC)}: {tag}"
        for path in SRC.rglob("templates/**/*.html")
        for tag in INLINE_SCRIPT.findall(path.read_text())
        if 'nonce="{{ request.state.csp_nonce }}"' not in tag
    ]
    assert missing == []
    handlers = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("templates/**/*.html")
        if re.search(r"\son[a-z]+=", path.read_text())
    ]
    assert handlers == []  # inline event handlers would need 'unsafe-inline'


def bare_app(tmp_path: Path, **overrides: str) -> FastAPI:
    """An app with only the two outer middlewares, as main.create_app stacks them."""
    app = FastAPI()

    @app.get("/download")
    async def download() -> PlainTextResponse:
        return PlainTextResponse(
            "x", headers={"Content-Security-Policy": "default-src 'none'; sandbox"}
        )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, settings=make_settings(tmp_path, **overrides))
    return app


async def test_a_route_keeps_its_own_stricter_policy_and_a_500_gets_the_headers(
    tmp_path: Path,
) -> None:
    transport = httpx.ASGITransport(app=bare_app(tmp_path), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        download = await http.get("/download")
        assert download.headers.get_list("content-security-policy") == [
            "default-src 'none'; sandbox"
        ]
        boom = await http.get("/boom")
    assert boom.status_code == 500
    assert boom.headers["x-content-type-options"] == "nosniff"


async def test_hsts_when_served_over_https(tmp_path: Path) -> None:
    app = bare_app(tmp_path, base_url="https://townhall.example")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/download")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
