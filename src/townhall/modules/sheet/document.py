"""The workbook's Yjs document: read sheets as position grids, build updates that change them.

Contract shared with the browser grid (static/grid.js): root `sheets` = Map<sheetId, Map> with
`name`, `index` (tab order key), `rows`/`cols` (id -> order key), `cells` ("row:col" -> raw
text), `formats` ("row:col" -> JSON object) and `widths` (col id -> px). Display order is by
(key, id) with plain string comparison, identical in Python and JavaScript.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pycrdt

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_SPACE = len(ID_ALPHABET) ** 10
NEW_SHEET_ROWS = 1000
NEW_SHEET_COLS = 52
SHEET_NAME = re.compile(r"^[^'!\[\]*?/\\:]{1,100}$")


def new_id() -> str:
    """A random 10-character row, column or sheet id."""
    # One random number spelled in base 36: a new sheet takes about a thousand of these, and a
    # choice per character made creating one cost 0.1 s of CPU.
    number = secrets.randbelow(_ID_SPACE)
    chars = []
    for _ in range(10):
        number, digit = divmod(number, 36)
        chars.append(ID_ALPHABET[digit])
    return "".join(chars)


def _digit(char: str) -> int:
    index = DIGITS.find(char)
    if index < 0:
        raise ValueError(f"order keys use only 0-9 A-Z a-z, not {char!r}")
    return index


def key_between(before: str | None, after: str | None) -> str:
    """An order key strictly between two keys (None: the start or the end), base62."""
    low = before or ""
    if after is not None and not low < after:
        raise ValueError(f"no key between {before!r} and {after!r}")
    out: list[str] = []
    i = 0
    while True:
        a = _digit(low[i]) if i < len(low) else -1  # -1: `low` ended, below every digit
        if after is None:
            b = len(DIGITS)
        elif i < len(after):
            b = _digit(after[i])
        else:  # `after` is `low` plus zeros: nothing sorts between them
            raise ValueError(f"no key between {before!r} and {after!r}")
        if a == b:
            out.append(DIGITS[a])
            i += 1
            continue
        mid = (a + b) // 2
        if mid > a and mid > 0:
            # A key never ends in "0": that would leave no room below it.
            out.append(DIGITS[mid])
            return "".join(out)
        if a >= 0:
            # Take low's digit; anything above low's remainder is then below `after`.
            out.append(DIGITS[a])
            return "".join(out) + key_between(low[i + 1 :] or None, None)
        # low ended here: take "0", then go on below after's remainder if after has "0" too
        # (when after's digit is higher, "0" already sorts below it and anything may follow).
        out.append(DIGITS[0])
        rest = after[i + 1 :] if after is not None and b == 0 else None
        return "".join(out) + key_between(None, rest)


def spread_keys(count: int) -> list[str]:
    """`count` increasing short keys spread evenly over the whole key space."""
    width = 1
    while len(DIGITS) ** width <= count + 1:
        width += 1
    space = len(DIGITS) ** width
    keys = []
    for n in range(1, count + 1):
        value = n * space // (count + 1)
        digits = []
        for _ in range(width):
            value, rem = divmod(value, len(DIGITS))
            digits.append(DIGITS[rem])
        keys.append("".join(reversed(digits)).rstrip("0"))
    return keys


def ordered(keys: Mapping[str, Any]) -> list[str]:
    """Ids in display order: by (order key, id)."""
    return [item for _, item in sorted((str(key), item) for item, key in keys.items())]


def check_sheet_name(name: str) -> str:
    """A valid sheet name (1-100 chars, none of ' ! [ ] * ? / \\ :), trimmed."""
    name = name.strip()
    if not SHEET_NAME.fullmatch(name):
        raise ValueError("a sheet name is 1-100 characters without ' ! [ ] * ? / \\ :")
    return name


@dataclass
class SheetView:
    """One sheet read from the document, with positions resolved."""

    id: str
    name: str
    index: str
    row_ids: list[str]
    col_ids: list[str]
    # (row, col) 0-based -> raw text / format, for cells whose row and column still exist.
    cells: dict[tuple[int, int], str] = field(default_factory=dict)
    formats: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    widths: dict[int, int] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    return value.to_py() if isinstance(value, pycrdt.Map | pycrdt.Array) else value


def read_sheet(sheet_id: str, sheet: pycrdt.Map[Any]) -> SheetView:
    """Resolve a sheet's ids to positions."""
    data = sheet.to_py() or {}
    row_ids = ordered(data.get("rows") or {})
    col_ids = ordered(data.get("cols") or {})
    rows = {rid: n for n, rid in enumerate(row_ids)}
    cols = {cid: n for n, cid in enumerate(col_ids)}
    view = SheetView(
        sheet_id, str(data.get("name", "")), str(data.get("index", "")), row_ids, col_ids
    )
    for target, source in ((view.cells, data.get("cells")), (view.formats, data.get("formats"))):
        for key, value in (source or {}).items():
            rid, _, cid = str(key).partition(":")
            if rid in rows and cid in cols and value not in (None, ""):
                target[(rows[rid], cols[cid])] = value
    for cid, px in (data.get("widths") or {}).items():
        if cid in cols and isinstance(px, int | float):
            view.widths[cols[cid]] = int(px)
    return view


def sheets_root(doc: pycrdt.Doc[Any]) -> pycrdt.Map[Any]:
    """The `sheets` root map."""
    root: pycrdt.Map[Any] = doc.get("sheets", type=pycrdt.Map)
    return root


def read_workbook(doc: pycrdt.Doc[Any]) -> list[SheetView]:
    """Every sheet in tab order."""
    root = sheets_root(doc)
    order = ordered({sid: _plain(s).get("index", "") for sid, s in root.items()})
    return [read_sheet(sid, root[sid]) for sid in order]


def load(state: bytes) -> pycrdt.Doc[Any]:
    """A document from a state update."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    if state:
        doc.apply_update(state)
    return doc


def change(state: bytes, edit: Callable[[pycrdt.Doc[Any]], Any]) -> tuple[bytes, Any]:
    """Apply `edit` in one transaction to a copy of `state`; (the update it made, its result)."""
    doc = load(state)
    before = doc.get_state()
    with doc.transaction(origin="server"):
        result = edit(doc)
    return doc.get_update(before), result


def find_sheet(doc: pycrdt.Doc[Any], ref: str) -> SheetView | None:
    """A sheet by id, or by name ignoring case."""
    for view in read_workbook(doc):
        if view.id == ref or view.name.lower() == ref.lower():
            return view
    return None


def create_sheet(
    doc: pycrdt.Doc[Any],
    name: str,
    *,
    rows: int = NEW_SHEET_ROWS,
    cols: int = NEW_SHEET_COLS,
    cells: Mapping[tuple[int, int], str] | None = None,
    formats: Mapping[tuple[int, int], dict[str, Any]] | None = None,
    widths: Mapping[int, int] | None = None,
) -> str:
    """Add a sheet after the last tab, with at least rows x cols and the given cells."""
    name = check_sheet_name(name)
    existing = read_workbook(doc)
    if any(view.name.lower() == name.lower() for view in existing):
        raise ValueError(f"a sheet named {name!r} already exists")
    cells = cells or {}
    formats = formats or {}
    need_rows = max([rows, *(r + 1 for r, _ in cells), *(r + 1 for r, _ in formats)])
    need_cols = max([cols, *(c + 1 for _, c in cells), *(c + 1 for _, c in formats)])
    row_ids = [new_id() for _ in range(need_rows)]
    col_ids = [new_id() for _ in range(need_cols)]
    last = max((view.index for view in existing), default=None)
    sheet_id = new_id()
    sheets_root(doc)[sheet_id] = pycrdt.Map(
        {
            "name": name,
            "index": key_between(last, None),
            "rows": pycrdt.Map(dict(zip(row_ids, spread_keys(need_rows), strict=True))),
            "cols": pycrdt.Map(dict(zip(col_ids, spread_keys(need_cols), strict=True))),
            "cells": pycrdt.Map(
                {f"{row_ids[r]}:{col_ids[c]}": raw for (r, c), raw in cells.items() if raw != ""}
            ),
            "formats": pycrdt.Map(
                {f"{row_ids[r]}:{col_ids[c]}": dict(f) for (r, c), f in formats.items() if f}
            ),
            "widths": pycrdt.Map({col_ids[c]: px for c, px in (widths or {}).items()}),
        }
    )
    return sheet_id


def _extend(axis: pycrdt.Map[Any], ids: list[str], count: int) -> list[str]:
    """Append ids to `rows`/`cols` until there are `count`; the whole id list in order."""
    last = max((str(axis[i]) for i in ids), default=None)
    while len(ids) < count:
        key = key_between(last, None)
        new = new_id()
        axis[new] = key
        ids.append(new)
        last = key
    return ids


def write_range(
    doc: pycrdt.Doc[Any], sheet_id: str, top: int, left: int, values: Iterable[Iterable[str]]
) -> int:
    """Write raw texts with their top-left at (top, left); "" clears. Returns cells written."""
    sheet = sheets_root(doc)[sheet_id]
    view = read_sheet(sheet_id, sheet)
    grid = [list(row) for row in values]
    height = len(grid)
    width = max((len(row) for row in grid), default=0)
    row_ids = _extend(sheet["rows"], view.row_ids, top + height)
    col_ids = _extend(sheet["cols"], view.col_ids, left + width)
    cells: pycrdt.Map[Any] = sheet["cells"]
    written = 0
    for r, row in enumerate(grid):
        for c, raw in enumerate(row):
            key = f"{row_ids[top + r]}:{col_ids[left + c]}"
            if raw == "":
                if key in cells:
                    del cells[key]
                    written += 1
            elif cells.get(key) != raw:
                cells[key] = raw
                written += 1
    return written


def rename_sheet(doc: pycrdt.Doc[Any], sheet_id: str, name: str) -> None:
    """Rename a sheet (unique per workbook, ignoring case)."""
    name = check_sheet_name(name)
    for view in read_workbook(doc):
        if view.id != sheet_id and view.name.lower() == name.lower():
            raise ValueError(f"a sheet named {name!r} already exists")
    sheets_root(doc)[sheet_id]["name"] = name


def delete_sheet(doc: pycrdt.Doc[Any], sheet_id: str) -> None:
    """Remove a sheet; the last one cannot go."""
    if len(sheets_root(doc)) <= 1:
        raise ValueError("a workbook keeps at least one sheet")
    del sheets_root(doc)[sheet_id]


def move_sheet(doc: pycrdt.Doc[Any], sheet_id: str, position: int) -> None:
    """Move a tab to 0-based `position` among the others."""
    others = [view for view in read_workbook(doc) if view.id != sheet_id]
    position = max(0, min(position, len(others)))
    before = others[position - 1].index if position > 0 else None
    after = others[position].index if position < len(others) else None
    if before is not None and after is not None and not before < after:
        after = None  # neighbours share a key (concurrent moves): re-key after the earlier one
    sheets_root(doc)[sheet_id]["index"] = key_between(before, after)


def cell_count(doc: pycrdt.Doc[Any]) -> int:
    """Non-empty cells of every sheet."""
    return sum(len(view.cells) for view in read_workbook(doc))
