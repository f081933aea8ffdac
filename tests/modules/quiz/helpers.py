"""Live servers and Socket.IO clients for the quiz's end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import socketio
import uvicorn
from tests.fixtures.services import free_port

from townhall.core.config import Settings
from townhall.main import create_app

NS = "/quiz"
# A 1x1 PNG for image uploads.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
QUESTIONS: list[dict[str, Any]] = [
    {
        "type": "single",
        "text": "2 + 2?",
        "time_limit": 10,
        "options": [{"text": "3"}, {"text": "4", "correct": True}, {"text": "5"}],
    },
    {
        "type": "multiple",
        "text": "Even numbers?",
        "time_limit": 10,
        "points": 2000,
        "options": [
            {"text": "2", "correct": True},
            {"text": "3"},
            {"text": "8", "correct": True},
        ],
    },
    {
        "type": "true_false",
        "text": "Water is wet.",
        "time_limit": 10,
        "options": [{"text": "True", "correct": True}, {"text": "False"}],
    },
    {"type": "type_answer", "text": "Capital of France?", "time_limit": 10, "accepted": ["Paris"]},
    {
        "type": "slider",
        "text": "Degrees in a right angle?",
        "time_limit": 10,
        "min": 0,
        "max": 180,
        "step": 1,
        "correct": 90,
        "tolerance": 2,
    },
    {"type": "ordering", "text": "Smallest first", "time_limit": 10, "items": ["1", "10", "100"]},
    {
        "type": "poll",
        "text": "Fun?",
        "time_limit": 10,
        "points": 0,
        "options": [{"text": "Yes"}, {"text": "No"}],
    },
]


@contextlib.asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[str]:
    """The real app on uvicorn on a free port, in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class Client:
    """A python-socketio client that records every event it receives."""

    def __init__(self, reconnect: bool = False) -> None:
        # When reconnecting, within 0.1-1 s: a test cannot wait out socket.io-client's 1-5 s.
        self.sio = socketio.AsyncClient(
            reconnection=reconnect,
            reconnection_delay=0.1,
            reconnection_delay_max=1,
            randomization_factor=0.1,
        )
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._arrived = asyncio.Event()

        @self.sio.on("*", namespace=NS)
        async def _any(event: str, data: Any = None) -> None:
            self.events[event].append(data)
            self._arrived.set()

    async def connect(self, url: str, token: str | None = None) -> Client:
        await self.sio.connect(
            url,
            namespaces=[NS],
            transports=["websocket"],
            auth={"token": token} if token else None,
            wait_timeout=10,
        )
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 30) -> Any:
        return await self.sio.call(event, data, namespace=NS, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=NS)

    async def wait(self, event: str, count: int = 1, timeout: float = 10) -> Any:
        """The `count`-th message of `event` (waits for it)."""
        deadline = time.monotonic() + timeout
        while len(self.events[event]) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} #{count}; got {dict(self.events)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return self.events[event][count - 1]

    async def close(self) -> None:
        await self.sio.disconnect()


async def signup_and_quiz(
    base: str, email: str = "host@example.com", questions: list[dict[str, Any]] | None = None
) -> tuple[str, str]:
    """A host account and a quiz; returns (access token, quiz id)."""
    # Password hashing is slow on a busy 2-core machine: allow for it.
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        response = await http.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": "password123", "display_name": "Host"},
        )
        assert response.status_code == 201, response.text
        token = response.json()["access_token"]
        response = await http.post(
            "/api/v1/quizzes",
            json={"title": "Live", "questions": questions or QUESTIONS},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        return token, response.json()["id"]


async def stored_game(http: httpx.AsyncClient, game_id: str) -> dict[str, Any]:
    """The game's stored results, once the background write after the last close is done."""
    for _ in range(100):
        stored: dict[str, Any] = (await http.get(f"/api/v1/quizzes/games/{game_id}")).json()
        if stored["status"] == "ended":
            return stored
        await asyncio.sleep(0.1)
    raise AssertionError(f"results of game {game_id} were never stored")


def start_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A real `townhall serve` process."""
    cmd = [sys.executable, "-m", "townhall.cli", "serve", "--port", str(port), "--no-migrate"]
    return subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def wait_http(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/quiz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base} did not come up")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


class RawPlayer:
    """A light Socket.IO client speaking the wire protocol over one WebSocket (for crowds)."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.arrived: dict[str, list[float]] = defaultdict(list)
        self.why = ""

    async def connect(self, base: str) -> RawPlayer:
        from websockets.asyncio.client import connect

        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self._ws = await connect(url, open_timeout=120, max_size=2**24)
        self._reader = asyncio.create_task(self._read())
        await self._ws.send(f"40{NS},")
        await asyncio.wait_for(self._connected.wait(), 120)
        return self

    async def _read(self) -> None:
        try:
            await self._frames()
        finally:
            # A dead socket fails its pending calls at once instead of after their timeout.
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"socket closed: {self.why}"))

    async def _frames(self) -> None:
        try:
            async for frame in self._ws:
                if frame == "2":
                    await self._ws.send("3")
                elif frame.startswith("40" + NS):
                    self._connected.set()
                elif frame.startswith("41" + NS):
                    # The server ended this namespace (a kick): recorded like an event.
                    self.events["disconnected"].append(None)
                elif frame.startswith("42" + NS + ","):
                    event, *data = json.loads(frame[len(NS) + 3 :])
                    self.events[event].append(data[0] if data else None)
                    self.arrived[event].append(time.monotonic())
                elif frame.startswith("43" + NS + ","):
                    body = frame[len(NS) + 3 :]
                    split = body.index("[")
                    future = self._acks.pop(int(body[:split]), None)
                    if future is not None and not future.done():
                        args = json.loads(body[split:])
                        future.set_result(args[0] if args else None)
        except Exception as exc:  # the connection closed or a frame made no sense
            self.why = repr(exc)
        else:
            self.why = "closed by the server"

    async def call(self, event: str, data: Any, timeout: float = 120) -> Any:
        self._next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[self._next] = future
        await self._ws.send(f"42{NS},{self._next}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, timeout)

    async def wait(self, event: str, count: int = 1, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while len(self.events[event]) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} #{count}")
            await asyncio.sleep(0.02)
        return self.events[event][count - 1]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
