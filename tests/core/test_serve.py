"""`townhall serve` as a real process: health, readiness, sign-up and log-in over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.services import free_port

pytestmark = pytest.mark.slow

START_TIMEOUT = 90.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A fresh `townhall serve` on a free port with its own var dir (embedded backends)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNHALL_")}
    env.update(
        TOWNHALL_VAR_DIR=str(tmp_path / "var"),
        TOWNHALL_BASE_URL=f"http://127.0.0.1:{port}",
        TOWNHALL_LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "townhall.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    assert process.returncode == 0, (tmp_path / "serve.log").read_text()


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
