"""Health, readiness (naming the failing backend), metrics and the request id."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.fixtures.app import make_settings
from tests.fixtures.services import free_port
from townhall.main import create_app


async def _ready_of(tmp_path: Path, **overrides: Any) -> httpx.Response:
    app = create_app(make_settings(tmp_path, worker_in_process=False, **overrides))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get("/readyz")


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_ok_checks_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["database"] == "ok"
        assert set(body["checks"].values()) == {"ok"}

    async def test_readyz_names_a_dead_database(self, tmp_path: Path) -> None:
        dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
        response = await _ready_of(tmp_path, database_url=dead)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        body = response.json()
        assert body["status"] == "unavailable"
        assert "database" in body["failed"]
        assert body["checks"]["database"].startswith("error:")
        assert body["checks"]["cache"] == "ok"

    async def test_every_dead_backend_is_named(self, tmp_path: Path) -> None:
        """Two dead backends: one answer names both."""
        response = await _ready_of(
            tmp_path,
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        )
        assert response.status_code == 503
        assert {"database", "cache"} <= set(response.json()["failed"])

    async def test_readyz_names_a_dead_redis(
        self, tmp_path: Path, sqlite_database_url: str
    ) -> None:
        response = await _ready_of(
            tmp_path,
            database_url=sqlite_database_url,
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        )
        assert response.status_code == 503
        body = response.json()
        assert "cache" in body["failed"]
        assert "database" not in body["failed"]
        assert body["checks"]["database"] == "ok"


class TestRequestId:
    async def test_every_response_has_one(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/healthz")
        second = await client.get("/no-such-page")
        ids = [r.headers["x-request-id"] for r in (first, second)]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
        assert ids[0] != ids[1]

    async def test_incoming_id_is_kept(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
        assert response.headers["x-request-id"] == "trace-abc-123"

    async def test_oversized_incoming_id_is_cut(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "a" * 500})
        assert response.headers["x-request-id"] == "a" * 64

    async def test_log_lines_carry_it(
        self, tmp_path: Path, sqlite_database_url: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        settings = make_settings(
            tmp_path, database_url=sqlite_database_url, log_level="INFO", worker_in_process=False
        )
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                await c.get("/healthz", headers={"X-Request-ID": "trace-log-42"})
        lines = [line for line in capfd.readouterr().err.splitlines() if "trace-log-42" in line]
        assert any("path=/healthz" in line and "status=200" in line for line in lines), lines

    async def test_error_responses_carry_it_too(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/login", json={})
        assert response.status_code == 422
        assert response.headers["x-request-id"]


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name) : line.index("}") + 1]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class TestMetrics:
    async def test_requests_are_counted_by_route_template(self, client: httpx.AsyncClient) -> None:
        before = (await client.get("/metrics")).text
        for _ in range(3):
            await client.get("/api/v1/auth/me")
        await client.get("/no/such/thing")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        after = response.text
        counter = "townhall_http_requests_total"
        labels = {"method": "GET", "route": "/api/v1/auth/me", "status": "401"}
        assert _sample(after, counter, **labels) - _sample(before, counter, **labels) == 3
        unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
        assert _sample(after, counter, **unmatched) - _sample(before, counter, **unmatched) == 1
        assert "townhall_http_request_seconds_bucket" in after
        assert 'route="/api/v1/auth/me"' in after


class TestOpenApi:
    async def test_schema_and_docs(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        for path in ("/api/v1/auth/signup", "/api/v1/auth/login", "/api/v1/auth/me"):
            assert path in schema["paths"]
        assert "HTTPBearer" in schema["components"]["securitySchemes"]
        assert not any(p.startswith("/auth/oauth") for p in schema["paths"])
        docs = await client.get("/api/docs")
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
