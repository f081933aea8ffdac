"""Cell values, spreadsheet errors and the Excel coercion rules shared by the evaluator."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DIV0 = "#DIV/0!"
REF = "#REF!"
NAME = "#NAME?"
VALUE = "#VALUE!"
NA = "#N/A"
NUM = "#NUM!"
CIRC = "#CIRC!"
SYNTAX = "#ERROR!"
BLANKS = " \t\r\n"  # the same set the browser trims, unlike str.strip()

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class CellError:
    """A spreadsheet error value such as #DIV/0!."""

    code: str

    def __str__(self) -> str:
        return self.code


Value = float | str | bool | CellError | None


@dataclass(frozen=True, slots=True)
class Grid:
    """A rectangle of values coming from a reference (a range or a single cell)."""

    rows: list[list[Value]]

    def flat(self) -> list[Value]:
        """All values in row-major order."""
        return [v for row in self.rows for v in row]


Arg = Value | Grid


class Fail(Exception):
    """Raised inside evaluation to turn the current operation into an error value."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_number(text: str) -> float | None:
    """The number a text spells (after trimming), or None."""
    stripped = text.strip(BLANKS)
    if not _NUMBER.fullmatch(stripped):
        return None
    number = float(stripped)
    return number if math.isfinite(number) else None


def parse_literal(raw: str) -> Value:
    """Value of a typed cell that is not a formula: empty, number, percent or text."""
    if raw == "":
        return None
    if raw.startswith("'"):
        return raw[1:]
    number = parse_number(raw)
    if number is not None:
        return number
    stripped = raw.strip(BLANKS)
    if stripped.endswith("%"):
        number = parse_number(stripped[:-1])
        if number is not None:
            return number / 100
    return raw


def scalar(arg: Arg) -> Value:
    """A single value: a 1x1 reference gives its cell, a bigger one is #VALUE!."""
    if isinstance(arg, Grid):
        if len(arg.rows) == 1 and len(arg.rows[0]) == 1:
            return arg.rows[0][0]
        raise Fail(VALUE)
    return arg


def to_number(value: Value) -> float:
    """Excel arithmetic coercion: empty is 0, TRUE is 1, numeric text parses, else #VALUE!."""
    if isinstance(value, CellError):
        raise Fail(value.code)
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    number = parse_number(value)
    if number is None:
        raise Fail(VALUE)
    return number


def to_bool(value: Value) -> bool:
    """Excel logical coercion: numbers are true unless 0, text must be TRUE or FALSE."""
    if isinstance(value, CellError):
        raise Fail(value.code)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value != 0
    upper = value.upper()
    if upper in ("TRUE", "FALSE"):
        return upper == "TRUE"
    raise Fail(VALUE)


def to_text(value: Value) -> str:
    """Excel text coercion: numbers in General format, TRUE/FALSE, empty is ""."""
    if isinstance(value, CellError):
        raise Fail(value.code)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format_number(value)
    return value


def checked(number: float) -> float:
    """A finite result, or #NUM! (overflow, NaN)."""
    if not math.isfinite(number):
        raise Fail(NUM)
    return number + 0.0  # turns -0.0 into 0.0


def format_number(number: float) -> str:
    """Excel's General format: 15 significant digits, exponent for huge or tiny numbers."""
    if number == 0:
        return "0"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    mantissa, exponent_text = f"{number:.14e}".split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exponent = int(exponent_text)
    if exponent >= 15 or exponent < -9:
        tail = "." + digits[1:] if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{tail}E{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    fraction = digits[exponent + 1 :]
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _rank(value: Value) -> int:
    if isinstance(value, bool):
        return 2
    return 1 if isinstance(value, str) else 0


def compare(left: Value, right: Value) -> int:
    """Excel ordering: numbers < text < booleans; text ignores case; empty adapts to the other."""
    if isinstance(left, CellError):
        raise Fail(left.code)
    if isinstance(right, CellError):
        raise Fail(right.code)
    a = _blank_as(right) if left is None else left
    b = _blank_as(a) if right is None else right
    if _rank(a) != _rank(b):
        return -1 if _rank(a) < _rank(b) else 1
    if isinstance(a, str) and isinstance(b, str):
        a, b = a.lower(), b.lower()
        return -1 if a < b else (1 if a > b else 0)
    x, y = float(a), float(b)  # both numbers or both booleans here
    return -1 if x < y else (1 if x > y else 0)


def _blank_as(other: Value) -> float | str | bool:
    if isinstance(other, bool):
        return False
    return "" if isinstance(other, str) else 0.0
