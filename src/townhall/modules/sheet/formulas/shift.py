"""Rewrite references when rows or columns are inserted or deleted, as a spreadsheet does."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from townhall.modules.sheet.formulas.tokenizer import CellRef, TokenizeError, tokenize

Axis = Literal["row", "col"]


def _index(cell: CellRef, axis: Axis) -> int:
    return cell.row if axis == "row" else cell.col


def _moved(cell: CellRef, axis: Axis, index: int) -> CellRef:
    return replace(cell, row=index) if axis == "row" else replace(cell, col=index)


def shift_span(start: int, end: int, at: int, count: int) -> tuple[int, int] | None:
    """New [start, end] of a span after inserting (count > 0) or deleting (count < 0) at `at`."""
    if count >= 0:
        return (start + count if start >= at else start, end + count if end >= at else end)
    gone_end = at - count  # first index after the deleted block
    if start >= at and end < gone_end:
        return None
    new_start = start if start < at else (at if start < gone_end else start + count)
    new_end = end if end < at else (at - 1 if end < gone_end else end + count)
    return new_start, new_end


def shift_formula(
    text: str, sheet: str, axis: Axis, at: int, count: int, *, home: str | None = None
) -> str:
    """Formula after inserting (count > 0) or deleting (count < 0) rows/cols at `at` of `sheet`."""
    # `home` is the sheet the formula lives on, which unqualified references point into.
    if not text.startswith("=") or count == 0:
        return text
    body = text[1:]
    try:
        tokens = tokenize(body)
    except TokenizeError:
        return text
    home_name = (home or sheet).lower()
    out: list[str] = []
    pos = 0
    for token in tokens:
        if token.kind != "ref" or token.first is None:
            continue
        if (token.sheet or home_name).lower() != sheet.lower():
            continue
        first, last = token.first, token.last or token.first
        low, high = sorted((_index(first, axis), _index(last, axis)))
        span = shift_span(low, high, at, count)
        if span is None:
            replacement = "#REF!"
        else:
            swapped = _index(first, axis) > _index(last, axis)
            new_first = _moved(first, axis, span[1] if swapped else span[0])
            new_last = _moved(last, axis, span[0] if swapped else span[1])
            prefix = token.text[: token.text.rindex("!") + 1] if token.sheet else ""
            replacement = prefix + new_first.render()
            if token.last is not None:
                replacement += ":" + new_last.render()
        if replacement.lower() == token.text.lower():
            continue
        out.append(body[pos : token.start])
        out.append(replacement)
        pos = token.end
    out.append(body[pos:])
    return "=" + "".join(out)
