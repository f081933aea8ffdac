"""Async Python client of the Sync API: a local replica that follows the server.

    async with SyncClient("http://127.0.0.1:8000", token, persist="replica.db") as client:
        await client.pull("board")            # HTTP catch-up from the stored state vector
        async for event in client.follow(["board"]):   # live over WebSocket
            print(client.documents("board"))

Writes go through HTTP (`create`, `patch`, `put`, `delete`); the replica changes only when
the server's events arrive, so every replica converges to the server's state.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from townhall.sync.patching import JSONDoc, apply_event

API = "/api/v1/sync/collections"
RECONNECT_MIN_SECONDS = 0.1


class SyncClientError(RuntimeError):
    """The server refused a request; `status` and `detail` come from its problem+json body."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Replica:
    """Documents and positions per stream, optionally persisted to a SQLite file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.streams: dict[str, dict[str, JSONDoc]] = {}
        self.vector: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(str(path))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS replica"
                " (stream TEXT PRIMARY KEY, seq INTEGER, docs TEXT)"
            )
            for stream, seq, docs in self._db.execute("SELECT stream, seq, docs FROM replica"):
                self.vector[stream] = int(seq)
                self.streams[stream] = json.loads(docs)

    def reset(self, stream: str, seq: int, snapshot: dict[str, Any]) -> None:
        self.streams[stream] = {k: copy.deepcopy(v["data"]) for k, v in snapshot.items()}
        self.vector[stream] = seq

    def apply(self, stream: str, event: dict[str, Any]) -> bool:
        """Apply the next event; False (ignored) for one already applied."""
        if event["seq"] <= self.vector.get(stream, 0):
            return False
        if event["seq"] != self.vector.get(stream, 0) + 1:
            raise SyncClientError(0, f"{stream}: event {event['seq']} skips ahead; resync")
        apply_event(self.streams.setdefault(stream, {}), event)
        self.vector[stream] = event["seq"]
        return True

    def save(self, stream: str) -> None:
        if self._db is None:
            return
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO replica (stream, seq, docs) VALUES (?, ?, ?)",
                (stream, self.vector.get(stream, 0), json.dumps(self.streams.get(stream, {}))),
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class SyncClient:
    """HTTP for writes and pulls, WebSocket for live events; resumes from its state vector."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        persist: str | Path | None = None,
        client_id: str = "python",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client_id = client_id
        self.replica = Replica(persist)
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=30,
        )

    async def __aenter__(self) -> SyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()
        self.replica.close()

    def documents(self, stream: str) -> dict[str, JSONDoc]:
        return self.replica.streams.get(stream, {})

    @property
    def vector(self) -> dict[str, int]:
        return dict(self.replica.vector)

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise SyncClientError(response.status_code, str(detail))
        return response

    # Writes (server-authoritative: the replica changes when the events come back).

    async def create(self, stream: str, data: JSONDoc, doc_id: str | None = None) -> JSONDoc:
        body: dict[str, Any] = {"data": data} if doc_id is None else {"id": doc_id, "data": data}
        result: JSONDoc = (await self._call("POST", f"{API}/{stream}/documents", json=body)).json()
        return result

    async def patch(
        self, stream: str, doc_id: str, merge: JSONDoc, version: int | None = None
    ) -> JSONDoc:
        headers = {"Content-Type": "application/merge-patch+json"}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        response = await self._call(
            "PATCH",
            f"{API}/{stream}/documents/{doc_id}",
            content=json.dumps(merge),
            headers=headers,
        )
        result: JSONDoc = response.json()
        return result

    async def put(
        self, stream: str, doc_id: str, data: JSONDoc, version: int | None = None
    ) -> JSONDoc:
        headers = {} if version is None else {"If-Match": f'"{version}"'}
        response = await self._call(
            "PUT", f"{API}/{stream}/documents/{doc_id}", json=data, headers=headers
        )
        result: JSONDoc = response.json()
        return result

    async def delete(self, stream: str, doc_id: str) -> None:
        await self._call("DELETE", f"{API}/{stream}/documents/{doc_id}")

    # Reads.

    async def pull(self, stream: str) -> int:
        """Catch up over HTTP from the state vector (snapshot + tail when far behind)."""
        applied = 0
        while True:
            since = self.replica.vector.get(stream, 0)
            page = (
                await self._call("GET", f"{API}/{stream}/changes", params={"since": since})
            ).json()
            if page["reset"]:
                self.replica.reset(stream, page["snapshot_seq"], page["snapshot"] or {})
            for event in page["events"]:
                applied += self.replica.apply(stream, event)
            self.replica.save(stream)
            if not page["more"]:
                return applied

    async def ack(self, stream: str) -> None:
        """Tell the server how far this client got (operators see who is behind)."""
        body = {
            "client_id": self.client_id,
            "streams": {stream: self.replica.vector.get(stream, 0)},
        }
        await self._call("POST", f"{API}/{stream}/ack", json=body)

    async def follow(
        self, streams: Iterable[str], *, reconnect: bool = True, max_delay: float = 5.0
    ) -> AsyncIterator[dict[str, Any]]:
        """Live events over WebSocket, applied to the replica before they are yielded.

        A dropped connection is retried with backoff, resubscribing from the replica's state
        vector, so no event is missed; a refusal (not a member any more) raises.
        """
        import websockets

        names = list(streams)
        url = self.base_url.replace("http", "ws", 1) + f"/api/v1/sync/ws?token={self.token}"
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                async with websockets.connect(url) as ws:
                    await self._subscribe(ws, names)
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("type") == "subscribed":
                            delay = RECONNECT_MIN_SECONDS  # connected and accepted again
                        elif message.get("type") == "error" and message.get("resubscribe"):
                            await self._subscribe(ws, [message["stream"]])
                        else:
                            self._receive(message)
                        yield message
            except websockets.InvalidStatus as exc:
                if exc.response.status_code < 500 or not reconnect:
                    raise  # refused (bad token): retrying cannot help
            except (OSError, websockets.ConnectionClosed):
                if not reconnect:
                    raise
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)

    async def _subscribe(self, ws: Any, names: list[str]) -> None:
        vector = {s: self.replica.vector.get(s, 0) for s in names}
        await ws.send(json.dumps({"type": "subscribe", "streams": vector}))

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            self.replica.reset(message["stream"], message["seq"], message["documents"] or {})
            self.replica.save(message["stream"])
        elif kind == "event":
            if self.replica.apply(message["stream"], message):
                self.replica.save(message["stream"])
        elif kind == "error":
            raise SyncClientError(message.get("status", 0), message.get("message", ""))

    async def wait_for(self, stream: str, seq: int, timeout: float = 10.0) -> None:
        """Follow `stream` until the replica reaches `seq`."""
        async with asyncio.timeout(timeout):
            if self.replica.vector.get(stream, 0) >= seq:
                return
            async for _ in self.follow([stream]):
                if self.replica.vector.get(stream, 0) >= seq:
                    return
