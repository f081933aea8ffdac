"""problem+json for every error: AppError classes, 404/405, validation, 413 and crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from tests.fixtures.app import make_settings
from tests.fixtures.database import empty_tables
from townhall.core.errors import (
    PROBLEM_JSON,
    Conflict,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from townhall.main import create_app

LIMIT = 1000


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.get("/_test/conflict")
    async def conflict() -> None:
        raise Conflict("the thing is taken", extra={"thing": "name"})

    @router.get("/_test/busy")
    async def busy() -> None:
        raise TooManyRequests("slow down", retry_after=7)

    @router.get("/_test/down")
    async def down() -> None:
        raise ServiceUnavailable("the broker is away")

    @router.get("/_test/who")
    async def who() -> None:
        raise Unauthorized()

    @router.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @router.get("/_test/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return router


@pytest.fixture
async def errors_app(tmp_path: Path, sqlite_database_url: str) -> AsyncIterator[FastAPI]:
    """The app with a small body limit and routes that fail on purpose."""
    app = create_app(
        make_settings(
            tmp_path,
            database_url=sqlite_database_url,
            max_body_bytes=LIMIT,
            worker_in_process=False,
        )
    )
    app.include_router(_probe_router())
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app
    await empty_tables(sqlite_database_url)


@pytest.fixture
async def eclient(errors_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Crashes must come back as the 500 response, not as an exception in the test.
    transport = httpx.ASGITransport(app=errors_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    return body


class TestProblemShape:
    async def test_unknown_route_is_404(self, eclient: httpx.AsyncClient) -> None:
        body = assert_problem(await eclient.get("/no/such/page"), 404)
        assert body["title"] == "Not Found"

    async def test_wrong_method_is_405(self, eclient: httpx.AsyncClient) -> None:
        assert_problem(await eclient.delete("/healthz"), 405)

    async def test_app_error_keeps_message_and_extra(self, eclient: httpx.AsyncClient) -> None:
        body = assert_problem(await eclient.get("/_test/conflict"), 409)
        assert body["detail"] == "the thing is taken"
        assert body["thing"] == "name"

    async def test_retry_after_on_429_and_503(self, eclient: httpx.AsyncClient) -> None:
        busy = await eclient.get("/_test/busy")
        assert_problem(busy, 429)
        assert busy.headers["retry-after"] == "7"
        down = await eclient.get("/_test/down")
        assert_problem(down, 503)
        assert int(down.headers["retry-after"]) > 0

    async def test_401_asks_for_a_bearer_token(self, eclient: httpx.AsyncClient) -> None:
        response = await eclient.get("/_test/who")
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_path_parameter_validation_names_the_field(
        self, eclient: httpx.AsyncClient
    ) -> None:
        body = assert_problem(await eclient.get("/_test/items/abc"), 422)
        assert body["errors"] == [
            {
                "field": "item_id",
                "message": "Input should be a valid integer, unable to parse string as an integer",
            }
        ]

    async def test_crash_is_500_without_internals(self, eclient: httpx.AsyncClient) -> None:
        body = assert_problem(await eclient.get("/_test/crash"), 500)
        assert body["detail"] == "internal error"
        assert "passwd" not in str(body)

    async def test_crash_carries_the_request_id_and_logs_the_traceback(
        self, capfd: pytest.CaptureFixture[str], eclient: httpx.AsyncClient
    ) -> None:
        # capfd first: the app's log handler binds the stderr that is current when it starts.
        response = await eclient.get("/_test/crash", headers={"X-Request-ID": "crash-id-7"})
        body = assert_problem(response, 500)
        assert response.headers["x-request-id"] == "crash-id-7"
        assert body["request_id"] == "crash-id-7"
        logged = capfd.readouterr().err
        assert "Traceback" in logged
        assert "RuntimeError: secret internals" in logged
        assert "crash-id-7" in logged

    async def test_crash_is_counted_as_an_error(self, eclient: httpx.AsyncClient) -> None:
        def errors(route: str) -> float:
            return REGISTRY.get_sample_value("townhall_http_errors_total", {"route": route}) or 0

        before = {route: errors(route) for route in ("/_test/crash", "/_test/conflict")}
        await eclient.get("/_test/crash")
        await eclient.get("/_test/conflict")  # a 4xx is the caller's error, not the server's
        assert errors("/_test/crash") - before["/_test/crash"] == 1
        assert errors("/_test/conflict") == before["/_test/conflict"]
        metrics = (await eclient.get("/metrics")).text
        assert 'townhall_http_errors_total{route="/_test/crash"}' in metrics


class TestBodyLimit:
    async def test_declared_oversize_body_is_413(self, eclient: httpx.AsyncClient) -> None:
        response = await eclient.post(
            "/api/v1/auth/signup",
            content=b"x" * (LIMIT + 1),
            headers={"content-type": "application/json"},
        )
        body = assert_problem(response, 413)
        assert str(LIMIT) in str(body["detail"])

    async def test_streamed_oversize_body_is_413(self, eclient: httpx.AsyncClient) -> None:
        """No Content-Length: the limit is counted while the body arrives."""

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 300

        for path, kind in (
            ("/api/v1/auth/signup", "application/json"),
            ("/login", "application/x-www-form-urlencoded"),
        ):
            response = await eclient.post(path, content=chunks(), headers={"content-type": kind})
            assert "content-length" not in response.request.headers
            assert_problem(response, 413)

    async def test_body_under_the_limit_passes(self, eclient: httpx.AsyncClient) -> None:
        response = await eclient.post(
            "/api/v1/auth/signup",
            json={"email": "small@example.com", "password": "password123", "display_name": "S"},
        )
        assert response.status_code == 201
