"""Rolling reload of `townhall serve --workers 2`: no request fails, WebSockets are told to
reconnect, every worker is replaced; `townhall reload` without a server is a clear error."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fixtures.serve import Workers
from townhall.cli import app
from townhall.core.config import get_settings
from townhall.core.serve import PID_FILE_NAME, supervisor_pid_file

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
def test_rolling_reload_drops_no_request(workers: Workers) -> None:
    base = workers.base
    old = workers.pids()
    user = {"email": "reload@example.com", "password": "password123", "display_name": "R"}
    token = httpx.post(f"{base}/api/v1/auth/signup", json=user, timeout=30).json()["access_token"]
    ws = reports_feed(base, token)

    load = Load(base, token)
    # Two slow uploads at a time, so a stopping worker likely has one in flight.
    runs = [load.quick, load.slow, load.slow]
    loops = [threading.Thread(target=run) for run in runs]
    for loop in loops:
        loop.start()
    try:
        before = load.answered
        reload = workers.reload()
        during = load.answered - before
    finally:
        load.stop.set()
        for loop in loops:
            loop.join()
    assert reload.returncode == 0, reload.stderr + workers.log()

    assert load.failures == [], load.failures[:5]
    assert during > 0
    assert closing_code(ws) == SERVICE_RESTART
    new = workers.pids()
    assert len(new) == 2
    assert not new & old
    assert all(str(pid) in reload.stdout for pid in new), reload.stdout
    # The new workers serve the same sessions, and a reconnecting client gets its feed.
    me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "reload@example.com"
    reports_feed(base, token).close()
