"""Quiz import/export as a spreadsheet (CSV or XLSX), one question per row."""

from __future__ import annotations

import csv
import io
from typing import Any

from openpyxl import Workbook, load_workbook  # type: ignore[import-untyped]
from pydantic import ValidationError

from townhall.core.errors import BadRequest, Unprocessable
from townhall.modules.quiz.schemas import OptionIn, QuestionIn

COLUMNS = [
    "type",
    "question",
    "time_limit",
    "points",
    "answers",
    "correct",
    "min",
    "max",
    "step",
    "tolerance",
]
HELP = (
    "answers are separated by |; correct is the 1-based answer number (several with | for "
    "multiple); type_answer lists accepted answers; ordering lists items in the right order; "
    "slider uses min/max/step/correct/tolerance"
)
EXAMPLES: list[list[Any]] = [
    ["single", "Capital of France?", 20, 1000, "Paris|Lyon|Nice|Lille", "1", "", "", "", ""],
    ["multiple", "Which are primes?", 30, 1000, "2|4|5|9", "1|3", "", "", "", ""],
    ["true_false", "The Earth is flat.", 10, 1000, "True|False", "2", "", "", "", ""],
    ["type_answer", "Chemical symbol of gold?", 20, 2000, "Au", "", "", "", "", ""],
    ["slider", "Year the Web was invented?", 20, 1000, "", "1989", 1980, 2000, 1, 0],
    ["poll", "Favourite season?", 15, 0, "Spring|Summer|Autumn|Winter", "", "", "", "", ""],
    [
        "ordering",
        "Order by size, smallest first",
        30,
        1000,
        "Ant|Cat|Horse|Whale",
        "",
        "",
        "",
        "",
        "",
    ],
]
MAX_ROWS = 100
# Rows (blank ones included) and columns an XLSX import looks at.
MAX_SCAN_ROWS = 10_000
MAX_COLS = 64


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split("|") if part.strip()]


def _number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def row_to_question(row: dict[str, Any]) -> QuestionIn:
    """One spreadsheet row -> a validated question (raises ValueError/ValidationError)."""
    kind = str(row.get("type") or "").strip().lower()
    answers = _split(row.get("answers"))
    body: dict[str, Any] = {
        "type": kind,
        "text": str(row.get("question") or ""),
        "time_limit": int(float(row.get("time_limit") or 20)),
        "points": int(float(row.get("points") or (0 if kind == "poll" else 1000))),
    }
    if kind in ("single", "multiple", "true_false", "poll"):
        marked = {int(float(c)) - 1 for c in _split(row.get("correct"))}
        body["options"] = [OptionIn(text=a, correct=i in marked) for i, a in enumerate(answers)]
    elif kind == "type_answer":
        body["accepted"] = answers
    elif kind == "slider":
        for name in ("min", "max", "step", "tolerance"):
            if (value := _number(row.get(name))) is not None:
                body[name] = value
        body["correct"] = _number(row.get("correct"))
    elif kind == "ordering":
        body["items"] = answers
    return QuestionIn.model_validate(body)


def parse(data: bytes, filename: str) -> list[QuestionIn]:
    """Questions from an uploaded .csv or .xlsx; errors name the row."""
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
            if sheet is None:
                raise BadRequest("the workbook has no sheet")
            # Read-only sheets parse lazily (broken XML, bad cell references and values raise
            # here), and pad every row to the sheet's declared dimension: read a bounded window.
            rows = [
                list(r)
                for r in sheet.iter_rows(max_row=MAX_SCAN_ROWS, max_col=MAX_COLS, values_only=True)
            ]
        except BadRequest:
            raise
        except Exception as exc:
            raise BadRequest("not a readable .xlsx file") from exc
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadRequest("CSV must be UTF-8") from exc
        try:
            rows = [list(r) for r in csv.reader(io.StringIO(text, newline=""))]
        except csv.Error as exc:  # e.g. a NUL byte, or a stray CR inside an unquoted cell
            raise BadRequest(f"broken CSV: {exc}") from exc
    if not rows:
        raise BadRequest("the file is empty")
    header = [str(h or "").strip().lower() for h in rows[0]]
    if "type" not in header or "question" not in header:
        raise BadRequest(f"the first row must name the columns: {', '.join(COLUMNS)}")
    body = [r for r in rows[1:] if any(c not in (None, "") for c in r)]
    if len(body) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} questions")
    questions = []
    for number, values in enumerate(body, start=2):
        row = dict(zip(header, values, strict=False))
        try:
            questions.append(row_to_question(row))
        except (ValueError, OverflowError, ValidationError) as exc:  # Overflow: int(inf)
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise Unprocessable(f"row {number}: {reason}") from exc
    return questions


def question_row(q: QuestionIn) -> list[Any]:
    answers, correct = "", ""
    if q.options is not None:
        answers = "|".join(o.text for o in q.options)
        correct = "|".join(str(i + 1) for i, o in enumerate(q.options) if o.correct)
    elif q.accepted is not None:
        answers = "|".join(q.accepted)
    elif q.items is not None:
        answers = "|".join(q.items)
    elif q.type == "slider":
        correct = str(q.correct)
    slider = [q.min, q.max, q.step, q.tolerance] if q.type == "slider" else ["", "", "", ""]
    return [q.type, q.text, q.time_limit, q.points, answers, correct, *slider]


def to_csv(questions: list[QuestionIn]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for q in questions:
        writer.writerow(question_row(q))
    return out.getvalue().encode()


def to_xlsx(questions: list[QuestionIn]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "questions"
    sheet.append(COLUMNS)
    for q in questions:
        sheet.append(question_row(q))
    notes = book.create_sheet("help")
    notes.append([HELP])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_questions() -> list[QuestionIn]:
    return [row_to_question(dict(zip(COLUMNS, row, strict=True))) for row in EXAMPLES]
