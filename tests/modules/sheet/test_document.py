"""document.py: order keys, the sheet contract, and updates that merge like the browser's."""

from __future__ import annotations

import random
from typing import Any

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from townhall.collab.service import restore_update
from townhall.modules.sheet import document as d
from townhall.modules.sheet.auth import ROOTS

KEYS = st.text(alphabet=d.DIGITS, min_size=1, max_size=6).filter(lambda k: not k.endswith("0"))


def _doc_with(name: str = "Sheet1", **kwargs: Any) -> tuple[pycrdt.Doc[Any], str]:
    doc = d.load(b"")
    sheet_id = d.create_sheet(doc, name, **kwargs)
    return doc, sheet_id


@given(st.lists(KEYS, min_size=2, max_size=2, unique=True))
@settings(max_examples=300, deadline=None)
def test_key_between_is_strictly_between(pair: list[str]) -> None:
    low, high = sorted(pair)
    mid = d.key_between(low, high)
    assert low < mid < high
    assert not mid.endswith("0")
    assert d.key_between(None, low) < low
    assert d.key_between(high, None) > high


def test_repeated_inserts_in_one_gap_stay_ordered() -> None:
    keys = [d.key_between(None, None)]
    rng = random.Random(7)
    for _ in range(500):
        at = rng.randrange(len(keys) + 1)
        before = keys[at - 1] if at > 0 else None
        after = keys[at] if at < len(keys) else None
        keys.insert(at, d.key_between(before, after))
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert max(len(k) for k in keys) < 40


def test_key_between_refuses_impossible_gaps() -> None:
    with pytest.raises(ValueError, match="no key between"):
        d.key_between("b", "b")
    with pytest.raises(ValueError, match="no key between"):
        d.key_between("a", "a0")
    with pytest.raises(ValueError, match="order keys use only"):
        d.key_between("!", None)


def test_spread_keys_are_increasing_and_short() -> None:
    keys = d.spread_keys(1000)
    assert keys == sorted(keys)
    assert len(set(keys)) == 1000
    assert all(k and not k.endswith("0") and len(k) <= 2 for k in keys)


def test_ordered_breaks_ties_by_id() -> None:
    assert d.ordered({"b": "V", "a": "V", "c": "A"}) == ["c", "a", "b"]


def test_new_sheet_contract() -> None:
    doc, sheet_id = _doc_with(cells={(0, 0): "1", (2, 60): "=A1"}, formats={(0, 0): {"b": True}})
    raw = d.sheets_root(doc).to_py()[sheet_id]
    assert set(raw) == {"name", "index", "rows", "cols", "cells", "formats", "widths"}
    assert len(sheet_id) == 10
    assert sheet_id.isalnum()
    assert sheet_id.lower() == sheet_id
    view = d.read_workbook(doc)[0]
    assert (len(view.row_ids), len(view.col_ids)) == (1000, 61)  # grown to fit column 61
    assert view.cells == {(0, 0): "1", (2, 60): "=A1"}
    assert view.formats == {(0, 0): {"b": True}}
    key = f"{view.row_ids[0]}:{view.col_ids[0]}"
    assert raw["cells"][key] == "1"


def test_sheet_names_are_checked_and_unique() -> None:
    doc, _ = _doc_with()
    for bad in ("", "   ", "a:b", "x" * 101, "it's"):
        with pytest.raises(ValueError, match="a sheet name is"):
            d.create_sheet(doc, bad)
    with pytest.raises(ValueError, match="already exists"):
        d.create_sheet(doc, "sheet1")
    assert d.check_sheet_name("  Data  ") == "Data"


def test_write_range_extends_and_clears() -> None:
    doc, sheet_id = _doc_with(rows=2, cols=2)
    assert d.write_range(doc, sheet_id, 1, 1, [["a", "b"], ["c", ""]]) == 3
    view = d.read_sheet(sheet_id, d.sheets_root(doc)[sheet_id])
    assert (len(view.row_ids), len(view.col_ids)) == (3, 3)
    assert view.cells == {(1, 1): "a", (1, 2): "b", (2, 1): "c"}
    assert d.write_range(doc, sheet_id, 1, 1, [["a", ""]]) == 1  # unchanged "a" is not counted
    assert d.read_sheet(sheet_id, d.sheets_root(doc)[sheet_id]).cells == {
        (1, 1): "a",
        (2, 1): "c",
    }


def test_rename_move_delete() -> None:
    doc, first = _doc_with("One")
    second = d.create_sheet(doc, "Two")
    third = d.create_sheet(doc, "Three")
    d.move_sheet(doc, third, 0)
    assert [v.name for v in d.read_workbook(doc)] == ["Three", "One", "Two"]
    d.move_sheet(doc, third, 99)
    assert [v.name for v in d.read_workbook(doc)] == ["One", "Two", "Three"]
    d.rename_sheet(doc, second, "Deux")
    with pytest.raises(ValueError, match="already exists"):
        d.rename_sheet(doc, first, "deux")
    assert d.find_sheet(doc, "DEUX") is not None
    assert d.find_sheet(doc, third) is not None
    d.delete_sheet(doc, second)
    d.delete_sheet(doc, third)
    with pytest.raises(ValueError, match="at least one sheet"):
        d.delete_sheet(doc, first)
    assert d.cell_count(doc) == 0


def test_change_returns_an_update_other_replicas_merge() -> None:
    doc, sheet_id = _doc_with(rows=3, cols=3)
    state = doc.get_update()
    update, written = d.change(state, lambda x: d.write_range(x, sheet_id, 0, 0, [["=1+1"]]))
    assert written == 1
    replica = d.load(state)
    replica.apply_update(update)
    assert d.read_workbook(replica)[0].cells == {(0, 0): "=1+1"}
    nothing, _ = d.change(state, lambda x: None)
    assert nothing == b"\x00\x00"


def test_concurrent_row_insert_and_cell_edit_converge() -> None:
    """Cells keyed by ids: a row inserted on one replica never moves another's edit."""
    doc, sheet_id = _doc_with(rows=3, cols=2)
    state = doc.get_update()
    a, b = d.load(state), d.load(state)
    view = d.read_workbook(a)[0]

    def insert_row(x: pycrdt.Doc[Any]) -> None:
        rows = d.sheets_root(x)[sheet_id]["rows"]
        rows["newrow0000"] = d.key_between(rows[view.row_ids[0]], rows[view.row_ids[1]])

    update_a, _ = d.change(a.get_update(), insert_row)
    update_b, _ = d.change(b.get_update(), lambda x: d.write_range(x, sheet_id, 1, 0, [["B"]]))
    for replica in (a, b):
        replica.apply_update(update_a)
        replica.apply_update(update_b)
    for replica in (a, b):
        merged = d.read_workbook(replica)[0]
        assert merged.row_ids[1] == "newrow0000"
        assert merged.cells == {(2, 0): "B"}  # the edited row moved down with its id


def test_version_restore_keeps_the_sheet_maps_shared() -> None:
    """collab's restore rewrites `sheets` key by key, so the grid can still edit cells after."""
    doc, sheet_id = _doc_with("S", rows=2, cols=2, cells={(0, 0): "1"})
    version = doc.get_update()
    edit, _ = d.change(version, lambda x: d.write_range(x, sheet_id, 0, 0, [["2", "3"]]))
    added, _ = d.change(version, lambda x: d.create_sheet(x, "T"))
    current = d.load(version)
    current.apply_update(edit)
    current.apply_update(added)
    current.apply_update(restore_update(current.get_update(), version, ROOTS))
    assert [(v.name, v.cells) for v in d.read_workbook(current)] == [("S", {(0, 0): "1"})]
    assert isinstance(d.sheets_root(current)[sheet_id]["cells"], pycrdt.Map)
    d.write_range(current, sheet_id, 1, 1, [["after"]])
    assert d.read_workbook(current)[0].cells == {(0, 0): "1", (1, 1): "after"}
