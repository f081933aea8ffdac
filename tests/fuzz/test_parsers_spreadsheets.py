"""Quiz and sheet imports of CSV/XLSX: AppError (400/413/422) only, whatever the bytes."""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from xml.sax.saxutils import escape

from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]

from tests.fuzz.strategies import fuzz, texts
from townhall.core.errors import AppError
from townhall.modules.quiz import spreadsheet
from townhall.modules.sheet.files import Limits, read_csv, read_xlsx

LIMITS = Limits(
    max_bytes=1024 * 1024, max_unzipped_bytes=8 * 1024 * 1024, max_zip_ratio=100, max_cells=5000
)
SHEET_XML = "xl/worksheets/sheet1.xml"

cells = (
    st.sampled_from(spreadsheet.COLUMNS)
    | st.sampled_from(["single", "multiple", "true_false", "type_answer", "slider", "poll"])
    | st.sampled_from(["ordering", "SINGLE ", "1", "0", "-1", "2|3", "1|x", "inf", "-inf", "nan"])
    | st.sampled_from(["1e400", "1e308", "99999999999999999999", "0x10", "1_000", "=1+1", "'x"])
    | st.sampled_from(["=SUM(A1:A3)", "TRUE", "#N/A", "Paris|Lyon", "", " ", '"', "\r", "\n"])
    | st.integers().map(str)
    | st.floats().map(str)
    | texts
)
header = st.lists(st.sampled_from(spreadsheet.COLUMNS) | cells, max_size=11).map(
    lambda names: ["type", "question", *names]
)
tables = st.builds(
    lambda head, rows: [head, *rows], header, st.lists(st.lists(cells, max_size=11), max_size=6)
)


def _csv(rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode()


csv_files = (
    st.builds(_csv, tables, st.sampled_from([",", ";", "\t"]))
    | st.builds(lambda rows, n: _csv(rows, ",")[:n], tables, st.integers(0, 200))
    | texts.map(lambda text: text.encode())
    | st.binary(max_size=200)
)


def _xlsx(rows: list[list[str]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append([_typed(cell) for cell in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _typed(cell: str) -> object:
    """Numbers as numbers, so openpyxl writes numeric cells too."""
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        value = float(cell)
    except ValueError:
        return ILLEGAL_CHARACTERS_RE.sub("", cell)
    return value if value == value and abs(value) != float("inf") else cell


BASE_XLSX = _xlsx([spreadsheet.COLUMNS])

refs = st.sampled_from(
    ["A1", "B2", "XFD1048576", "A0", "1A", "", "ZZZZ9", "A99999999"]
) | st.builds("{}{}".format, st.sampled_from(["A", "B", "C", "J", "K", "AA"]), st.integers(1, 12))
kinds = st.sampled_from(["n", "s", "b", "e", "str", "inlineStr", "d", "x"])


@st.composite
def cell_xml(draw: st.DrawFn) -> str:
    kind = draw(kinds)
    value = draw(cells)
    text = escape(value) if draw(st.booleans()) else value  # sometimes not even XML
    if kind == "inlineStr":
        inner = f"<is><t>{text}</t></is>"
    elif draw(st.booleans()):
        inner = f"<f>{text}</f>"
    else:
        inner = f"<v>{text}</v>"
    style = draw(st.sampled_from(["", ' s="0"', ' s="7"', ' s="-1"']))
    return f'<c r="{draw(refs)}" t="{kind}"{style}>{inner}</c>'


@st.composite
def sheet_xml(draw: st.DrawFn) -> bytes:
    head = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for i, name in enumerate(["type", "question", "answers", "correct"])
    )
    rows = "".join(
        f'<row r="{n}">' + "".join(draw(st.lists(cell_xml(), max_size=4))) + "</row>"
        for n in draw(st.lists(st.integers(-1, 20) | st.just(2), max_size=4))
    )
    cols = draw(
        st.sampled_from(["", '<cols><col min="1" max="3" width="99" customWidth="1"/></cols>'])
    )
    dim = draw(refs)
    return (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1:{dim}"/>{cols}<sheetData><row r="1">{head}</row>{rows}</sheetData>'
        "</worksheet>"
    ).encode()


def _with_sheet(xml: bytes) -> bytes:
    """BASE_XLSX with its worksheet replaced: a valid container around a hostile sheet."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(BASE_XLSX)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, xml if item.filename == SHEET_XML else src.read(item.filename))
    return out.getvalue()


xlsx_files = (
    st.builds(_xlsx, tables)
    | sheet_xml().map(_with_sheet)
    | st.builds(
        lambda n, b: BASE_XLSX[:n] + b, st.integers(0, len(BASE_XLSX)), st.binary(max_size=8)
    )
    | st.binary(max_size=200)
)


@given(csv_files)
@fuzz
def test_quiz_csv(data: bytes) -> None:
    with contextlib.suppress(AppError):
        spreadsheet.parse(data, "quiz.csv")


@given(xlsx_files)
@fuzz
def test_quiz_xlsx(data: bytes) -> None:
    with contextlib.suppress(AppError):
        spreadsheet.parse(data, "quiz.xlsx")


@given(csv_files)
@fuzz
def test_sheet_csv(data: bytes) -> None:
    with contextlib.suppress(AppError):
        read_csv(data, "Sheet1", LIMITS)


@given(xlsx_files)
@fuzz
def test_sheet_xlsx(data: bytes) -> None:
    with contextlib.suppress(AppError):
        read_xlsx(data, LIMITS)
