"""Edits and their patches: RFC 7396 merge patch, RFC 6902 JSON patch, replace; event replay."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

JSONDoc = dict[str, Any]
MAX_DEPTH = 64


class PatchError(ValueError):
    """A patch that cannot be applied; `test_failed` marks an RFC 6902 `test` mismatch."""

    def __init__(self, message: str, *, test_failed: bool = False) -> None:
        super().__init__(message)
        self.test_failed = test_failed


class InvalidJSON(ValueError):
    """A JSON value townhall refuses to store (bad syntax, NaN, NUL, too deep, not an object)."""


@dataclass(frozen=True)
class MergePatch:
    """RFC 7396: objects merge recursively, null removes a member, anything else replaces."""

    value: Any
    op = "merge"


@dataclass(frozen=True)
class JsonPatch:
    """RFC 6902: a list of add/remove/replace/move/copy/test operations."""

    ops: list[dict[str, Any]]
    op = "patch"


@dataclass(frozen=True)
class Replace:
    """The whole new document."""

    data: JSONDoc
    op = "replace"


Patch = MergePatch | JsonPatch | Replace
# An edit is a patch, or a function of the current document returning a patch (or a new doc).
Edit = Patch | Callable[[JSONDoc], "Patch | JSONDoc"]


def merge_patch(target: Any, patch: Any, *, in_place: bool = False) -> Any:
    """Apply an RFC 7396 merge patch; `target` is modified only with `in_place`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)  # the event keeps the patch: the document gets its own
    result = (target if in_place else dict(target)) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, in_place=in_place)
    return result


def apply_json_patch(doc: Any, ops: list[dict[str, Any]], *, in_place: bool = False) -> Any:
    """Apply RFC 6902 operations to a copy of `doc` (to `doc` itself with `in_place`)."""
    try:
        patch = jsonpatch.JsonPatch(ops)
        return patch.apply(doc, in_place=in_place)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchError(str(exc), test_failed=True) from exc
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        TypeError,
        KeyError,
        IndexError,
        ValueError,
        AttributeError,
    ) as exc:
        raise PatchError(f"invalid JSON patch: {exc}") from exc


def apply_patch(doc: JSONDoc | None, patch: Patch, *, private: bool = False) -> JSONDoc:
    """The document after `patch`; raises PatchError or InvalidJSON.

    `private`: `doc` belongs to the caller alone (a row just read) and may be changed in place
    instead of copied, so an edit costs its size rather than the document's; after a failure
    it may be half-patched and must be thrown away.
    """
    if isinstance(patch, Replace):
        result: Any = patch.data
    elif isinstance(patch, MergePatch):
        result = merge_patch(doc or {}, patch.value, in_place=private)
    else:
        result = apply_json_patch(doc or {}, patch.ops, in_place=private)
    if not isinstance(result, dict):
        raise InvalidJSON("a document must be a JSON object")
    return result


def resolve(edit: Edit, current: JSONDoc) -> Patch:
    """Turn an edit into a patch; a function returning a dict means replace."""
    if isinstance(edit, MergePatch | JsonPatch | Replace):
        return edit
    produced = edit(copy.deepcopy(current))
    if isinstance(produced, MergePatch | JsonPatch | Replace):
        return produced
    if isinstance(produced, dict):
        return Replace(produced)
    raise TypeError("an edit function must return a patch or a dict")


def patch_payload(patch: Patch) -> Any:
    """The JSON stored as an event's `patch`."""
    if isinstance(patch, Replace):
        return patch.data
    if isinstance(patch, MergePatch):
        return patch.value
    return patch.ops


def patch_from_event(op: str, payload: Any) -> Patch | None:
    """The patch an event carries; None for a delete."""
    if op in ("create", "replace"):
        return Replace(payload)
    if op == "merge":
        return MergePatch(payload)
    if op == "patch":
        return JsonPatch(payload)
    return None


def apply_event(documents: dict[str, JSONDoc], event: Mapping[str, Any]) -> None:
    """Apply one event to a replica `{doc_id: data}` in place (clients and replay share it)."""
    doc_id = event["doc_id"]
    patch = patch_from_event(event["op"], event["patch"])
    if patch is None:
        documents.pop(doc_id, None)
    else:
        documents[doc_id] = apply_patch(documents.get(doc_id), patch)


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Parse JSON strictly: no NaN/Infinity, no NUL characters, bounded nesting."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except InvalidJSON:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """Refuse values PostgreSQL JSONB cannot hold (NUL) and pathological nesting."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidJSON(f"JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidJSON("JSON strings may not contain NUL characters")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise InvalidJSON("NaN and Infinity are not valid JSON")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise InvalidJSON("JSON keys must be strings without NUL characters")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif not (item is None or isinstance(item, bool | int)):
            raise InvalidJSON(f"{type(item).__name__} is not a JSON value")


def growth_bound(patch: Patch) -> int | None:
    """Bytes a patch can add to a document's compact JSON at most; None when unbounded.

    A merge patch or an add/replace/test/remove/move operation writes nothing that is not in
    the patch itself (keys, values, one separator each), so the growth is below twice its
    encoding; a JSON Patch `copy` can duplicate any subtree, and a replace is the document.
    """
    if isinstance(patch, Replace):
        return None
    if isinstance(patch, JsonPatch) and any(op.get("op") == "copy" for op in patch.ops):
        return None
    return 2 * size_of(patch_payload(patch)) + 2


def size_of(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON encoding."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
