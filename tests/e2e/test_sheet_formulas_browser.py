"""The shared formula corpus on static/formula.js inside a real browser (the system Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Route

from tests.fixtures.browser import browser  # noqa: F401  (fixture)
from tests.modules.sheet.test_formulas import CORPUS, JOBS, TODAY, agree

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STATIC = Path(__file__).parents[2] / "src/townhall/modules/sheet/static"
ORIGIN = "http://sheet.test"  # served by page.route: no server needed for a pure module

RUNNER = """async ({ jobs, shifts, today }) => {
  const { Workbook, CellError, shiftFormula } = await import('/formula.js')
  const encode = (v) => (v instanceof CellError ? { error: v.code } : v)
  const results = jobs.map((job) => {
    const book = new Workbook(job.sheets, { today })
    return job.cells.map(([sheet, row, col]) => encode(book.value(sheet, row, col)))
  })
  const shifted = shifts.map((s) =>
    shiftFormula(s.formula, s.sheet, s.axis, s.at, s.count, s.home ?? null))
  return { results, shifted }
}"""


async def serve_static(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path == "/":
        await route.fulfill(body="<!doctype html><title>formulas</title>", content_type="text/html")
    elif path == "/formula.js":
        await route.fulfill(path=STATIC / "formula.js", content_type="text/javascript")
    else:
        await route.fulfill(status=404)


async def test_formula_corpus_in_the_browser(browser: Browser) -> None:  # noqa: F811
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.route(f"{ORIGIN}/**", serve_static)
    await page.goto(f"{ORIGIN}/")
    payload: dict[str, Any] = {
        "jobs": [
            {
                "sheets": {
                    name: {f"{r},{c}": raw for (r, c), raw in cells.items()}
                    for name, cells in sheets.items()
                },
                "cells": checks,
            }
            for _, sheets, checks, _ in JOBS
        ],
        "shifts": CORPUS["shift"],
        "today": TODAY,
    }
    out = await page.evaluate(RUNNER, payload)
    assert len(out["results"]) == len(JOBS) >= 120
    wrong = [
        (job[0], actual, job[3])
        for job, actual in zip(JOBS, out["results"], strict=True)
        if not agree(actual, job[3])
    ]
    assert wrong == []
    assert out["shifted"] == [case["expect"] for case in CORPUS["shift"]]
    assert errors == []
    await page.close()
