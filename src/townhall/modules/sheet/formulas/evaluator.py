"""Expression evaluation and the workbook, computed in an order found without recursion."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Protocol

from townhall.modules.sheet.formulas.functions import FUNCTIONS, Env
from townhall.modules.sheet.formulas.parser import (
    Call,
    Chain,
    Literal,
    Node,
    Ref,
    Unary,
    parse_or_error,
)
from townhall.modules.sheet.formulas.values import (
    CIRC,
    DIV0,
    NAME,
    NUM,
    REF,
    SYNTAX,
    Arg,
    CellError,
    Fail,
    Grid,
    Value,
    checked,
    compare,
    parse_literal,
    scalar,
    to_number,
    to_text,
)

Cells = Mapping[tuple[int, int], str]
Key = tuple[str, int, int]
EXCEL_EPOCH = date(1899, 12, 30)


class Reader(Protocol):
    """Where references get their values."""

    def grid(self, sheet: str, top: int, left: int, bottom: int, right: int) -> Grid | CellError:
        """Values of a rectangle, or #REF! for an unknown sheet."""
        ...


def _binary(op: str, left: Value, right: Value) -> Value:
    if op == "&":
        return to_text(left) + to_text(right)
    if op in ("=", "<>", "<", ">", "<=", ">="):
        order = compare(left, right)
        outcomes = {"=": order == 0, "<>": order != 0, "<": order < 0, ">": order > 0}
        return outcomes.get(op, order <= 0 if op == "<=" else order >= 0)
    a, b = to_number(left), to_number(right)
    if op == "+":
        return checked(a + b)
    if op == "-":
        return checked(a - b)
    if op == "*":
        return checked(a * b)
    if op == "/":
        if b == 0:
            raise Fail(DIV0)
        return checked(a / b)
    return _power(a, b)


def _power(a: float, b: float) -> float:
    if a == 0 and b <= 0:
        raise Fail(NUM if b == 0 else DIV0)
    if a < 0 and not b.is_integer():
        raise Fail(NUM)
    try:
        return checked(math.pow(a, b))
    except OverflowError as exc:
        raise Fail(NUM) from exc


def evaluate(node: Node, home: str, reader: Reader, env: Env) -> Arg:
    """Value of an expression on sheet `home`; references stay grids for functions to inspect."""
    try:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ref):
            last = node.last or node.first
            return reader.grid(
                node.sheet or home, node.first.row, node.first.col, last.row, last.col
            )
        if isinstance(node, Unary):
            operand = scalar(evaluate(node.operand, home, reader, env))
            if node.op == "+":
                return operand
            number = to_number(operand)
            return -number + 0.0 if node.op == "-" else number / 100
        if isinstance(node, Chain):
            acc = scalar(evaluate(node.first, home, reader, env))
            for op, right in node.rest:
                acc = _binary(op, acc, scalar(evaluate(right, home, reader, env)))
            return acc
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            return CellError(NAME)
        low, high, impl = spec
        if len(node.args) < low or (high is not None and len(node.args) > high):
            return CellError(SYNTAX)
        return impl([evaluate(arg, home, reader, env) for arg in node.args], env)
    except Fail as fail:
        return CellError(fail.code)


def result_value(arg: Arg) -> Value:
    """What a cell shows: one value; an empty reference shows 0."""
    try:
        value = scalar(arg)
    except Fail as fail:
        return CellError(fail.code)
    return 0.0 if value is None else value


def references(node: Node) -> Iterator[Ref]:
    """Every reference in an expression."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Ref):
            yield current
        elif isinstance(current, Unary):
            stack.append(current.operand)
        elif isinstance(current, Chain):
            stack.append(current.first)
            stack.extend(operand for _, operand in current.rest)
        elif isinstance(current, Call):
            stack.extend(current.args)


def serial_of(day: date) -> float:
    """Excel serial number of a date (1900 date system)."""
    return float((day - EXCEL_EPOCH).days)


class Workbook:
    """Computed values of a workbook given as sheet name -> {(row, col): raw text}, 0-based."""

    def __init__(self, sheets: Mapping[str, Cells], *, today: date | float | None = None) -> None:
        self.sheets = sheets
        self._names = {name.lower(): name for name in sheets}
        day = date.today() if today is None else today
        self.env = Env(serial_of(day) if isinstance(day, date) else float(day))
        self._formulas: dict[str, set[tuple[int, int]]] = {
            name: {pos for pos, raw in cells.items() if raw.startswith("=")}
            for name, cells in sheets.items()
        }
        self._parsed: dict[Key, Node] = {}
        self._deps: dict[Key, list[Key]] = {}
        self._values: dict[Key, Value] = {}

    def sheet_name(self, name: str) -> str | None:
        """The sheet's own spelling of a name (sheet names ignore case)."""
        return self._names.get(name.lower())

    def grid(self, sheet: str, top: int, left: int, bottom: int, right: int) -> Grid | CellError:
        """Values of a rectangle (corners in any order), or #REF! for an unknown sheet."""
        name = self.sheet_name(sheet)
        if name is None:
            return CellError(REF)
        top, bottom = min(top, bottom), max(top, bottom)
        left, right = min(left, right), max(left, right)
        return Grid(
            [
                [self.value(name, row, col) for col in range(left, right + 1)]
                for row in range(top, bottom + 1)
            ]
        )

    def value(self, sheet: str, row: int, col: int) -> Value:
        """Computed value of one cell (None when empty)."""
        name = self.sheet_name(sheet)
        if name is None:
            return CellError(REF)
        raw = self.sheets[name].get((row, col))
        if raw is None:
            return None
        if not raw.startswith("="):
            return parse_literal(raw)
        key = (name, row, col)
        if key not in self._values:
            self._compute(key)
        return self._values[key]

    def range(self, sheet: str, top: int, left: int, bottom: int, right: int) -> list[list[Value]]:
        """Computed values of a rectangle."""
        grid = self.grid(sheet, top, left, bottom, right)
        if isinstance(grid, CellError):
            raise KeyError(sheet)
        return grid.rows

    def evaluate_all(self) -> dict[str, dict[tuple[int, int], Value]]:
        """Computed value of every non-empty cell of every sheet."""
        return {
            name: {pos: self.value(name, *pos) for pos in sorted(cells)}
            for name, cells in self.sheets.items()
        }

    def _node(self, key: Key) -> Node:
        if key not in self._parsed:
            self._parsed[key] = parse_or_error(self.sheets[key[0]][key[1:]][1:])
        return self._parsed[key]

    def _dependencies(self, key: Key) -> list[Key]:
        """Formula cells this formula reads (literal cells need no evaluation order)."""
        if key in self._deps:
            return self._deps[key]
        found: dict[Key, None] = {}
        for ref in references(self._node(key)):
            name = self.sheet_name(ref.sheet or key[0])
            if name is None:
                continue
            last = ref.last or ref.first
            top, bottom = sorted((ref.first.row, last.row))
            left, right = sorted((ref.first.col, last.col))
            formulas = self._formulas[name]
            if (bottom - top + 1) * (right - left + 1) <= len(formulas):
                cells = [(r, c) for r in range(top, bottom + 1) for c in range(left, right + 1)]
                found.update(((name, *pos), None) for pos in cells if pos in formulas)
            else:
                found.update(
                    ((name, r, c), None)
                    for r, c in sorted(formulas)
                    if top <= r <= bottom and left <= c <= right
                )
        self._deps[key] = list(found)
        return self._deps[key]

    def _compute(self, start: Key) -> None:
        """Iterative Tarjan: each strongly connected component is finished dependencies-first."""
        index: dict[Key, int] = {}
        low: dict[Key, int] = {}
        stack: list[Key] = []
        on_stack: set[Key] = set()
        work: list[tuple[Key, Iterator[Key]]] = []

        def enter(key: Key) -> None:
            index[key] = low[key] = len(index)
            stack.append(key)
            on_stack.add(key)
            work.append((key, iter(self._dependencies(key))))

        enter(start)
        while work:
            key, pending = work[-1]
            for dep in pending:
                if dep in self._values:
                    continue
                if dep not in index:
                    enter(dep)
                    break
                if dep in on_stack:
                    low[key] = min(low[key], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[key])
                if low[key] == index[key]:
                    self._finish(key, stack, on_stack)

    def _finish(self, root: Key, stack: list[Key], on_stack: set[Key]) -> None:
        component: list[Key] = []
        while True:
            key = stack.pop()
            on_stack.discard(key)
            component.append(key)
            if key == root:
                break
        if len(component) > 1 or root in self._dependencies(root):
            for key in component:
                self._values[key] = CellError(CIRC)
            return
        node = self._node(root)
        self._values[root] = result_value(evaluate(node, root[0], self, self.env))
