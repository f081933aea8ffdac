"""Netscape bookmark files (every browser, Pocket, Raindrop) in and out; JSON and CSV out."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from townhall.core.errors import Unprocessable
from townhall.modules.link.schemas import LinkOut

# A folder name or link title ends at its closing tag and never runs into the next entry, so an
# unclosed <H3> or <A> costs the text up to the next entry, not the rest of the file (a file of
# unclosed tags would otherwise take quadratic time).
_NOT_NEXT = r"(?:(?!</?(?:a|h3|dl|dt)\b).)"
_TOKEN = re.compile(
    rf"<h3\b[^<>]*>(?P<folder>{_NOT_NEXT}*?)</h3>"
    rf"|<a\s(?P<attrs>[^<>]*)>(?P<title>{_NOT_NEXT}*?)</a>"
    r"|<dd>(?P<dd>[^<]*)"
    r"|(?P<open><dl\b[^<>]*>)"
    r"|(?P<close></dl>)",
    re.I | re.S,
)
_ATTR = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
MAX_ENTRIES = 100_000


@dataclass
class Bookmark:
    """One entry of a bookmark file."""

    url: str
    title: str = ""
    note: str = ""
    tags: list[str] = field(default_factory=list)
    added_at: datetime | None = None


def _timestamp(value: str | None) -> datetime | None:
    if not value or not value.strip().isdigit():
        return None
    seconds = int(value.strip())
    if seconds > 10**11:  # some exporters write milliseconds or microseconds
        seconds //= 1000 if seconds < 10**14 else 1_000_000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_netscape(text: str) -> list[Bookmark]:
    """Entries of a Netscape bookmark file; folders become tags, <DD> becomes the note."""
    if "<a" not in text.lower() or (
        "netscape-bookmark-file" not in text.lower() and "<dl" not in text.lower()
    ):
        raise Unprocessable("not a Netscape bookmark file (expected <DL> lists of <A HREF> links)")
    folders: list[str] = []
    pending_folder: str | None = None
    entries: list[Bookmark] = []
    last: Bookmark | None = None
    for match in _TOKEN.finditer(text):
        if match.group("folder") is not None:
            pending_folder = html.unescape(re.sub(r"<[^>]+>", "", match.group("folder"))).strip()
            last = None
        elif match.group("open") is not None:
            folders.append(pending_folder or "")
            pending_folder = None
        elif match.group("close") is not None:
            if folders:
                folders.pop()
        elif match.group("dd") is not None:
            if last is not None:
                last.note = html.unescape(match.group("dd")).strip()[:20_000]
        else:
            attrs = {
                m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                for m in _ATTR.finditer(match.group("attrs"))
            }
            href = attrs.get("href", "").strip()
            if not href:
                last = None
                continue
            tags = [t.strip() for t in attrs.get("tags", "").split(",") if t.strip()]
            tags += [
                f
                for f in folders
                if f and f.lower() not in ("bookmarks bar", "bookmarks", "toolbar")
            ]
            title = html.unescape(re.sub(r"<[^>]+>", "", match.group("title"))).strip()
            last = Bookmark(
                url=href,
                title=title[:1000],
                tags=tags[:30],
                added_at=_timestamp(attrs.get("add_date")),
            )
            entries.append(last)
            if len(entries) > MAX_ENTRIES:
                raise Unprocessable(f"bookmark file has more than {MAX_ENTRIES} entries")
    if not entries:
        raise Unprocessable("the bookmark file contains no links")
    return entries


def to_netscape(links: Sequence[LinkOut]) -> str:
    """A Netscape bookmark file browsers import, with tags and notes."""
    lines = [
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>",
        "<!-- This is an automatically generated file.",
        "     It will be read and overwritten. DO NOT EDIT! -->",
        '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">',
        "<TITLE>Bookmarks</TITLE>",
        "<H1>Bookmarks</H1>",
        "<DL><p>",
    ]
    for link in links:
        attrs = [
            f'HREF="{html.escape(link.url, quote=True)}"',
            f'ADD_DATE="{int(link.created_at.timestamp())}"',
            f'LAST_MODIFIED="{int(link.updated_at.timestamp())}"',
        ]
        tags = [t.name for t in link.tags if not t.is_auto_generated]
        if tags:
            attrs.append(f'TAGS="{html.escape(",".join(tags), quote=True)}"')
        lines.append(f"    <DT><A {' '.join(attrs)}>{html.escape(link.title or link.url)}</A>")
        if link.note:
            lines.append(f"    <DD>{html.escape(link.note)}")
    lines.append("</DL><p>")
    return "\n".join(lines) + "\n"


def _record(link: LinkOut) -> dict[str, object]:
    return {
        "url": link.url,
        "title": link.title,
        "description": link.description,
        "note": link.note,
        "tags": [t.name for t in link.tags if not t.is_auto_generated],
        "ai_tags": [t.name for t in link.tags if t.is_auto_generated],
        "status": link.status,
        "is_read": link.is_read,
        "is_archived": link.is_archived,
        "is_favorite": link.is_favorite,
        "created_at": link.created_at.isoformat(),
        "updated_at": link.updated_at.isoformat(),
    }


def to_json(links: Sequence[LinkOut]) -> str:
    return json.dumps({"links": [_record(link) for link in links]}, ensure_ascii=False, indent=1)


def to_csv(links: Sequence[LinkOut]) -> str:
    out = io.StringIO()
    columns = ["url", "title", "note", "tags", "ai_tags", "status", "created_at"]
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for link in links:
        row = _record(link)
        row["tags"] = ",".join(row["tags"])  # type: ignore[arg-type]
        row["ai_tags"] = ",".join(row["ai_tags"])  # type: ignore[arg-type]
        # A leading =, +, - or @ makes spreadsheets evaluate the cell: neutralise it.
        for key in ("title", "note", "tags"):
            value = row.get(key)
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
                row[key] = "'" + value
        writer.writerow(row)
    return out.getvalue()
