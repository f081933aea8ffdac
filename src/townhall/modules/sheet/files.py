"""CSV and XLSX in and out: files become SheetData (nothing touches a document here)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from fastapi import UploadFile
from openpyxl import Workbook as XlsxBook  # type: ignore[import-untyped]
from openpyxl import load_workbook
from openpyxl.styles import Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from townhall.core.errors import BadRequest, PayloadTooLarge
from townhall.core.zipguard import check_zip
from townhall.modules.sheet.document import SheetView
from townhall.modules.sheet.formulas import CellError, Value, Workbook, format_number, parse_literal
from townhall.modules.sheet.formulas.tokenizer import column_index

# A sheet may not grow past these on import (the grid and the document stay usable).
MAX_ROWS = 100_000
MAX_COLS = 1_000
MAX_CELL_CHARS = 32_767
PX_PER_CHAR = 7  # Excel column width unit (one "0" of the default font) in pixels, roughly
CURRENCY = re.compile(r"[$€£¥₩]|\[\$")


@dataclass
class SheetData:
    """One sheet's content by 0-based position, ready for document.create_sheet."""

    name: str
    cells: dict[tuple[int, int], str] = field(default_factory=dict)
    formats: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    widths: dict[int, int] = field(default_factory=dict)


@dataclass
class Limits:
    """What one import may bring in."""

    max_bytes: int
    max_unzipped_bytes: int
    max_zip_ratio: float
    max_cells: int


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def add(self, row: int, col: int) -> None:
        if row >= MAX_ROWS or col >= MAX_COLS:
            raise PayloadTooLarge(
                f"a sheet may have at most {MAX_ROWS} rows and {MAX_COLS} columns"
            )
        self.count += 1
        if self.count > self.limit:
            raise PayloadTooLarge(f"the file has more than {self.limit} non-empty cells")


def _check_text(raw: str) -> str:
    if len(raw) > MAX_CELL_CHARS:
        raise BadRequest(f"a cell holds at most {MAX_CELL_CHARS} characters")
    return raw


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The whole upload, refused as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while chunk := await upload.read(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# CSV ------------------------------------------------------------------------------------------


def read_csv(data: bytes, name: str, limits: Limits) -> SheetData:
    """One sheet from CSV text (UTF-8, optional BOM; comma, semicolon or tab separated)."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the file is larger than {limits.max_bytes} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV must be UTF-8 text (byte {exc.start} is not)") from exc
    if "\x00" in text:
        raise BadRequest("not a CSV file: it contains NUL bytes")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    sheet = SheetData(name)
    counter = _Counter(limits.max_cells)
    try:
        for r, row in enumerate(csv.reader(io.StringIO(text, newline=""), dialect)):
            for c, raw in enumerate(row):
                if raw != "":
                    counter.add(r, c)
                    sheet.cells[(r, c)] = _check_text(raw)
    except csv.Error as exc:
        raise BadRequest(f"broken CSV: {exc}") from exc
    return sheet


def csv_text(value: Value) -> str:
    """A computed value as a desktop spreadsheet writes it to CSV."""
    if value is None:
        return ""
    if isinstance(value, CellError):
        return value.code
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return format_number(value)
    return value


def write_csv(rows: list[list[Value]]) -> bytes:
    """Computed values as CSV (UTF-8 with BOM, so Excel opens it as UTF-8)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode()


# XLSX -----------------------------------------------------------------------------------------


def _raw_of(cell: Any) -> str:
    """What a user would type to get this XLSX cell."""
    value = cell.value
    if cell.data_type == "f" or (isinstance(value, str) and cell.data_type == "f"):
        return _check_text(str(value))
    if isinstance(value, bool):
        return "=TRUE" if value else "=FALSE"  # typed TRUE would be text to the evaluator
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer cell of hundreds of digits
            number = math.inf
        if not math.isfinite(number):  # <v>inf</v> or <v>nan</v>: no spreadsheet number
            raise BadRequest("a number cell holds no finite number")
        return format_number(number)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return format_number(_serial(value))
    if isinstance(value, dt.timedelta):
        return format_number(value.total_seconds() / 86400)
    text = str(value)
    # Text that would read back as a number or a formula keeps its text meaning.
    if text.startswith(("=", "'")) or parse_literal(text) != text:
        text = "'" + text
    return _check_text(text)


def _serial(value: dt.datetime | dt.date | dt.time) -> float:
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second) / 86400
    if isinstance(value, dt.datetime):
        delta = value.replace(tzinfo=None) - dt.datetime(1899, 12, 30)
        return delta.days + delta.seconds / 86400
    return float((value - dt.date(1899, 12, 30)).days)


def _format_of(cell: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    font = cell.font
    if font is not None:
        if font.b:
            out["b"] = True
        if font.i:
            out["i"] = True
        rgb = getattr(font.color, "rgb", None) if font.color is not None else None
        if isinstance(rgb, str) and re.fullmatch(r"[0-9A-Fa-f]{8}", rgb) and rgb[2:] != "000000":
            out["color"] = "#" + rgb[2:].lower()
    number_format = str(cell.number_format or "General")
    if number_format != "General":
        if cell.is_date:
            out["fmt"] = "date"
        elif "%" in number_format:
            out["fmt"] = "percent"
        elif CURRENCY.search(number_format):
            out["fmt"] = "currency"
        elif re.search(r"[0#]", number_format):
            out["fmt"] = "number"
        decimals = re.search(r"\.(0+)", number_format)
        if "fmt" in out and out["fmt"] != "date":
            out["dp"] = len(decimals.group(1)) if decimals else 0
    return out


def read_xlsx(data: bytes, limits: Limits) -> list[SheetData]:
    """Every worksheet of an XLSX file: formulas, values, fonts, number formats, widths."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the file is larger than {limits.max_bytes} bytes")
    # Before openpyxl inflates anything: a zip bomb is refused on its declared sizes.
    check_zip(
        data,
        max_total_bytes=limits.max_unzipped_bytes,
        max_ratio=limits.max_zip_ratio,
        what="XLSX file",
    )
    try:
        book = load_workbook(io.BytesIO(data), data_only=False, rich_text=False)
    except Exception as exc:  # openpyxl raises anything from KeyError to XML errors
        raise BadRequest("not a readable XLSX file") from exc
    counter = _Counter(limits.max_cells)
    sheets: list[SheetData] = []
    for ws in book.worksheets:
        sheet = SheetData(str(ws.title)[:100])
        # ws._cells holds only the cells the file has; iter_rows() would materialise the whole
        # used rectangle, which a file can declare as large as A1:XFD1048576.
        for (row, col), cell in sorted(ws._cells.items()):
            if cell.value is None or cell.value == "":
                continue
            counter.add(row - 1, col - 1)
            sheet.cells[(row - 1, col - 1)] = _raw_of(cell)
            fmt = _format_of(cell)
            if fmt:
                sheet.formats[(row - 1, col - 1)] = fmt
        for letter, dim in ws.column_dimensions.items():
            width = getattr(dim, "width", None)
            if width and getattr(dim, "customWidth", False):
                index = column_index(letter) if re.fullmatch(r"[A-Z]{1,3}", letter) else None
                if index is not None and index < MAX_COLS:
                    sheet.widths[index] = max(20, min(1000, round(width * PX_PER_CHAR + 5)))
        sheets.append(sheet)
    if not sheets:
        raise BadRequest("the XLSX file has no worksheet")
    return sheets


def _excel_format(fmt: dict[str, Any]) -> str | None:
    kind = fmt.get("fmt")
    dp = fmt.get("dp")
    places = int(dp) if isinstance(dp, int | float) and 0 <= dp <= 10 else 2
    decimals = "." + "0" * places if places else ""
    if kind == "number":
        return f"#,##0{decimals}"
    if kind == "percent":
        return f"0{decimals}%"
    if kind == "currency":
        return f'"$"#,##0{decimals}'
    if kind == "date":
        return "yyyy-mm-dd"
    return None


def write_xlsx(views: list[SheetView]) -> bytes:
    """Every sheet as XLSX: formulas as formulas, literals typed, fonts, formats and widths."""
    book = XlsxBook()
    for n, view in enumerate(views):
        # The first sheet reuses the default one, renamed before any other gets its name.
        ws = book.active if n == 0 and book.active is not None else book.create_sheet()
        ws.title = view.name
        for (row, col), raw in view.cells.items():
            cell = ws.cell(row=row + 1, column=col + 1)
            fmt = view.formats.get((row, col), {})
            if raw.startswith("="):
                cell.value = raw
            else:
                value = parse_literal(raw)
                if isinstance(value, float):
                    cell.value = int(value) if value.is_integer() and abs(value) < 2**53 else value
                    if raw.strip().endswith("%") and "fmt" not in fmt:
                        cell.number_format = "0%"
                else:
                    cell.value = value
                    # Text is text, even when it starts with "=" (openpyxl would make a formula).
                    cell.data_type = "s"
            if fmt.get("b") or fmt.get("i") or fmt.get("color"):
                color = str(fmt.get("color", ""))
                rgb = "FF" + color[1:].upper() if re.fullmatch(r"#[0-9a-fA-F]{6}", color) else None
                cell.font = Font(bold=bool(fmt.get("b")), italic=bool(fmt.get("i")), color=rgb)
            number_format = _excel_format(fmt)
            if number_format:
                cell.number_format = number_format
        for col, px in view.widths.items():
            ws.column_dimensions[get_column_letter(col + 1)].width = round(
                max(1, px - 5) / PX_PER_CHAR, 2
            )
    # Readers recompute anyway (our evaluator is not Excel); the cached values added below are
    # for readers that never compute (previews, data_only loaders).
    book.calculation.fullCalcOnLoad = True
    out = io.BytesIO()
    book.save(out)
    return _with_cached_values(out.getvalue(), views)


EXCEL_ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"}
# How openpyxl writes a formula cell: the formula and an empty cached value.
_FORMULA_CELL = re.compile(
    r'<c r="([A-Z]{1,3})([0-9]+)"((?: s="[0-9]+")?)><f>([^<]*)</f><v\s*/?>(?:</v>)?</c>'
)


def _cached(value: Value) -> tuple[str, str]:
    """(type attribute, <v> text) of a computed value in SpreadsheetML."""
    if isinstance(value, CellError):
        return (' t="e"', value.code) if value.code in EXCEL_ERRORS else (' t="str"', value.code)
    if isinstance(value, bool):
        return ' t="b"', "1" if value else "0"
    if isinstance(value, float):
        return "", repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if value is None:
        return "", "0"
    return ' t="str"', xml_escape(value)


def _with_cached_values(data: bytes, views: list[SheetView]) -> bytes:
    """The XLSX with each formula's computed value as its cached result.

    openpyxl can write a formula or a value, not both; the cell XML it writes for a formula is
    fixed (`<c r=".." s=".."><f>..</f><v></v></c>`), so the values are filled in afterwards.
    """
    book = Workbook({v.name: v.cells for v in views})
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item)
            match = re.fullmatch(r"xl/worksheets/sheet([0-9]+)\.xml", item.filename)
            if match and 0 < int(match.group(1)) <= len(views):
                view = views[int(match.group(1)) - 1]

                def fill(cell: re.Match[str], name: str = view.name) -> str:
                    letters, row, style, formula = cell.group(1, 2, 3, 4)
                    kind, text = _cached(book.value(name, int(row) - 1, column_index(letters)))
                    return f'<c r="{letters}{row}"{style}{kind}><f>{formula}</f><v>{text}</v></c>'

                body = _FORMULA_CELL.sub(fill, body.decode()).encode()
            target.writestr(item, body)
    return out.getvalue()
