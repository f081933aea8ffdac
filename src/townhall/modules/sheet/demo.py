"""Demo data: Alice's "Budget 2026" workbook (two sheets, formulas, formats), Bob edits it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from townhall.core.auth.rbac import Grants
from townhall.core.deps import Principal
from townhall.modules.sheet.files import SheetData
from townhall.modules.sheet.service import SheetService

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

WORKBOOK = "Budget 2026"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
# (category, monthly amounts Jan-Jun)
EXPENSES = (
    ("Rent", (1200, 1200, 1200, 1200, 1250, 1250)),
    ("Groceries", (410.5, 385.2, 402.75, 390, 420.1, 398.4)),
    ("Transport", (95, 95, 110, 95, 95, 120)),
    ("Utilities", (180.3, 165.9, 150.2, 120.75, 110, 98.6)),
    ("Fun", (150, 90, 210, 75, 160, 240)),
)
BOLD: dict[str, Any] = {"b": True}
MONEY: dict[str, Any] = {"fmt": "currency", "dp": 2}


def _expenses() -> SheetData:
    sheet = SheetData("Expenses", widths={0: 140})
    sheet.cells[(0, 0)] = "Category"
    sheet.formats[(0, 0)] = BOLD
    for c, month in enumerate(MONTHS, start=1):
        sheet.cells[(0, c)] = month
        sheet.formats[(0, c)] = BOLD
    total_col = len(MONTHS) + 1
    sheet.cells[(0, total_col)] = "Total"
    sheet.formats[(0, total_col)] = {"b": True, "color": "#1d4ed8"}
    for r, (category, amounts) in enumerate(EXPENSES, start=1):
        sheet.cells[(r, 0)] = category
        for c, amount in enumerate(amounts, start=1):
            sheet.cells[(r, c)] = str(amount)
            sheet.formats[(r, c)] = MONEY
        sheet.cells[(r, total_col)] = f"=SUM(B{r + 1}:G{r + 1})"
        sheet.formats[(r, total_col)] = {**MONEY, "b": True}
    last = len(EXPENSES) + 1
    sheet.cells[(last, 0)] = "Total"
    sheet.formats[(last, 0)] = BOLD
    for c in range(1, total_col + 1):
        letter = chr(ord("A") + c)
        sheet.cells[(last, c)] = f"=SUM({letter}2:{letter}{last})"
        sheet.formats[(last, c)] = {**MONEY, "b": True}
    return sheet


def _summary() -> SheetData:
    last = len(EXPENSES) + 2  # the Expenses total row, 1-based
    sheet = SheetData("Summary", widths={0: 180, 1: 120})
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("Budget 2026", "", {"b": True, "color": "#1d4ed8"}),
        ("Monthly income", "4200", MONEY),
        ("Months so far", str(len(MONTHS)), {}),
        ("Income so far", "=B2*B3", MONEY),
        ("Spent so far", f"=Expenses!H{last}", MONEY),
        ("Saved", "=B4-B5", {**MONEY, "b": True}),
        ("Savings rate", "=IF(B4=0,0,B6/B4)", {"fmt": "percent", "dp": 1}),
        ("Biggest month", f"=MAX(Expenses!B{last}:G{last})", MONEY),
        ("Average month", f"=ROUND(AVERAGE(Expenses!B{last}:G{last}),2)", MONEY),
        ("On track?", '=IF(B7>=0.2,"Yes","Spend less")', {"i": True}),
    ]
    for r, (label, value, fmt) in enumerate(rows):
        sheet.cells[(r, 0)] = label
        if value:
            sheet.cells[(r, 1)] = value
        if fmt:
            sheet.formats[(r, 1 if value else 0)] = fmt
    return sheet


async def load(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """Alice owns "Budget 2026", Bob edits it; skipped when Alice already has it."""
    alice = users.get("alice@example.com")
    if alice is None:
        return
    # The loader acts as Alice outside HTTP: no session family, no RBAC grants needed.
    principal = Principal(user=alice, family_id=uuid.UUID(int=0), grants=Grants())
    service = SheetService(session, platform, principal)
    if any(w.name == WORKBOOK for w in await service.workbooks()):
        return
    workbook = await service.create(WORKBOOK, [_summary(), _expenses()])
    bob = users.get("bob@example.com")
    if bob is not None:
        await service.invite(workbook.id, bob.email, "editor")
