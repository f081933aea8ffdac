"""Built-in functions with Excel's argument rules: references ignore text, direct values coerce."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from townhall.modules.sheet.formulas.values import (
    DIV0,
    NA,
    REF,
    VALUE,
    Arg,
    CellError,
    Fail,
    Grid,
    Value,
    checked,
    compare,
    scalar,
    to_bool,
    to_number,
    to_text,
)


@dataclass(frozen=True, slots=True)
class Env:
    """What functions may read besides their arguments."""

    today: float


Impl = Callable[[list[Arg], Env], Arg]


def _values(args: list[Arg]) -> Iterator[tuple[Value, bool]]:
    """Each value with whether it came from a reference (True) or was passed directly."""
    for arg in args:
        if isinstance(arg, Grid):
            for value in arg.flat():
                yield value, True
        else:
            yield arg, False


def _numbers(args: list[Arg]) -> list[float]:
    """SUM-style numbers: references keep only numbers, direct values must coerce."""
    found: list[float] = []
    for value, from_ref in _values(args):
        if isinstance(value, CellError):
            raise Fail(value.code)
        if from_ref:
            if isinstance(value, float):
                found.append(value)
        elif value is not None:
            found.append(to_number(value))
    return found


def _total(numbers: list[float]) -> float:
    total = 0.0
    for number in numbers:  # plain left-to-right addition, exactly as the browser does it
        total += number
    return checked(total)


def _sum(args: list[Arg], env: Env) -> Arg:
    return _total(_numbers(args))


def _average(args: list[Arg], env: Env) -> Arg:
    numbers = _numbers(args)
    if not numbers:
        raise Fail(DIV0)
    return checked(_total(numbers) / len(numbers))


def _min(args: list[Arg], env: Env) -> Arg:
    return min(_numbers(args), default=0.0)


def _max(args: list[Arg], env: Env) -> Arg:
    return max(_numbers(args), default=0.0)


def _count(args: list[Arg], env: Env) -> Arg:
    total = 0
    for value, from_ref in _values(args):
        if from_ref:
            total += isinstance(value, float)
        elif value is not None and not isinstance(value, CellError):
            try:
                to_number(value)
            except Fail:
                continue
            total += 1
    return float(total)


def _counta(args: list[Arg], env: Env) -> Arg:
    return float(sum(value is not None for value, _ in _values(args)))


def _logicals(args: list[Arg]) -> list[bool]:
    found: list[bool] = []
    for value, from_ref in _values(args):
        if isinstance(value, CellError):
            raise Fail(value.code)
        if from_ref:
            if isinstance(value, bool | float):
                found.append(bool(value))
        elif value is not None:
            found.append(to_bool(value))
    if not found:
        raise Fail(VALUE)
    return found


def _and(args: list[Arg], env: Env) -> Arg:
    return all(_logicals(args))


def _or(args: list[Arg], env: Env) -> Arg:
    return any(_logicals(args))


def _not(args: list[Arg], env: Env) -> Arg:
    return not to_bool(scalar(args[0]))


def _if(args: list[Arg], env: Env) -> Arg:
    if to_bool(scalar(args[0])):
        return args[1]
    return args[2] if len(args) > 2 else False


def _iferror(args: list[Arg], env: Env) -> Arg:
    try:
        value = scalar(args[0])
    except Fail:
        return args[0]  # a whole range: nothing to replace
    return args[1] if isinstance(value, CellError) else args[0]


def _round(args: list[Arg], env: Env) -> Arg:
    number = to_number(scalar(args[0]))
    digits = math.trunc(to_number(scalar(args[1]))) if len(args) > 1 else 0
    if digits > 15 or abs(number) >= 1e15:
        return number
    if digits < -15:
        return 0.0
    factor = 10.0 ** abs(digits)
    scaled = abs(number) * factor if digits >= 0 else abs(number) / factor
    # Round the binary noise away first so ROUND(2.675, 2) is 2.68 as in Excel.
    rounded = float(math.floor(float(f"{scaled:.15g}") + 0.5))
    result = rounded / factor if digits >= 0 else rounded * factor
    return checked(math.copysign(result, number))


def _abs(args: list[Arg], env: Env) -> Arg:
    return abs(to_number(scalar(args[0])))


def _concat(args: list[Arg], env: Env) -> Arg:
    return "".join(to_text(value) for value, _ in _values(args))


def _len(args: list[Arg], env: Env) -> Arg:
    return float(len(to_text(scalar(args[0]))))


def _upper(args: list[Arg], env: Env) -> Arg:
    return to_text(scalar(args[0])).upper()


def _lower(args: list[Arg], env: Env) -> Arg:
    return to_text(scalar(args[0])).lower()


def _today(args: list[Arg], env: Env) -> Arg:
    return env.today


def _same_kind(a: Value, b: Value) -> bool:
    return (
        a is not None
        and isinstance(a, bool) == isinstance(b, bool)
        and (isinstance(a, str) == isinstance(b, str))
    )


def _vlookup(args: list[Arg], env: Env) -> Arg:
    needle = scalar(args[0])
    if isinstance(needle, CellError):
        raise Fail(needle.code)
    table = args[1]
    if not isinstance(table, Grid):
        raise Fail(VALUE)
    column = math.trunc(to_number(scalar(args[2])))
    approximate = to_bool(scalar(args[3])) if len(args) > 3 else True
    if column < 1:
        raise Fail(VALUE)
    if column > len(table.rows[0]):
        raise Fail(REF)
    if needle is None:
        raise Fail(NA)
    found: list[Value] | None = None
    for row in table.rows:
        key = row[0]
        if not _same_kind(key, needle):
            continue
        order = compare(key, needle)
        if order == 0 and not approximate:
            found = row
            break
        if approximate:
            if order > 0:
                break  # sorted data: nothing further can be <= the needle
            found = row
    if found is None:
        raise Fail(NA)
    return found[column - 1]


# name: (min args, max args or None, implementation)
FUNCTIONS: dict[str, tuple[int, int | None, Impl]] = {
    "SUM": (1, None, _sum),
    "AVERAGE": (1, None, _average),
    "MIN": (1, None, _min),
    "MAX": (1, None, _max),
    "COUNT": (1, None, _count),
    "COUNTA": (1, None, _counta),
    "IF": (2, 3, _if),
    "IFERROR": (2, 2, _iferror),
    "AND": (1, None, _and),
    "OR": (1, None, _or),
    "NOT": (1, 1, _not),
    "ROUND": (1, 2, _round),
    "ABS": (1, 1, _abs),
    "CONCAT": (1, None, _concat),
    "CONCATENATE": (1, None, _concat),
    "LEN": (1, 1, _len),
    "UPPER": (1, 1, _upper),
    "LOWER": (1, 1, _lower),
    "VLOOKUP": (3, 4, _vlookup),
    "TODAY": (0, 0, _today),
}
