"""Live probes: WebSocket, SSE, Socket.IO and signed file URLs, registered next to the HTTP ones.

A refused socket's outcome is its close code; an open one's is the word the matrix expects
(`open`, `subscribed`, `ready`) or what the server answered on it (an error status or reason).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.authz.matrix import Outcome
from tests.authz.probes_http import Probe, table
from tests.authz.world import SYNC, World
from tests.modules.quiz.helpers import PNG, Client
from townhall.collab.protocol import sync_step1

Reading = Callable[[Any], Outcome | None]
LIVE_TIMEOUT = 5.0
HELLO = {"type": "ping"}  # an anonymous client's first message: not an auth message


async def converse(url: str, sends: list[Any], reading: Reading) -> Outcome:
    """Open `url`, send `sends` (dicts as JSON), read until `reading` names an outcome."""
    try:
        async with connect(url) as ws:
            for message in sends:
                await ws.send(message if isinstance(message, bytes) else json.dumps(message))
            async with asyncio.timeout(LIVE_TIMEOUT):
                while True:
                    outcome = reading(await ws.recv())
                    if outcome is not None:
                        return outcome
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else "closed"


def socket_url(world: World, role: str, path: str) -> str:
    token = world.token(role)
    return f"{world.ws_base}{path}" + (f"?token={token}" if token else "")


def json_reply(decide: Callable[[dict[str, Any]], Outcome | None]) -> Reading:
    def reading(raw: Any) -> Outcome | None:
        return decide(json.loads(raw)) if isinstance(raw, str) else None

    return reading


def yjs(service: str, key: str) -> Probe:
    """A y-websocket room: open when the server answers our sync step 1."""

    async def run(world: World, role: str) -> Outcome:
        url = socket_url(world, role, f"/collab/ws/{service}/{world.ids[key]}")
        return await converse(url, [sync_step1(b"\x00")], lambda frame: "open")

    return run


def signaling(service: str, key: str) -> Probe:
    """A y-webrtc topic: subscribed when our own publish comes back; else the refusal reason."""

    async def run(world: World, role: str) -> Outcome:
        topic = f"townhall:{service}:{world.ids[key]}"
        sends = [
            {"type": "subscribe", "topics": [topic]},
            {"type": "publish", "topic": topic, "data": "hello"},
        ]

        def decide(msg: dict[str, Any]) -> Outcome | None:
            kinds = {"publish": "subscribed", "error": msg.get("reason")}
            return kinds.get(msg["type"])

        return await converse(
            socket_url(world, role, "/collab/signaling"), sends, json_reply(decide)
        )

    return run


async def sync_subscribe(world: World, role: str) -> Outcome:
    subscribe = {"type": "subscribe", "streams": {world.ids["collection"]: 0}}

    def decide(msg: dict[str, Any]) -> Outcome | None:
        return {"subscribed": "subscribed", "error": msg.get("status")}.get(msg["type"])

    url = socket_url(world, role, "/api/v1/sync/ws")
    return await converse(url, [subscribe], json_reply(decide))


async def link_feed(world: World, role: str) -> Outcome:
    sends = [] if world.token(role) else [HELLO]
    ready = json_reply(lambda msg: "ready" if msg["type"] == "ready" else None)
    return await converse(socket_url(world, role, "/api/v1/links/ws"), sends, ready)


async def notification_feed(world: World, role: str) -> Outcome:
    """What the feeds opened while building the world received when the report changed."""
    if not world.token(role):
        url = socket_url(world, role, "/api/v1/reports/ws")
        return await converse(url, [HELLO], json_reply(lambda msg: msg["type"]))
    notes = world.live["notified"][role]
    mine = [n for n in notes if n["notification"]["report_id"] == world.ids["report"]]
    return "delivered" if mine else "silent"


async def sse_events(world: World, role: str) -> Outcome:
    url = f"{SYNC}/{world.ids['collection']}/events"
    async with world.http.stream("GET", url, headers=world.h(role)) as response:
        return response.status_code


for resource, service, key in [
    ("doc_page", "doc", "page_collab"),
    ("public_page", "doc", "public_collab"),
    ("workbook", "sheet", "workbook"),
]:
    table("ws", resource, {"yjs": yjs(service, key), "signaling": signaling(service, key)})
table("ws", "sync_collection", {"subscribe": sync_subscribe})
table("ws", "link", {"feed": link_feed})
table("ws", "notification", {"feed": notification_feed})
table("sse", "sync_collection", {"events": sse_events})


# -- Socket.IO -------------------------------------------------------------------------------

Step = Callable[[World, Client], Awaitable[Any]]


def answer_code(answer: dict[str, Any]) -> Outcome:
    return "ok" if answer.get("ok") else str(answer.get("error"))


def quiz_event(*steps: Step) -> Probe:
    """On a socket of `role` (the world's player socket for `player`): the last step's code."""

    async def run(world: World, role: str) -> Outcome:
        if role == "player":
            return answer_code([await step(world, world.live["player"]) for step in steps][-1])
        client = await Client().connect(world.base, world.token(role))
        try:
            return answer_code([await step(world, client) for step in steps][-1])
        finally:
            await client.close()

    return run


def call(event: str, payload: dict[str, Any] | None = None, **ids: str) -> Step:
    """`event` with `payload` plus fields naming world ids (e.g. pin="pin_a")."""

    async def step(world: World, client: Client) -> Any:
        return await client.call(
            event, {**(payload or {}), **{k: world.ids[v] for k, v in ids.items()}}
        )

    return step


async def control(world: World, role: str) -> Outcome:
    """The owner opens a question of a game of its own (a fresh one: game A stays in the lobby);
    anyone else tries to take game A over first, then to open its next question."""
    if role == "owner":
        return await quiz_event(call("host_create", quiz_id="quiz"), call("next"))(world, role)
    return await quiz_event(call("host_join", pin="pin_a"), call("next"))(world, role)


table("socketio", "quiz", {"host_create": quiz_event(call("host_create", quiz_id="quiz"))})
table(
    "socketio",
    "game",
    {
        "host_join": quiz_event(call("host_join", pin="pin_a")),
        "control": control,
        # Host-only moderation, tried by others after trying to take game A over.
        "kick": quiz_event(call("host_join", pin="pin_a"), call("kick", {"player": 1})),
        "mute": quiz_event(call("host_join", pin="pin_a"), call("mute", {"player": 1})),
    },
)
table(
    "socketio",
    "other_game",
    {
        "answer": quiz_event(call("answer", {"index": 0, "answer": 1}, pin="pin_b")),
        "chat": quiz_event(call("chat", {"text": "hi"}, pin="pin_b")),
        "host_join": quiz_event(call("host_join", pin="pin_b")),
    },
)


# -- signed file URLs --------------------------------------------------------------------------


def relative(url: str, **query: str | int) -> str:
    parsed = urlparse(url)
    merged = {k: v[0] for k, v in parse_qs(parsed.query).items()} | query
    return f"{parsed.path}?{urlencode(merged)}"


def file_url(change: Callable[[World, str], str], method: str = "GET") -> Probe:
    """A request for the doc image's file through a signed URL changed by `change`."""

    async def run(world: World, role: str) -> Outcome:
        url = await world.platform.storage.signed_url(world.ids["file_key"])
        headers = {**world.h(role), "Content-Type": "image/png"}
        content = PNG if method == "PUT" else None  # a real image: only the signature is wrong
        response = await world.http.request(
            method, change(world, url), content=content, headers=headers
        )
        return response.status_code

    return run


def tampered(world: World, url: str) -> str:
    sig = parse_qs(urlparse(url).query)["sig"][0]
    return relative(url, sig=sig[:-1] + ("A" if sig[-1] != "A" else "B"))


def expired(world: World, url: str) -> str:
    past = int(time.time()) - 10
    sig = world.platform.storage.signer.signature("GET", world.ids["file_key"], past)
    return relative(url, exp=past, sig=sig)


def other_key(world: World, url: str) -> str:
    """A signature made for another key of the same folder, used on this file's key."""
    key = world.ids["file_key"]
    exp = int(parse_qs(urlparse(url).query)["exp"][0])
    decoy = key.rsplit("/", 1)[0] + "/" + "0" * 32
    return relative(url, sig=world.platform.storage.signer.signature("GET", decoy, exp))


table(
    "signed_url",
    "stored_file",
    {
        "valid": file_url(lambda world, url: relative(url)),
        "tampered": file_url(tampered),
        "expired": file_url(expired),
        "other_key": file_url(other_key),
        "unsigned": file_url(lambda world, url: urlparse(url).path),
        "put_with_get_signature": file_url(lambda world, url: relative(url), method="PUT"),
    },
)
