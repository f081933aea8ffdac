"""The y-protocols encoding: lib0 varints, sync steps, awareness, update validation."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.collab.helpers import text_of, text_update

from townhall.collab import protocol as yp


@pytest.mark.parametrize(
    ("num", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_varuint_matches_lib0(num: int, encoded: bytes) -> None:
    assert yp.encode_varuint(num) == encoded
    assert yp.Reader(encoded).varuint() == num
    assert yp.encode_varuint(num) == pycrdt.write_var_uint(num)


@given(st.integers(min_value=0, max_value=2**53))
def test_varuint_round_trip(num: int) -> None:
    reader = yp.Reader(yp.encode_varuint(num) + b"rest")
    assert reader.varuint() == num
    assert reader.data[reader.pos :] == b"rest"


def test_truncated_frames_raise_protocol_errors() -> None:
    with pytest.raises(yp.ProtocolError):
        yp.Reader(b"\x80").varuint()
    with pytest.raises(yp.ProtocolError):
        yp.decode_message(bytes([0, 2, 10, 1, 2]))  # length 10, two bytes present
    with pytest.raises(yp.ProtocolError):
        yp.decode_message(bytes([0, 9, 0]))  # unknown sync type
    with pytest.raises(yp.ProtocolError):
        yp.decode_message(bytes([7]))  # unknown message type
    with pytest.raises(yp.ProtocolError):
        yp.decode_message(b"")


@given(st.binary(max_size=64))
def test_decoding_random_bytes_never_raises_anything_else(frame: bytes) -> None:
    with contextlib.suppress(yp.ProtocolError):
        yp.decode_message(frame)


def test_sync_step1_step2_between_two_docs() -> None:
    server: pycrdt.Doc[Any] = pycrdt.Doc()
    server.apply_update(text_update("server text"))
    client: pycrdt.Doc[Any] = pycrdt.Doc()
    client.apply_update(text_update("client text"))

    step1 = yp.sync_step1(client.get_state())
    message = yp.decode_message(step1)
    assert (message.kind, message.sync_type) == (yp.MESSAGE_SYNC, yp.SyncType.STEP1)
    # pycrdt's own handler gives the same reply bytes as ours.
    reply = yp.sync_step2(server.get_update(message.payload))
    assert reply == pycrdt.handle_sync_message(step1[1:], server)
    step2 = yp.decode_message(reply)
    client.apply_update(step2.payload)
    server.apply_update(client.get_update(server.get_state()))
    assert client.get_update() == server.get_update()
    assert text_of(client.get_update()) in ("server textclient text", "client textserver text")


def test_update_message_is_what_y_websocket_sends() -> None:
    update = text_update("x")
    assert yp.sync_update(update) == pycrdt.create_update_message(update)
    assert yp.decode_message(yp.sync_update(update)).payload == update


def test_awareness_round_trip_matches_pycrdt() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    awareness = pycrdt.Awareness(doc)
    awareness.set_local_state({"user": {"name": "ann"}})
    encoded = awareness.encode_awareness_update([doc.client_id])
    entries = yp.decode_awareness(encoded)
    assert entries[0].client_id == doc.client_id
    assert entries[0].state == {"user": {"name": "ann"}}
    other: pycrdt.Doc[Any] = pycrdt.Doc()
    remote = pycrdt.Awareness(other)
    remote.apply_awareness_update(yp.encode_awareness(entries), "test")
    assert remote.states[doc.client_id] == {"user": {"name": "ann"}}


@pytest.mark.parametrize(
    "bad", [b"", b"garbage!!", b"\xff" * 20, os.urandom(64)], ids=["empty", "text", "ff", "random"]
)
def test_validate_rejects_garbage(bad: bytes) -> None:
    with pytest.raises(yp.InvalidUpdate):
        yp.validate_update(bad)


def test_validate_rejects_truncated_update_and_accepts_whole() -> None:
    update = text_update("hello world")
    with pytest.raises(yp.InvalidUpdate):
        yp.validate_update(update[:-3])
    assert yp.validate_update(update) == pycrdt.get_state(update)
