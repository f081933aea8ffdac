"""Netscape bookmark import/export round trip, JSON/CSV export, malformed files, the CLI."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from townhall.core.config import Settings
from townhall.modules.link.bookmarks import parse_netscape

FIREFOX = """<!DOCTYPE NETSCAPE-Bookmark-file-1>
<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">
<TITLE>Bookmarks</TITLE>
<H1>Bookmarks Menu</H1>
<DL><p>
    <DT><H3 ADD_DATE="1700000000">Dev</H3>
    <DL><p>
        <DT><A HREF="https://example.com/react" ADD_DATE="1700000001"
          TAGS="react,js">React &amp; hooks</A>
        <DD>Read the hooks part
        <DT><A HREF="https://www.example.com/react/?utm_source=x">Same page again</A>
    </DL><p>
    <DT><A HREF="https://example.org/리액트" ADD_DATE="1700000002">한국어 페이지</A>
    <DT><A HREF="javascript:alert(1)">Bookmarklet</A>
    <DT><A HREF="place:sort=8">Firefox smart folder</A>
</DL><p>
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_in_process": False})


def test_parser_reads_folders_tags_notes_and_dates() -> None:
    entries = parse_netscape(FIREFOX)
    assert [e.url for e in entries][:3] == [
        "https://example.com/react",
        "https://www.example.com/react/?utm_source=x",
        "https://example.org/리액트",
    ]
    first = entries[0]
    assert first.title == "React & hooks"
    assert first.note == "Read the hooks part"
    assert first.tags == ["react", "js", "Dev"]
    assert first.added_at is not None
    assert first.added_at.year == 2023
    assert entries[2].tags == []


@pytest.mark.parametrize(
    "text", ["", "hello", "<html><body>no links</body></html>", "<DL><p></DL>"]
)
def test_malformed_files_are_refused(text: str) -> None:
    from townhall.core.errors import Unprocessable

    with pytest.raises(Unprocessable):
        parse_netscape(text)


async def test_import_export_round_trip(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    imported = await client.post(
        "/api/v1/links/import",
        files={"file": ("bookmarks.html", FIREFOX.encode(), "text/html")},
        headers=user["headers"],
    )
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert result["total"] == 5
    assert result["created"] == 2
    assert result["duplicates"] == 1
    assert len(result["errors"]) == 2
    again = await client.post(
        "/api/v1/links/import", content=FIREFOX.encode(), headers=user["headers"]
    )
    assert again.json()["created"] == 0
    listing = (await client.get("/api/v1/links", headers=user["headers"])).json()
    assert listing["total"] == 2
    assert {i["status"] for i in listing["items"]} == {"pending"}
    # Importing a URL the user deleted brings that same link back.
    gone = next(i for i in listing["items"] if i["url"] == "https://example.com/react")
    await client.delete(f"/api/v1/links/{gone['id']}", headers=user["headers"])
    revived = await client.post(
        "/api/v1/links/import", content=FIREFOX.encode(), headers=user["headers"]
    )
    assert revived.json()["created"] == 1
    assert revived.json()["duplicates"] == 2
    back = await client.get(f"/api/v1/links/{gone['id']}", headers=user["headers"])
    assert back.status_code == 200
    assert back.json()["version"] == gone["version"] + 2  # deleted, then revived
    exported = await client.get("/api/v1/links/export?format=html", headers=user["headers"])
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    entries = {e.url: e for e in parse_netscape(exported.text)}
    react = entries["https://example.com/react"]
    assert react.title == "React & hooks"
    assert react.note == "Read the hooks part"
    assert sorted(react.tags) == ["Dev", "js", "react"]
    assert react.added_at is not None
    assert react.added_at.timestamp() == 1700000001
    # Re-importing the export into another account reproduces the links.
    from tests.fixtures.app import signup

    other = await signup(client, "other@example.com")
    copied = await client.post(
        "/api/v1/links/import", content=exported.content, headers=other["headers"]
    )
    assert copied.json()["created"] == 2
    as_json = json.loads(
        (await client.get("/api/v1/links/export?format=json", headers=user["headers"])).text
    )
    assert {r["url"] for r in as_json["links"]} == set(entries)
    rows = list(
        csv.DictReader(
            io.StringIO(
                (await client.get("/api/v1/links/export?format=csv", headers=user["headers"])).text
            )
        )
    )
    assert {r["url"] for r in rows} == set(entries)
    assert any(r["note"] == "Read the hooks part" for r in rows)


async def test_import_errors(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    bad = await client.post(
        "/api/v1/links/import", content=b"\x00\x01garbage", headers=user["headers"]
    )
    assert bad.status_code == 422
    empty_form = await client.post(
        "/api/v1/links/import", files={"other": ("x", b"y")}, headers=user["headers"]
    )
    assert empty_form.status_code == 400
    assert (await client.post("/api/v1/links/import", content=FIREFOX.encode())).status_code == 401


async def test_csv_export_neutralises_formulas(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    await client.post(
        "/api/v1/links",
        json={"url": "https://example.com/x", "note": "=HYPERLINK(1)"},
        headers=user["headers"],
    )
    text = (await client.get("/api/v1/links/export?format=csv", headers=user["headers"])).text
    assert "'=HYPERLINK(1)" in text
