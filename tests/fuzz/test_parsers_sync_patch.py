"""Sync API bodies: strict JSON, merge patches, JSON patches; InvalidJSON/PatchError (4xx) only."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import fuzz, json_scalars, json_values, texts, tricky_strings
from townhall.sync.patching import (
    InvalidJSON,
    JsonPatch,
    MergePatch,
    Patch,
    PatchError,
    apply_patch,
    check_value,
    growth_bound,
    loads,
    patch_payload,
    size_of,
)

# Documents over a few well-known keys, so that random pointers often hit something.
keys = st.sampled_from(["a", "b", "0", "1", "-", "~", "/", ""])
documents: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    keys,
    st.recursive(
        json_scalars | tricky_strings,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=3),
        max_leaves=10,
    ),
    max_size=4,
)
segments = keys | st.sampled_from(["00", "01", "1e3", "-1", "999", "~0", "~1", "~2"])
pointers = st.lists(segments, max_size=4).map(lambda parts: "".join("/" + p for p in parts)) | (
    texts | tricky_strings
)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]) | st.text()},
    optional={"path": pointers | json_values, "from": pointers | json_values, "value": json_values},
)
op_lists = st.lists(ops | st.dictionaries(st.text(max_size=5), json_values), max_size=5)

# Raw bodies: real JSON, JSON cut or padded, constants, deep nesting, random bytes.
raw_bodies = (
    st.one_of(json_values, op_lists, documents).map(lambda v: json.dumps(v).encode())
    | st.builds(lambda v, n: json.dumps(v).encode()[:n], json_values, st.integers(0, 40))
    | st.sampled_from([b"NaN", b"[Infinity]", b'{"a": -Infinity}', b'"\\u0000"', b'{"\\u0000": 1}'])
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
    | st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    | texts.map(str.encode)
    | st.binary(max_size=64)
)


@given(raw_bodies)
@fuzz
def test_loads(raw: bytes) -> None:
    try:
        value = loads(raw)
    except InvalidJSON:
        return
    check_value(value)  # what loads returns is storable


def _edit(doc: dict[str, Any], patch: Patch) -> dict[str, Any] | None:
    """What SyncService.find_one_and_update does with a body; None when it is refused."""
    try:
        check_value(patch_payload(patch))
        result = apply_patch(doc, patch, private=True)
    except (PatchError, InvalidJSON):
        return None
    growth_bound(patch)
    size_of(result)
    return result


@given(documents, raw_bodies | op_lists.map(lambda v: json.dumps(v).encode()))
@fuzz
def test_json_patch_body(doc: dict[str, Any], raw: bytes) -> None:
    try:
        body = loads(raw)
    except InvalidJSON:
        return
    if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
        return  # the endpoint answers 400
    original = copy.deepcopy(doc)
    _edit(copy.deepcopy(doc), JsonPatch(body))
    assert doc == original


@given(documents, json_values | documents)
@fuzz
def test_merge_patch(doc: dict[str, Any], value: Any) -> None:
    if not isinstance(value, dict):
        return  # the endpoint answers 400
    result = _edit(copy.deepcopy(doc), MergePatch(value))
    if result is not None:
        for key, member in value.items():
            assert (key in result) == (member is not None)


@given(documents, op_lists)
@fuzz
def test_json_patch_ops(doc: dict[str, Any], body: list[dict[str, Any]]) -> None:
    result = _edit(doc, JsonPatch(body))
    if result is not None:
        assert json.loads(json.dumps(result)) == result  # still plain JSON
