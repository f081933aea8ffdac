"""Spreadsheet formula engine, mirrored line for line by static/formula.js for the browser.

Design: ``tokenizer`` turns a formula body into tokens that keep their text spans (so
``shift`` can rewrite references in place without reprinting the formula); ``parser`` builds a
small AST with Excel's precedence, keeping each precedence level a flat chain and capping
nesting at 64 so neither parsing nor evaluation can exhaust the stack; ``evaluator`` computes
expressions over values (float, str, bool, CellError, None for empty) and references as grids,
so functions can apply Excel's rule that text inside a reference is ignored while a text passed
directly must coerce. ``Workbook`` finds the evaluation order with an iterative Tarjan search
over formula-to-formula dependencies: every cell in a dependency cycle is #CIRC!, and long
chains never recurse. Errors are values, never exceptions: a syntax error is #ERROR!, an
unknown name #NAME?. TODAY() is an Excel serial number from an injected date, so results are
deterministic. The shared corpus in tests/modules/sheet/formula_corpus.json keeps both sides
in agreement.
"""

from townhall.modules.sheet.formulas.evaluator import Workbook, serial_of
from townhall.modules.sheet.formulas.parser import ParseError, parse
from townhall.modules.sheet.formulas.shift import shift_formula
from townhall.modules.sheet.formulas.tokenizer import column_name, parse_cell
from townhall.modules.sheet.formulas.values import CellError, Value, format_number, parse_literal

__all__ = [
    "CellError",
    "ParseError",
    "Value",
    "Workbook",
    "column_name",
    "format_number",
    "parse",
    "parse_cell",
    "parse_literal",
    "serial_of",
    "shift_formula",
]
