"""Shared pieces of the parser fuzzers: settings, JSON values, lib0 framing, async runner.

FUZZ_EXAMPLES sets the examples per fuzzer (default 200, so the suite stays well under a
minute in CI); `FUZZ_EXAMPLES=5000 make fuzz` runs a longer campaign.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from townhall.collab.protocol import encode_varuint

T = TypeVar("T")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

# deadline=None: the first call of a parser (lexbor, openpyxl, Pillow) pays its warm-up.
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For parsers that cost milliseconds per call (trafilatura, openpyxl, Pillow).
SLOW_EXAMPLES = max(EXAMPLES // 4, 10)
fuzz_slow = settings(fuzz, max_examples=SLOW_EXAMPLES)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one example's coroutine on a private loop (the tests themselves are sync)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


# JSON ------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
# Strings that mean something to the parsers: numbers, pointers, padding, NUL.
tricky_strings = st.sampled_from(
    ["", "0", "-1", "1e400", "inf", "nan", "/", "~", "~0", "~1", "/a/0", "-", " ", "\x00", "é"]
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars | tricky_strings,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | tricky_strings, children, max_size=5)
    ),
    max_leaves=25,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=6
)

# lib0 framing ---------------------------------------------------------------------------------

varuints = st.integers(min_value=0, max_value=2**64).map(encode_varuint) | st.sampled_from(
    [b"\x80", b"\xff\xff", b"\xff" * 11]  # truncated or too long
)


@st.composite
def varbytes(draw: st.DrawFn, payload: st.SearchStrategy[bytes] | None = None) -> bytes:
    """A lib0 length-prefixed byte array, mostly honest, sometimes lying about its length."""
    data = draw(payload if payload is not None else st.binary(max_size=64))
    length = draw(st.sampled_from([len(data)] * 4 + [len(data) + 1, max(len(data) - 1, 0)]))
    return encode_varuint(length) + data


@st.composite
def damaged(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Valid bytes, then up to three hits: a byte flipped, the rest cut off, bytes inserted."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


# Text ------------------------------------------------------------------------------------------

# Real-world text pieces (markup, separators, quotes, escapes) mixed with arbitrary text.
chunks = st.sampled_from(
    [
        "<",
        ">",
        "</",
        "/>",
        "=",
        '"',
        "'",
        "&",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "\n",
        "\r\n",
        "\t",
        ",",
        ";",
        "|",
        " ",
        "\ufeff",
        "\x00",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "\\",
    ]
) | st.text(max_size=12)
texts = st.lists(chunks, max_size=10).map("".join)
