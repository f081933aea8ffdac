"""Page metadata: OpenGraph, Twitter cards, JSON-LD, <title>/meta fallbacks, main text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

MAX_TEXT = 50_000
_CHALLENGE = re.compile(
    r"just a moment|attention required|are you a robot|captcha|access denied"
    r"|enable javascript and cookies",
    re.I,
)


@dataclass
class PageMeta:
    """What the scraper keeps of a page."""

    title: str | None = None
    description: str | None = None
    image: str | None = None
    author: str | None = None
    site_name: str | None = None
    published_at: datetime | None = None
    text: str | None = None
    media_type: str | None = None
    oembed_url: str | None = None

    def is_challenge(self) -> bool:
        """A Cloudflare/CAPTCHA/login wall: its metadata is not the page's."""
        return bool(self.title and _CHALLENGE.search(self.title)) and not self.description


def _clean(value: Any, limit: int = 2000) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = next((v for v in value if v), None)
        if value is None:
            return None
    if isinstance(value, dict):
        value = value.get("name") or value.get("url") or value.get("@id")
    text = " ".join(str(value).split())
    return text[:limit] or None


def parse_date(value: Any) -> datetime | None:
    text = _clean(value, 64)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        match = re.match(r"(\d{4})-(\d{2})-(\d{2})", text)
        if not match:
            return None
        try:
            parsed = datetime(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_ld(tree: HTMLParser) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text() or "")
        except (json.JSONDecodeError, ValueError):
            continue
        stack = [data]
        while stack and len(found) < 50:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                if "@graph" in item:
                    stack.append(item["@graph"])
                found.append(item)
    return found


_LD_TYPES = (
    "article",
    "newsarticle",
    "blogposting",
    "videoobject",
    "webpage",
    "recipe",
    "techarticle",
    "product",
)


def _ld_main(items: list[dict[str, Any]]) -> dict[str, Any]:
    for wanted in _LD_TYPES:
        for item in items:
            kinds = item.get("@type")
            names = (
                [kinds] if isinstance(kinds, str) else (kinds if isinstance(kinds, list) else [])
            )
            if any(str(k).lower() == wanted for k in names):
                return item
    return {}


def _attr(node: Node | None, name: str) -> str | None:
    if node is None:
        return None
    value = node.attributes.get(name)
    return value.strip() if value else None


def _join(base_url: str, url: str | None) -> str | None:
    """`url` made absolute; None when it cannot be (e.g. "http://[x", a broken IPv6 host)."""
    if not url:
        return None
    try:
        return urljoin(base_url, url)
    except ValueError:
        return None


def extract(html: str, base_url: str) -> PageMeta:
    """Metadata of an HTML page (broken HTML is fine: lexbor repairs it)."""
    tree = HTMLParser(html)
    meta: dict[str, str] = {}
    for node in tree.css("meta"):
        key = (
            node.attributes.get("property")
            or node.attributes.get("name")
            or node.attributes.get("itemprop")
            or ""
        )
        content = node.attributes.get("content")
        if key and content and key.lower() not in meta:
            meta[key.lower()] = content
    ld = _ld_main(_json_ld(tree))
    title_node = tree.css_first("title")
    h1 = tree.css_first("h1")

    def first(*values: Any) -> str | None:
        for value in values:
            cleaned = _clean(value)
            if cleaned:
                return cleaned
        return None

    image = first(
        meta.get("og:image:secure_url"),
        meta.get("og:image"),
        meta.get("twitter:image"),
        meta.get("twitter:image:src"),
        ld.get("image"),
        ld.get("thumbnailUrl"),
        _attr(tree.css_first('link[rel="image_src"]'), "href"),
    )
    og_type = (meta.get("og:type") or "").lower()
    ld_type = str(ld.get("@type") or "").lower()
    media_type = (
        "video"
        if ("video" in og_type or "video" in ld_type or meta.get("og:video"))
        else (
            "article"
            if og_type == "article" or "article" in ld_type or "posting" in ld_type
            else (og_type or None)
        )
    )
    oembed = tree.css_first('link[type="application/json+oembed"]')
    return PageMeta(
        title=first(
            meta.get("og:title"),
            meta.get("twitter:title"),
            ld.get("headline"),
            ld.get("name"),
            title_node.text() if title_node else None,
            h1.text() if h1 else None,
        ),
        description=first(
            meta.get("og:description"),
            meta.get("twitter:description"),
            meta.get("description"),
            ld.get("description"),
        ),
        image=_join(base_url, image),
        author=first(
            ld.get("author"),
            meta.get("author"),
            meta.get("article:author"),
            meta.get("twitter:creator"),
            ld.get("creator"),
        ),
        site_name=first(
            meta.get("og:site_name"), meta.get("application-name"), ld.get("publisher")
        ),
        published_at=parse_date(
            ld.get("datePublished")
            or meta.get("article:published_time")
            or meta.get("date")
            or ld.get("uploadDate")
        ),
        media_type=(media_type or "")[:40] or None,
        oembed_url=_join(base_url, _attr(oembed, "href")),
    )


def main_text(html: str) -> str | None:
    """The article body (trafilatura), or the visible text when it finds none."""
    import trafilatura

    try:
        text = trafilatura.extract(
            html, include_comments=False, include_tables=False, favor_recall=True
        )
    except Exception:  # trafilatura raises many things on hostile HTML; the text is optional
        text = None
    if not text:
        tree = HTMLParser(html)
        for node in tree.css("script, style, noscript, nav, footer, header"):
            node.decompose()
        body = tree.body
        text = body.text(separator=" ") if body else None
    if not text:
        return None
    return " ".join(text.split())[:MAX_TEXT] or None


def from_oembed(data: dict[str, Any]) -> PageMeta:
    """Metadata from an oEmbed answer (YouTube and others)."""
    kind = _clean(data.get("type"), 40)
    return PageMeta(
        title=_clean(data.get("title")),
        author=_clean(data.get("author_name"), 300),
        site_name=_clean(data.get("provider_name"), 300),
        image=_clean(data.get("thumbnail_url")),
        media_type=kind,
        description=_clean(data.get("description")),
    )
