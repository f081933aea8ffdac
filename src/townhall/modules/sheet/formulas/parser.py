"""Recursive-descent parser with Excel precedence; chains of one level stay flat (no deep trees)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from townhall.modules.sheet.formulas.tokenizer import CellRef, Token, TokenizeError, tokenize
from townhall.modules.sheet.formulas.values import NAME, NUM, SYNTAX, CellError, Value

MAX_DEPTH = 64  # Excel's nesting limit; also keeps Python's stack shallow
# Lowest to highest binding; unary minus and % bind tighter than all of them (Excel: -2^2 = 4).
LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"=", "<>", "<", ">", "<=", ">="}),
    frozenset({"&"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/"}),
    frozenset({"^"}),
)


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: number, string, boolean, error or a missing argument (None)."""

    value: Value


@dataclass(frozen=True, slots=True)
class Ref:
    """A cell or range reference; last is None for a single cell."""

    sheet: str | None
    first: CellRef
    last: CellRef | None


@dataclass(frozen=True, slots=True)
class Unary:
    """Prefix minus/plus or postfix percent."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Chain:
    """first op1 x1 op2 x2 ... evaluated left to right (all ops of one precedence level)."""

    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; name is upper case."""

    name: str
    args: tuple[Node, ...]


Node = Literal | Ref | Unary | Chain | Call


class ParseError(ValueError):
    """The formula is not well formed."""


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def is_op(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in texts

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end of formula")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        if not self.is_op(text):
            raise ParseError(f"expected {text!r}")
        self.pos += 1

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("formula nested too deeply")

    def expression(self, level: int = 0) -> Node:
        if level == len(LEVELS):
            return self.unary()
        first = self.expression(level + 1)
        rest: list[tuple[str, Node]] = []
        while self.is_op(*LEVELS[level]):
            op = self.take().text
            rest.append((op, self.expression(level + 1)))
        return Chain(first, tuple(rest)) if rest else first

    def unary(self) -> Node:
        if self.is_op("-", "+"):
            op = self.take().text
            self.nest()
            node: Node = Unary(op, self.unary())
            self.depth -= 1
        else:
            node = self.primary()
        while self.is_op("%"):
            self.pos += 1
            node = Unary("%", node)
        return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            number = float(token.text)
            return Literal(number if math.isfinite(number) else CellError(NUM))
        if token.kind == "string":
            return Literal(token.text[1:-1].replace('""', '"'))
        if token.kind == "error":
            return Literal(CellError(token.text))
        if token.kind == "ref":
            assert token.first is not None
            return Ref(token.sheet, token.first, token.last)
        if token.kind == "name":
            if self.is_op("("):
                return self.call(token.text.upper())
            upper = token.text.upper()
            if upper in ("TRUE", "FALSE"):
                return Literal(upper == "TRUE")
            return Literal(CellError(NAME))  # no named ranges: any other bare name is unknown
        if token.kind == "op" and token.text == "(":
            self.nest()
            node = self.expression()
            self.expect(")")
            self.depth -= 1
            return node
        raise ParseError(f"unexpected {token.text!r}")

    def call(self, name: str) -> Node:
        self.expect("(")
        self.nest()
        args: list[Node] = []
        if self.is_op(")"):
            self.pos += 1
        else:
            while True:
                args.append(Literal(None) if self.is_op(",", ")") else self.expression())
                if self.is_op(")"):
                    self.pos += 1
                    break
                self.expect(",")
        self.depth -= 1
        return Call(name, tuple(args))


def parse(body: str) -> Node:
    """Parse a formula body (the text after "="); raises ParseError."""
    try:
        tokens = tokenize(body)
    except TokenizeError as exc:
        raise ParseError(str(exc)) from exc
    parser = _Parser(tokens)
    node = parser.expression()
    if parser.peek() is not None:
        raise ParseError(f"unexpected {parser.take().text!r}")
    return node


def parse_or_error(body: str) -> Node:
    """Parse, turning any syntax error into a #ERROR! literal."""
    try:
        return parse(body)
    except ParseError:
        return Literal(CellError(SYNTAX))
