"""A rolling reload in the middle of a quiz game and a doc edit session: no answer, no edit lost."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from typing import Any

import httpx
import pytest
import socketio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.collab.test_sockets import YClient
from tests.core.test_reload import SERVICE_RESTART
from tests.fixtures.app import make_settings, signup
from tests.fixtures.serve import Workers
from tests.fixtures.services import REDIS_URL
from tests.modules.doc.conftest import make_page
from tests.modules.quiz.helpers import NS, QUESTIONS, signup_and_quiz, stored_game
from tests.modules.quiz.helpers import Client as QuizClient
from townhall.collab import protocol as yp
from townhall.collab.engine import build_store
from townhall.collab.repository import CollabRepository
from townhall.core.platform import build_platform
from townhall.modules.doc.content import Node, Span, build_update, plain_text, read_state

# Long time limits: every question here closes because everyone answered, never on a timer
# that a slow reload could outrun.
QUIZ = [{**QUESTIONS[0], "time_limit": 240}, {**QUESTIONS[2], "time_limit": 240}]
# Per player, the option chosen for each question (2 + 2 = option 1; "water is wet" = 0).
CHOICES = {"Ann": [1, 0], "Bob": [0, 0], "Cy": [1, 1], "Dee": [1, 0], "Eve": [2, 1]}
TYPING_PAUSE = 0.05  # between two edits of one editor (load, not synchronisation)
SETTLE = 60.0  # how long a client may take to be back after the reload (a loaded runner)


class Rejoining:
    """A quiz socket that reconnects by itself, then restores its place with the quiz protocol."""

    def __init__(self) -> None:
        self.client = QuizClient(reconnect=True)
        self.restore: tuple[str, dict[str, Any]] | None = None
        self.drops = 0
        self.snapshots: list[dict[str, Any]] = []
        self.restored = asyncio.Event()  # connected and in the game
        self.back = asyncio.Event()  # restored after a drop
        self._lost = asyncio.Event()  # the current connection dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self.client.sio.on("connect", self._connected, namespace=NS)
        self.client.sio.on("disconnect", self._dropped, namespace=NS)

    def joined(self, event: str, data: dict[str, Any]) -> None:
        """In the game now; after a reconnect, `event` with `data` puts it back."""
        self.restore = (event, data)
        self.restored.set()

    async def _connected(self) -> None:
        self._lost = asyncio.Event()
        if self.restore is not None:
            task = asyncio.create_task(self._rejoin())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dropped(self, *reason: Any) -> None:
        self.drops += 1
        self.restored.clear()
        self._lost.set()

    async def _rejoin(self) -> None:
        assert self.restore is not None
        ack = await self.call(*self.restore)
        if ack is None:
            return  # dropped again: the next connect tries again
        self.snapshots.append(ok(ack))
        self.restored.set()
        if self.drops:
            self.back.set()

    async def call(self, event: str, data: Any = None) -> dict[str, Any] | None:
        """The ack of `event` on the current connection; None when it dropped first."""
        lost = self._lost
        if lost.is_set():
            return None
        call = asyncio.ensure_future(self.client.call(event, data))
        drop = asyncio.ensure_future(lost.wait())
        await asyncio.wait({call, drop}, return_when=asyncio.FIRST_COMPLETED)
        drop.cancel()
        if not call.done():
            call.cancel()
            return None
        try:
            ack: dict[str, Any] = call.result()
        except socketio.exceptions.BadNamespaceError:
            return None  # dropped before the event went out
        return ack

    async def acked(self, event: str, data: Any = None) -> dict[str, Any]:
        """`event` sent again after each drop until one connection acks it (idempotent only)."""
        while True:
            async with asyncio.timeout(SETTLE):
                await self.restored.wait()
            ack = await self.call(event, data)
            if ack is not None:
                return ack

    async def settled(self) -> None:
        """Back in the game after the reload took its connection away."""
        async with asyncio.timeout(SETTLE):
            await self.back.wait()
            await self.restored.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.client.sio.shutdown()  # also ends a reconnection in progress


def ok(ack: dict[str, Any] | None) -> dict[str, Any]:
    """An ack that arrived and accepted the event."""
    assert ack is not None, "the connection dropped before the ack"
    assert ack["ok"], ack
    return ack


def page_lines(client: YClient) -> list[str]:
    """The page's paragraphs, one text per line."""
    return plain_text(read_state(client.doc.get_update())).splitlines()


class Editor:
    """A y-websocket client typing paragraphs into a page; it reconnects and resyncs on a close."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.y = YClient(None)
        self.typed: list[str] = []
        self.offline: list[str] = []  # typed while no connection was open
        self.closes: list[int | None] = []
        self.synced = asyncio.Event()
        self.back = asyncio.Event()  # synced again after the server closed a connection
        self.changed = asyncio.Event()
        self._stopping = False
        self._typing = True
        self._runs = [asyncio.create_task(self._connection()), asyncio.create_task(self._type())]

    async def _connection(self) -> None:
        while not self._stopping:
            try:
                ws: ClientConnection = await websockets.connect(self.url, open_timeout=30)
            except (OSError, InvalidHandshake, TimeoutError):
                await asyncio.sleep(0.1)  # a refused handshake: retry, as y-websocket does
                continue
            # Before the handshake: an edit made from now on goes out on this socket, and
            # the server's step 1 is answered with every edit it lacks (typed offline too).
            self.y.ws, self.y.synced = ws, False
            try:
                await self.y.handshake()
                self.synced.set()
                self.changed.set()
                if self.closes:
                    self.back.set()
                async for frame in ws:
                    if isinstance(frame, bytes):  # y-websocket speaks binary only
                        await self.y.handle(frame)
                        self.changed.set()
            except (ConnectionClosed, TimeoutError):
                pass
            finally:
                self.synced.clear()
                await ws.close()
                self.closes.append(ws.close_code)
            if (ws.close_code or 0) >= 4000:
                return  # refused (4403, 4401...): reconnecting would not help
            if not self._stopping:
                self._edit(offline=True)  # the next handshake must carry it to the server

    def _edit(self, offline: bool = False) -> bytes:
        token = f"{self.name}{len(self.typed) + 1}"
        paragraph = Node("paragraph", children=[Span(token)])
        self.typed.append(token)
        if offline:
            self.offline.append(token)
        return build_update([paragraph], doc=self.y.doc)

    async def _type(self) -> None:
        while self._typing:
            update = self._edit()
            if self.y.ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await self.y.ws.send(yp.sync_update(update))
            await asyncio.sleep(TYPING_PAUSE)

    async def until(self, event: asyncio.Event) -> None:
        """Wait for `event`; fail at once if the server refused this client for good."""
        waiter = asyncio.ensure_future(event.wait())
        await asyncio.wait(
            {waiter, self._runs[0]}, timeout=SETTLE, return_when=asyncio.FIRST_COMPLETED
        )
        if not waiter.done():
            waiter.cancel()
            raise AssertionError(f"editor {self.name} not synced; last closes {self.closes[-3:]}")

    def stop_typing(self) -> None:
        self._typing = False

    async def holds(self, tokens: set[str], timeout: float = 30) -> None:
        """Wait until this client's page has a paragraph for each of `tokens`."""
        async with asyncio.timeout(timeout):
            while True:
                self.changed.clear()
                if tokens <= set(page_lines(self.y)):
                    return
                await self.changed.wait()

    async def close(self) -> None:
        self._stopping, self._typing = True, False
        for run in self._runs:
            run.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)
        if self.y.ws is not None:
            await self.y.ws.close()


async def shared_page(base: str) -> tuple[str, str, str]:
    """A Docs page of an owner, shared with an editor: (page id, owner token, editor token)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        owner = await signup(http, "pageowner@example.com")
        editor = await signup(http, "pageeditor@example.com")
        made = await http.post(
            "/api/v1/doc/workspaces", json={"name": "Live"}, headers=owner["headers"]
        )
        assert made.status_code == 201, made.text
        workspace = made.json()["id"]
        added = await http.post(
            f"/api/v1/doc/workspaces/{workspace}/members",
            json={"email": "pageeditor@example.com", "role": "editor"},
            headers=owner["headers"],
        )
        assert added.status_code == 201, added.text
        page = await make_page(http, owner["headers"], workspace, "Minutes")
    return page, owner["access_token"], editor["access_token"]


async def check_results(
    base: str,
    token: str,
    game_id: str,
    acks: dict[tuple[str, int], dict[str, Any]],
    unacked: set[tuple[str, int]],
    podium: list[dict[str, Any]],
) -> None:
    """Every acked answer is stored with its ack's points, each answer once; totals add up."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        stored = await stored_game(http, game_id)
        response = await http.get(f"/api/v1/quizzes/games/{game_id}/results.csv")
    assert response.status_code == 200, response.text
    rows: dict[tuple[str, int], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(response.text)):
        rows.setdefault((row["nickname"], int(row["question"]) - 1), []).append(row)
    every = {(name, index) for name in CHOICES for index in range(len(QUIZ))}
    assert set(acks) | unacked == every
    assert set(rows) == every
    for (name, index), ack in acks.items():
        [row] = rows[name, index]
        assert (int(row["points"]), int(row["bonus"])) == (ack["points"], ack["bonus"]), row
    totals = {p["nickname"]: p["score"] for p in stored["players"]}
    for name in CHOICES:
        answered = [row for index in range(len(QUIZ)) for row in rows[name, index]]
        assert len(answered) == len(QUIZ), answered
        assert all(row["outcome"] != "none" for row in answered), answered
        gained = sum(int(row["points"]) + int(row["bonus"]) for row in answered)
        assert totals[name] == gained, (name, answered)
    assert all(totals[p["nickname"]] == p["score"] for p in podium), podium


async def flushed_state(workers: Workers, service: str, doc_id: str) -> bytes:
    """The document's database row after one more flush of the servers' write-back buffer."""
    settings = make_settings(
        workers.directory / "flusher",
        database_url=workers.env["TOWNHALL_DATABASE_URL"],
        redis_url=REDIS_URL,
        collab_key_prefix=workers.env["TOWNHALL_COLLAB_KEY_PREFIX"],
    )
    async with build_platform(settings) as platform:
        store = build_store(platform)
        await store.flush()
        async with platform.db.sessionmaker() as session:
            document = await CollabRepository(session).get_document(service, doc_id)
    assert document is not None, "the document was never stored"
    return document.state


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(240)  # three app imports in a row: minutes on a loaded runner
async def test_a_rolling_reload_loses_no_answer_and_no_edit(workers: Workers) -> None:
    base = workers.base
    old = workers.pids()
    token, quiz_id = await signup_and_quiz(base, "livehost@example.com", QUIZ)
    page, owner_token, editor_token = await shared_page(base)
    doc_id = uuid.UUID(page).hex  # the collab id of a Docs page
    ws_base = base.replace("http://", "ws://") + f"/collab/ws/doc/{doc_id}?token="

    host = Rejoining()
    players = {name: Rejoining() for name in CHOICES}
    editors = [Editor(ws_base + owner_token, "a"), Editor(ws_base + editor_token, "b")]
    try:
        await host.client.connect(base, token)
        created = ok(await host.call("host_create", {"quiz_id": quiz_id}))
        pin, game_id = created["pin"], created["game_id"]
        host.joined("host_join", {"pin": pin})
        for name, player in players.items():
            await player.client.connect(base)
            joined = ok(await player.call("join", {"pin": pin, "nickname": name}))
            player.joined("rejoin", {"token": joined["token"]})
        for editor in editors:
            await editor.until(editor.synced)

        ok(await host.call("next"))
        for player in players.values():
            await player.client.wait("question")
        acks: dict[tuple[str, int], dict[str, Any]] = {}
        unacked: set[tuple[str, int]] = set()

        async def answer(name: str, index: int) -> None:
            data = {"index": index, "answer": CHOICES[name][index]}
            player = players[name]
            drops = player.drops
            ack = await player.acked("answer", data)
            if ack["ok"]:
                acks[name, index] = ack
            else:
                # Taken, but its ack went down with the old worker: the retry is refused.
                assert ack["error"] == "already_answered", ack
                assert player.drops > drops, ack
                unacked.add((name, index))

        # Ann and Bob answer before the reload, Cy as it starts, Dee once she is back from
        # her worker's swap and Eve after the reload: her answer closes the question.
        await answer("Ann", 0)
        await answer("Bob", 0)
        reload = asyncio.create_task(asyncio.to_thread(workers.reload))
        racing = asyncio.create_task(answer("Cy", 0))

        async def dee_when_back() -> None:
            await players["Dee"].settled()
            await answer("Dee", 0)

        returning = asyncio.create_task(dee_when_back())
        done = await reload
        assert done.returncode == 0, done.stderr + workers.log()
        await racing
        await returning
        for client in (host, *players.values()):
            await client.settled()
        for editor in editors:
            await editor.until(editor.back)
            await editor.until(editor.synced)
        await answer("Eve", 0)

        # The game goes on, on the new workers: results, the next question, the end.
        first = await host.client.wait("question_results", timeout=30)
        assert first["index"] == 0, first
        assert first["distribution"]["answered"] == len(CHOICES), first
        ok(await host.call("next"))
        for player in players.values():
            assert (await player.client.wait("question", count=2, timeout=30))["index"] == 1
        await asyncio.gather(*(answer(name, 1) for name in CHOICES))
        final = await host.client.wait("question_results", count=2, timeout=30)
        assert final["final"], final
        finished = ok(await host.call("finish"))
        for player in players.values():
            await player.client.wait("game_over", timeout=30)

        new = workers.pids()
        assert len(new) == 2, new
        assert not new & old, (old, new)
        assert all(str(pid) in done.stdout for pid in new), done.stdout
        for name, client in [("host", host), *players.items()]:
            assert client.drops >= 1, name  # every socket was on an old worker

        await check_results(base, token, game_id, acks, unacked, finished["podium"])
        # Each rejoin drew the player's screen from the store: Ann and Bob had answered.
        for name in ("Ann", "Bob"):
            for snapshot in players[name].snapshots:
                assert snapshot["nickname"] == name, snapshot
                assert snapshot["answered"], snapshot
                assert snapshot["score"] == acks[name, 0]["score"], snapshot

        # Both editors end with every edit of either, edits typed offline included, once each.
        for editor in editors:
            editor.stop_typing()
        everything = set(editors[0].typed) | set(editors[1].typed)
        for editor in editors:
            await editor.holds(everything)
        lines = page_lines(editors[0].y)
        assert lines == page_lines(editors[1].y)
        assert sorted(lines) == sorted(everything)
        assert all(SERVICE_RESTART in editor.closes for editor in editors), editors[0].closes
        assert all(editor.offline for editor in editors)
        # A new client is served all of it.
        async with websockets.connect(ws_base + owner_token) as ws:
            fresh = YClient(ws)
            await fresh.handshake()
            await fresh.pump_until(lambda: everything <= set(page_lines(fresh)), timeout=30)
    finally:
        for client in (host, *players.values()):
            await client.close()
        for editor in editors:
            await editor.close()

    # Once the workers are gone (storing what their rooms held), a flush puts all in the database.
    workers.stop()
    persisted = plain_text(read_state(await flushed_state(workers, "doc", doc_id))).splitlines()
    assert sorted(persisted) == sorted(everything)
