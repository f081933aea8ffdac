"""Rolling reload of `townhall serve --workers 2`: no request fails, WebSockets are told to
reconnect, every worker is replaced; `townhall reload` without a server is a clear error."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.database import empty_tables
from tests.fixtures.serve import START_TIMEOUT, townhall_env
from tests.fixtures.services import REDIS_URL, free_port, require
from townhall.cli import app
from townhall.core.config import get_settings
from townhall.core.serve import PID_FILE_NAME, supervisor_pid_file, worker_pids

SERVICE_RESTART = 1012  # what uvicorn sends open WebSockets when a worker shuts down


@pytest.fixture
def var_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """The in-process CLI on an empty var dir in tmp."""
    monkeypatch.setenv("TOWNHALL_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_reload_without_a_server_is_a_clear_error(var_dir: Path) -> None:
    result = CliRunner().invoke(app, ["reload"])
    assert result.exit_code == 1, result.output
    assert "no running `townhall serve --workers N`" in result.stderr
    assert str(var_dir / PID_FILE_NAME) in result.stderr
    assert "Traceback" not in result.output


def test_a_stale_pid_file_never_signals_its_pid(var_dir: Path) -> None:
    # The pid was reused by an unrelated process: SIGHUP would kill it.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        var_dir.mkdir(parents=True)
        (var_dir / PID_FILE_NAME).write_text(f"{bystander.pid}\n")
        result = CliRunner().invoke(app, ["reload"])
        assert result.exit_code == 1, result.output
        assert "stale" in result.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_the_pid_file_lives_as_long_as_the_server(tmp_path: Path) -> None:
    path = tmp_path / "var" / PID_FILE_NAME
    with supervisor_pid_file(path):
        assert path.read_text() == f"{os.getpid()}\n"
    assert not path.exists()


def dribbled(body: bytes, seconds: float) -> Iterator[bytes]:
    """`body` sent slowly, so its request is still in flight when a worker is told to stop."""
    step = max(1, len(body) // 10)
    for start in range(0, len(body), step):
        time.sleep(seconds / 10)
        yield body[start : start + step]


@dataclass
class Load:
    """HTTP request loops against the server, counting what answered and what failed."""

    base: str
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    answered: int = 0
    failures: list[str] = field(default_factory=list)

    def quick(self) -> None:
        """Authenticated reads on a keep-alive connection, paced to leave CPU to new workers."""
        auth = {"Authorization": f"Bearer {self.token}"}
        self._loop(lambda http: http.get("/api/v1/auth/me", headers=auth), expected=200)

    def slow(self) -> None:
        """Uploads taking a second each; invalid, so they are answered 422 and change nothing."""
        body = b'{"email": "not-an-email", "password": "x", "display_name": "slow upload"}'
        self._loop(
            lambda http: http.post(
                "/api/v1/auth/signup",
                content=dribbled(body, 1.0),
                headers={"Content-Type": "application/json"},
            ),
            expected=422,
        )

    def _loop(self, request: Callable[[httpx.Client], httpx.Response], expected: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.wait(0.05):
                try:
                    response = request(http)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code == expected:
                    self.answered += 1
                else:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")


def reports_feed(base: str, token: str) -> ClientConnection:
    """A signed-in WebSocket on the reports feed, past its `ready` message."""
    ws = connect(f"{base.replace('http', 'ws')}/api/v1/reports/ws?token={token}")
    assert '"ready"' in str(ws.recv(timeout=30))
    return ws


def ready(base: str) -> bool:
    """The balancer's readiness probe answers 200."""
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def closing_code(ws: ClientConnection) -> int | None:
    """The close code the server sent, waiting past heartbeats and notifications."""
    try:
        while True:
            ws.recv(timeout=30)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(240)  # three app imports in a row: minutes on a loaded runner
def test_rolling_reload_drops_no_request(tmp_path: Path, sqlite_database_url: str) -> None:
    require("Redis", REDIS_URL, 6379)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prefix = f"th-reload-{uuid.uuid4().hex[:8]}:"
    env = townhall_env(
        tmp_path,
        TOWNHALL_BASE_URL=base,
        TOWNHALL_DATABASE_URL=sqlite_database_url,
        TOWNHALL_REDIS_URL=REDIS_URL,
        TOWNHALL_SIGNUP_PER_IP_PER_HOUR="100000",
        TOWNHALL_PUBSUB_CHANNEL_PREFIX=prefix,
        TOWNHALL_COLLAB_KEY_PREFIX=prefix,
        TOWNHALL_QUIZ_KEY_PREFIX=prefix,
        TOWNHALL_JOB_QUEUE_PREFIX=prefix,
    )
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "townhall.cli"]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*command, "serve", "--port", str(port), "--workers", "2", "--no-migrate"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a killed supervisor must not leave its workers behind
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while len(worker_pids(server.pid)) < 2 or not ready(base):
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        old = worker_pids(server.pid)
        token = httpx.post(
            f"{base}/api/v1/auth/signup",
            json={"email": "reload@example.com", "password": "password123", "display_name": "R"},
            timeout=30,
        ).json()["access_token"]
        ws = reports_feed(base, token)

        load = Load(base, token)
        # Two slow uploads at a time, so a stopping worker likely has one in flight.
        runs = [load.quick, load.slow, load.slow]
        loops = [threading.Thread(target=run) for run in runs]
        for loop in loops:
            loop.start()
        try:
            before = load.answered
            reload = subprocess.run(
                [*command, "reload", "--timeout", "45"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=150,
            )
            during = load.answered - before
        finally:
            load.stop.set()
            for loop in loops:
                loop.join()
        assert reload.returncode == 0, reload.stderr + log_path.read_text()

        assert load.failures == [], load.failures[:5]
        assert during > 0
        assert closing_code(ws) == SERVICE_RESTART
        new = worker_pids(server.pid)
        assert len(new) == 2
        assert not new & old
        assert all(str(pid) in reload.stdout for pid in new), reload.stdout
        # The new workers serve the same sessions, and a reconnecting client gets its feed.
        me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["email"] == "reload@example.com"
        reports_feed(base, token).close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        asyncio.run(empty_tables(sqlite_database_url))
    assert server.returncode == 0, log_path.read_text()
    assert not (tmp_path / "var" / PID_FILE_NAME).exists()
