"""`townhall serve` as a real process: health, readiness, sign-up and log-in over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.serve import serve_process

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A fresh `townhall serve` on a free port with its own var dir (embedded backends)."""
    with serve_process(tmp_path) as base:
        yield base


def test_serve_end_to_end(server: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"

        # The embedded database was migrated and the secret generated on first start.
        assert (tmp_path / "var" / "townhall.db").exists()
        assert (tmp_path / "var" / "secret").exists()

        signed_up = http.post(
            "/api/v1/auth/signup",
            json={"email": "real@example.com", "password": "password123", "display_name": "Real"},
        )
        assert signed_up.status_code == 201, signed_up.text
        http.cookies.clear()
        wrong = http.post(
            "/api/v1/auth/login", json={"email": "real@example.com", "password": "not-it-123"}
        )
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
        login = http.post(
            "/api/v1/auth/login", json={"email": "real@example.com", "password": "password123"}
        )
        assert login.status_code == 200, login.text
        tokens = login.json()
        http.cookies.clear()
        me = http.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.json()["email"] == "real@example.com"
        assert me.headers["x-request-id"]

        home = http.get("/")
        assert home.status_code == 200
        assert "townhall" in home.text
        metrics = http.get("/metrics")
        assert 'route="/api/v1/auth/login"' in metrics.text
