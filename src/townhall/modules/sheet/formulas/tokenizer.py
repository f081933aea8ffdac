"""Formula tokenizer: one regular expression, tokens keep their span for reference rewriting."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CELL = r"\$?[A-Za-z]{1,3}\$?[1-9][0-9]*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>[\ \t\r\n]+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"(?:[^"]|"")*")
  | (?P<ref>(?:(?P<sheet>'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?
        (?P<first>{_CELL})(?::(?P<last>{_CELL}))?(?![A-Za-z0-9_.(!]))
  | (?P<error>\#(?:REF!|DIV/0!|NAME\?|VALUE!|N/A|NUM!|NULL!|CIRC!|ERROR!))
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><>|<=|>=|[-+*/^&=<>%(),])
    """,
    re.VERBOSE,
)
_CELL_PARTS = re.compile(r"(\$?)([A-Za-z]{1,3})(\$?)([0-9]+)")


class TokenizeError(ValueError):
    """The text contains a character no token starts with."""


@dataclass(frozen=True, slots=True)
class CellRef:
    """One corner of a reference: 0-based row/col plus the $ markers."""

    row: int
    col: int
    row_abs: bool = False
    col_abs: bool = False

    def render(self) -> str:
        """A1 text with the original $ markers."""
        col = ("$" if self.col_abs else "") + column_name(self.col)
        return col + ("$" if self.row_abs else "") + str(self.row + 1)


@dataclass(frozen=True, slots=True)
class Token:
    """A token: its kind, text, span and, for references, the parsed parts."""

    kind: str
    text: str
    start: int
    end: int
    sheet: str | None = None
    first: CellRef | None = None
    last: CellRef | None = None


def column_index(letters: str) -> int:
    """0-based index of column letters (A=0, Z=25, AA=26)."""
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index - 1


def column_name(index: int) -> str:
    """Column letters of a 0-based index."""
    name = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def parse_cell(text: str) -> CellRef:
    """Parse "A1" or "$B$7" into a CellRef."""
    match = _CELL_PARTS.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a cell reference: {text!r}")
    col_abs, letters, row_abs, digits = match.groups()
    return CellRef(int(digits) - 1, column_index(letters), row_abs == "$", col_abs == "$")


def unquote_sheet(text: str) -> str:
    """Sheet name as written before "!", without quotes."""
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def quote_sheet(name: str) -> str:
    """Sheet name as it must be written in a formula."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and not _CELL_PARTS.fullmatch(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def tokenize(text: str) -> list[Token]:
    """Tokens of a formula body (without the leading "="), whitespace dropped."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise TokenizeError(f"unexpected {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        if kind == "ref" or match.group("first"):
            sheet = match.group("sheet")
            last = match.group("last")
            tokens.append(
                Token(
                    "ref",
                    match.group(),
                    pos,
                    match.end(),
                    unquote_sheet(sheet) if sheet else None,
                    parse_cell(match.group("first")),
                    parse_cell(last) if last else None,
                )
            )
        elif kind != "ws":
            tokens.append(Token(kind, match.group(), pos, match.end()))
        pos = match.end()
    return tokens
