"""y-websocket frames and Yjs updates: ProtocolError (close 1008) / InvalidUpdate (400) only."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pycrdt
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import damaged, fuzz, json_values, run, texts, varbytes, varuints
from townhall.collab import protocol as yp
from townhall.collab.rooms import Peer, Room, RoomManager

if TYPE_CHECKING:
    from townhall.collab.service import CollabStore


def _update(words: list[str], keys: dict[str, int]) -> bytes:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=7)  # fixed: hypothesis replays examples
    text = doc.get("text", type=pycrdt.Text)
    for word in words:
        text += word
    ymap = doc.get("map", type=pycrdt.Map)
    for key, value in keys.items():
        ymap[key] = value
    return doc.get_update()


# Real updates (the fuzzers also damage them: cut, bytes flipped, bytes inserted).
real_updates = st.builds(
    _update,
    st.lists(st.text(min_size=1, max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**31), 2**31)),
)


updates = real_updates | damaged(real_updates) | st.binary(max_size=64)
json_texts = json_values.map(json.dumps) | texts | st.integers(1, 5000).map(lambda n: "[" * n)


@st.composite
def awareness_updates(draw: st.DrawFn) -> bytes:
    entries = draw(st.lists(st.tuples(varuints, varuints, json_texts), max_size=3))
    count = draw(st.sampled_from([len(entries), len(entries) + 1]))
    out = yp.encode_varuint(count)
    for client, clock, state in entries:
        out += client + clock + draw(varbytes(st.just(state.encode())))
    return out


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Frames that get past the first varuint: a known kind, mostly well-formed payloads."""
    kind = draw(
        st.sampled_from([yp.MESSAGE_SYNC, yp.MESSAGE_AWARENESS, yp.MESSAGE_QUERY_AWARENESS])
    )
    head = yp.encode_varuint(kind)
    if kind == yp.MESSAGE_SYNC:
        head += draw(st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x03"]) | varuints)
        vectors = st.builds(pycrdt.get_state, real_updates) | st.binary(max_size=16)
        head += draw(varbytes(updates | vectors))
    elif kind == yp.MESSAGE_AWARENESS:
        head += draw(varbytes(awareness_updates()))
    return head + draw(st.binary(max_size=4))


@given(st.binary(max_size=128) | frames())
@fuzz
def test_decode_message(frame: bytes) -> None:
    with contextlib.suppress(yp.ProtocolError):
        message = yp.decode_message(frame)
        if message.kind == yp.MESSAGE_AWARENESS:
            yp.decode_awareness(message.payload)


@given(awareness_updates() | st.binary(max_size=64))
@fuzz
def test_decode_awareness(update: bytes) -> None:
    with contextlib.suppress(yp.ProtocolError):
        yp.decode_awareness(update)


@given(updates)
@fuzz
def test_validate_update(update: bytes) -> None:
    try:
        vector = yp.validate_update(update)
    except yp.InvalidUpdate:
        return
    yp.decode_state_vector(vector)  # what it returns is a well-formed state vector


@dataclass
class _Store:
    """What a room needs of the collab store: settings and append (never reached here)."""

    settings: Any = field(
        default_factory=lambda: SimpleNamespace(
            collab_store_debounce_seconds=3600, collab_store_max_debounce_seconds=3600
        )
    )

    async def append(self, service: str, doc_id: str, update: bytes) -> None:
        return None


async def _receive(frames: list[bytes], role: str) -> None:
    manager = RoomManager(cast("CollabStore", _Store()), pubsub=None)
    room = Room(manager, "doc", "fuzz")
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    peer = Peer(send, role)  # type: ignore[arg-type]
    await room.join(peer)
    for frame in frames:
        # What /collab/ws does: a ProtocolError closes the socket with 1008.
        try:
            await room.receive(peer, frame)
        except yp.ProtocolError:
            return
    for frame in sent:
        yp.decode_message(frame)  # everything the room sends back decodes


@given(
    st.lists(frames() | st.binary(max_size=32), min_size=1, max_size=4),
    st.sampled_from(["editor", "viewer"]),
)
@fuzz
def test_room_receive(frames: list[bytes], role: str) -> None:
    run(_receive(frames, role))
