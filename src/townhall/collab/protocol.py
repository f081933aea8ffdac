"""The y-protocols wire format: lib0 varints, sync steps 1/2, updates and awareness."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import pycrdt

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3

# An empty Yjs update: zero structs, empty delete set.
EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ProtocolError(ValueError):
    """A frame that does not follow the y-protocols encoding."""


def encode_varuint(num: int) -> bytes:
    """lib0 writeVarUint: 7 bits per byte, little-endian, high bit = more follows."""
    if num < 0:
        raise ValueError("varuint must be non-negative")
    out = bytearray()
    while num > 0x7F:
        out.append(0x80 | (num & 0x7F))
        num >>= 7
    out.append(num)
    return bytes(out)


def encode_varbytes(data: bytes) -> bytes:
    """lib0 writeVarUint8Array: length prefix then the bytes."""
    return encode_varuint(len(data)) + data


def encode_varstring(text: str) -> bytes:
    return encode_varbytes(text.encode())


class Reader:
    """A bounds-checked lib0 decoder over one frame."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varuint(self) -> int:
        num = 0
        shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ProtocolError("truncated varuint")
            byte = self.data[self.pos]
            self.pos += 1
            num |= (byte & 0x7F) << shift
            if byte < 0x80:
                return num
            shift += 7
            if shift > 63:
                raise ProtocolError("varuint too long")

    def varbytes(self) -> bytes:
        length = self.varuint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("truncated byte array")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def varstring(self) -> str:
        try:
            return self.varbytes().decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("invalid UTF-8 string") from exc

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def sync_step1(state_vector: bytes) -> bytes:
    return bytes([MESSAGE_SYNC, SyncType.STEP1]) + encode_varbytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return bytes([MESSAGE_SYNC, SyncType.STEP2]) + encode_varbytes(update)


def sync_update(update: bytes) -> bytes:
    return bytes([MESSAGE_SYNC, SyncType.UPDATE]) + encode_varbytes(update)


def awareness_message(update: bytes) -> bytes:
    return bytes([MESSAGE_AWARENESS]) + encode_varbytes(update)


@dataclass(frozen=True)
class Message:
    """One decoded y-websocket frame."""

    kind: int  # MESSAGE_SYNC, MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS
    sync_type: SyncType | None = None
    payload: bytes = b""


def decode_message(frame: bytes) -> Message:
    """Decode a y-websocket frame; raises ProtocolError on anything malformed."""
    reader = Reader(frame)
    kind = reader.varuint()
    if kind == MESSAGE_SYNC:
        raw = reader.varuint()
        try:
            sync_type = SyncType(raw)
        except ValueError as exc:
            raise ProtocolError(f"unknown sync message type {raw}") from exc
        return Message(kind, sync_type, reader.varbytes())
    if kind == MESSAGE_AWARENESS:
        return Message(kind, None, reader.varbytes())
    if kind == MESSAGE_QUERY_AWARENESS:
        return Message(kind)
    raise ProtocolError(f"unknown message type {kind}")


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: Any  # None means the client went away


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update: varUint(n) then n x (clientID, clock, JSON state)."""
    reader = Reader(update)
    count = reader.varuint()
    entries = []
    for _ in range(count):
        client_id = reader.varuint()
        clock = reader.varuint()
        try:
            state = json.loads(reader.varstring())
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ProtocolError("awareness state is not JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    out = bytearray(encode_varuint(len(entries)))
    for entry in entries:
        out += encode_varuint(entry.client_id)
        out += encode_varuint(entry.clock)
        out += encode_varstring(json.dumps(entry.state, separators=(",", ":")))
    return bytes(out)


def decode_state_vector(vector: bytes) -> dict[int, int]:
    """A lib0 state vector (varUint n, n x (client, clock)) as client -> clock."""
    reader = Reader(vector)
    return {reader.varuint(): reader.varuint() for _ in range(reader.varuint())}


def union_state_vectors(*vectors: bytes) -> bytes:
    """Per-client maximum: what a holder of all these states has at least."""
    clocks: dict[int, int] = {}
    for vector in vectors:
        for client, clock in decode_state_vector(vector).items():
            clocks[client] = max(clock, clocks.get(client, 0))
    out = bytearray(encode_varuint(len(clocks)))
    for client, clock in sorted(clocks.items(), reverse=True):
        out += encode_varuint(client) + encode_varuint(clock)
    return bytes(out)


def placeholder_update(vector: bytes) -> bytes:
    """An update of GC structs spanning exactly `vector`'s clocks, standing in for content."""
    clocks = {client: clock for client, clock in decode_state_vector(vector).items() if clock}
    out = bytearray(encode_varuint(len(clocks)))
    for client, clock in clocks.items():
        # One struct from clock 0: info byte 0 (GC) and its length.
        out += encode_varuint(1) + encode_varuint(client) + encode_varuint(0) + b"\x00"
        out += encode_varuint(clock)
    out += encode_varuint(0)  # empty delete set
    return bytes(out)


def extend_state_vector(vector: bytes, update: bytes) -> bytes:
    """The state vector of a holder of `vector` after it applied `update` (no document needed)."""
    # A diff starting past clock 0 only counts when it continues what is held; the placeholder
    # makes the merge see the held ranges without loading the document.
    return pycrdt.get_state(pycrdt.merge_updates(placeholder_update(vector), update))


class InvalidUpdate(ValueError):
    """Bytes that are not a decodable Yjs update."""


def validate_update(update: bytes) -> bytes:
    """Check that `update` decodes as a Yjs v1 update by applying it to a scratch Doc.

    Returns the update's state vector.
    """
    if not update:
        raise InvalidUpdate("empty update")
    scratch: pycrdt.Doc[Any] = pycrdt.Doc()
    try:
        scratch.apply_update(update)
        return pycrdt.get_state(update)
    except Exception as exc:
        raise InvalidUpdate(str(exc).split("\n", 1)[0]) from exc
    except BaseException as exc:
        # pyo3 panics derive from BaseException; they mean the bytes were malformed.
        if type(exc).__name__ == "PanicException":
            raise InvalidUpdate("malformed update") from exc
        raise
