"""CSV and XLSX import and export: round trips, formulas and formats kept, bad files refused."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from tests.modules.sheet.conftest import MAX_IMPORT_BYTES, MAX_IMPORT_CELLS, Team, W, read

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx(build: Any = None) -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = "Data"
    ws.append(["Item", "Price", "Qty", "Total"])
    ws.append(["Pen", 1.5, 4, "=B2*C2"])
    ws.append(["Book", 12, 1, "=B3*C3"])
    ws["A1"].font = Font(bold=True, italic=True, color="FF1D4ED8")
    ws["B2"].number_format = '"$"#,##0.00'
    ws["E1"] = "007"  # text that looks like a number
    ws["E2"] = 0.25
    ws["E2"].number_format = "0.0%"
    ws.column_dimensions["A"].width = 20
    other = book.create_sheet("Sum up")
    other["A1"] = "=SUM(Data!D2:D3)"
    other["A2"] = True
    if build is not None:
        build(book)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _import(
    client: httpx.AsyncClient, h: dict[str, str], name: str, data: bytes, kind: str = "text/csv"
) -> httpx.Response:
    return await client.post(f"{W}/import", files={"file": (name, data, kind)}, headers=h)


async def _workbooks(client: httpx.AsyncClient, h: dict[str, str]) -> list[str]:
    return [w["name"] for w in (await client.get(W, headers=h)).json()]


async def test_csv_import_and_export_round_trip(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    data = 'name;amount;note\nÄpfel;3;"a; b"\nBirnen;4,5;\n;=B2*2;x\n'.encode()
    imported = await _import(client, h, "fruit list.csv", data)
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["workbook"]["name"] == "fruit list"
    assert body["cells"] == 10
    book = Team(**{**team.__dict__, "workbook_id": body["workbook"]["id"]})
    sheet_id = body["sheets"][0]["id"]
    got = await read(client, book, "A1:C4", sheet=sheet_id)
    assert got["raw"][1] == ["Äpfel", "3", "a; b"]
    assert got["values"][3] == [None, 6.0, "x"]
    exported = await client.get(f"{book.url}/sheets/{sheet_id}/export", headers=h)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("utf-8-sig")
    assert text.splitlines() == [
        "name,amount,note",
        "Äpfel,3,a; b",
        'Birnen,"4,5",',
        ",6,x",
    ]


async def test_xlsx_import_keeps_formulas_formats_and_sheets(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    imported = await _import(client, h, "shop.xlsx", _xlsx(), XLSX)
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert [(s["name"], s["cells"]) for s in body["sheets"]] == [("Data", 14), ("Sum up", 2)]
    book = Team(**{**team.__dict__, "workbook_id": body["workbook"]["id"]})
    data = await read(client, book, "A1:E3", sheet="Data")
    assert data["raw"][1] == ["Pen", "1.5", "4", "=B2*C2", "0.25"]
    assert data["raw"][0][4] == "'007"
    assert data["values"][0][4] == "007"
    assert [row[3] for row in data["values"]] == ["Total", 6.0, 12.0]
    total = await read(client, book, "A1:A2", sheet="sum up")
    assert total["values"] == [[18.0], [True]]
    state = await client.get(f"/api/v1/collab/sheet/{book.workbook_id}/state", headers=h)
    assert state.status_code == 200


async def test_xlsx_export_round_trip(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    imported = (await _import(client, h, "shop.xlsx", _xlsx(), XLSX)).json()
    url = f"{W}/{imported['workbook']['id']}"
    exported = await client.get(f"{url}/export", headers=h)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(exported.content))
    assert book.sheetnames == ["Data", "Sum up"]
    ws = book["Data"]
    assert ws["D2"].value == "=B2*C2"
    assert ws["B2"].value == 1.5
    assert ws["C2"].value == 4
    assert ws["E1"].value == "007"
    assert ws["E1"].data_type == "s"
    assert ws["A1"].font.b
    assert ws["A1"].font.i
    assert ws["A1"].font.color.rgb == "FF1D4ED8"
    assert ws["B2"].number_format == '"$"#,##0.00'
    assert ws["E2"].number_format == "0.0%"
    assert round(ws.column_dimensions["A"].width) == 20
    assert book["Sum up"]["A1"].value == "=SUM(Data!D2:D3)"
    assert book["Sum up"]["A2"].value == "=TRUE"
    assert book.calculation.fullCalcOnLoad
    # The computed values are in the file too, as the formulas' cached results.
    cached = load_workbook(io.BytesIO(exported.content), data_only=True)
    assert [cached["Data"][f"D{r}"].value for r in (1, 2, 3)] == ["Total", 6, 12]
    assert cached["Sum up"]["A1"].value == 18
    assert cached["Sum up"]["A2"].value is True
    # And back in: the same cells.
    again = (await _import(client, h, "again.xlsx", exported.content, XLSX)).json()
    first = await client.get(f"{url}/sheets/Data/range?a1=A1:E3", headers=h)
    second = await client.get(
        f"{W}/{again['workbook']['id']}/sheets/Data/range?a1=A1:E3", headers=h
    )
    assert first.json() == second.json()


async def test_import_into_existing_workbook_renames_clashes(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    added = await client.post(
        f"{team.url}/import", files={"file": ("Sheet1.csv", b"1,2\n", "text/csv")}, headers=h
    )
    assert added.status_code == 201, added.text
    names = [s["name"] for s in (await client.get(f"{team.url}/sheets", headers=h)).json()]
    assert names == ["Sheet1", "Sheet1 (2)"]
    viewer = await client.post(
        f"{team.url}/import",
        files={"file": ("x.csv", b"1\n", "text/csv")},
        headers=team.headers("viewer"),
    )
    assert viewer.status_code == 403


def _bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 50_000_000)
    return out.getvalue()


def _too_many_cells(book: Any) -> None:
    ws = book.create_sheet("Big")
    for _r in range(1, MAX_IMPORT_CELLS // 10 + 2):
        ws.append(list(range(10)))


async def test_bad_imports_are_refused_and_leave_nothing(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    before = await _workbooks(client, h)
    bomb = _bomb()
    assert len(bomb) < MAX_IMPORT_BYTES  # small on the wire, 50 MB unpacked
    cases: list[tuple[str, bytes, str, int, str]] = [
        ("bomb.xlsx", bomb, XLSX, 413, "zip bomb"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", XLSX, 400, "XLSX"),
        ("truncated.xlsx", _xlsx()[:2000], XLSX, 400, "XLSX"),
        ("text.xlsx", b"name,amount\n", XLSX, 400, "XLSX"),
        ("huge.csv", b"1," * (MAX_IMPORT_BYTES // 2 + 10), "text/csv", 413, "larger than"),
        ("latin1.csv", "caf\xe9,1\n".encode("latin-1"), "text/csv", 400, "UTF-8"),
        ("binary.csv", b"\x00\x01\x02abc", "text/csv", 400, "NUL"),
        ("many.xlsx", _xlsx(_too_many_cells), XLSX, 413, "cells"),
        ("many.csv", b"1\n" * (MAX_IMPORT_CELLS + 1), "text/csv", 413, "cells"),
        ("far.csv", b"\n" * 100_001 + b"x\n", "text/csv", 413, "rows"),
    ]
    for name, data, kind, status, words in cases:
        response = await _import(client, h, name, data, kind)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert words in response.json()["detail"], (name, response.json())
    assert await _workbooks(client, h) == before
    # Into an existing workbook: the refused file adds no sheet.
    refused = await client.post(
        f"{team.url}/import", files={"file": ("bomb.xlsx", bomb, XLSX)}, headers=h
    )
    assert refused.status_code == 413
    sheets = (await client.get(f"{team.url}/sheets", headers=h)).json()
    assert [s["name"] for s in sheets] == ["Sheet1"]


async def test_formula_text_and_errors_in_csv_export(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("owner")
    cells = [["=1/0", "=A1", "'=not a formula", "=TRUE", "x"]]
    written = await client.put(
        f"{team.url}/sheets/{team.sheet_id}/range", json={"a1": "A1", "values": cells}, headers=h
    )
    assert written.status_code == 200
    exported = await client.get(f"{team.url}/sheets/{team.sheet_id}/export", headers=h)
    assert exported.content.decode("utf-8-sig").strip() == "#DIV/0!,#DIV/0!,=not a formula,TRUE,x"
