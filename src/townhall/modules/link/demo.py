"""Demo data: a few links of alice@example.com to pages townhall serves itself (works offline)."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from PIL import Image, ImageDraw

from townhall.core.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

DEMO_PREFIX = "/links/demo-site"
router = APIRouter(prefix=DEMO_PREFIX, include_in_schema=False)

PAGES: dict[str, str] = {
    "react-hooks": """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>React hooks in depth</title>
<meta property="og:title" content="React Hooks: a practical tutorial">
<meta property="og:description" content="Learn useState, useEffect and custom hooks step by step.">
<meta property="og:image" content="{base}/img/react.png">
<meta property="og:site_name" content="Demo Dev Blog">
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"TechArticle",
"headline":"React Hooks: a practical tutorial","author":{{"@type":"Person","name":"Dana Park"}},
"datePublished":"2025-10-05T09:00:00Z"}}</script></head><body><article><h1>React hooks</h1>
<p>This tutorial explains React hooks for JavaScript developers. Hooks such as useState and
useEffect let function components keep state.
리액트훅 튜토리얼: 리액트 개발자를 위한 안내서입니다.</p>
<p>We build a custom hook for fetching data and discuss performance of effects in React apps.</p>
</article></body></html>""",
    "sourdough": """<!doctype html><html><head><meta charset="utf-8">
<title>Sourdough at home</title>
<meta name="description" content="A beginner recipe for a crusty sourdough loaf.">
<meta name="twitter:image" content="{base}/img/bread.png">
<script type="application/ld+json">{{"@type":"Recipe","name":"Easy sourdough bread",
"author":"Min Lee","description":"A beginner recipe for a crusty sourdough loaf."}}</script>
</head><body><h1>Easy sourdough</h1><p>Mix flour, water and starter. The recipe lists the
ingredients and every step of baking bread in a home kitchen oven.</p></body></html>""",
    "seoul-trip": """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<title>서울 여행 가이드</title><meta property="og:title" content="서울 여행 가이드: 3일 코스">
<meta property="og:description" content="경복궁, 북촌, 한강까지 여행 코스를 소개합니다.">
<meta property="og:image" content="{base}/img/seoul.png"></head><body><p>서울 여행 3일 코스.
경복궁과 북촌 한옥마을, 한강 공원을 걷는 여행입니다.</p></body></html>""",
    "plain": """<html><body><p>A page without any metadata at all: only some text about
databases, PostgreSQL indexes and query plans.</p></body></html>""",
}
COLOURS = {"react": (97, 218, 251), "bread": (222, 184, 135), "seoul": (239, 68, 68)}


@lru_cache(maxsize=8)
def _image(name: str) -> bytes:
    image = Image.new("RGB", (800, 500), COLOURS[name])
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 100, 550, 400), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@router.get("/img/{name}.png")
async def demo_image(name: str) -> Response:
    if name not in COLOURS:
        raise NotFound("no such demo image")
    return Response(_image(name), media_type="image/png")


@router.get("/{page}")
async def demo_page(page: str, request: Request) -> HTMLResponse:
    if page not in PAGES:
        raise NotFound("no such demo page")
    # This app's own settings (not the process environment's): image URLs point back at it.
    platform: Platform = request.app.state.platform
    base = platform.settings.base_url.rstrip("/") + DEMO_PREFIX
    return HTMLResponse(PAGES[page].format(base=base))


def is_demo_url(base_url: str, url: str) -> bool:
    """True for a page or image of this server's demo site (and nothing else on the server)."""
    base, parts = urlsplit(base_url), urlsplit(url)
    if (parts.scheme.lower(), parts.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return False
    path = unquote(parts.path)
    # No dot segments or backslashes: the HTTP client would resolve them to other paths.
    if "\\" in path or any(seg in (".", "..") for seg in path.split("/")):
        return False
    return path.startswith(base.path.rstrip("/") + DEMO_PREFIX + "/")


async def load(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """Save the demo pages for Alice; the pipeline scrapes them from this server."""
    from townhall.modules.link.schemas import LinkCreate
    from townhall.modules.link.service import LinkService

    alice = users.get("alice@example.com")
    if alice is None:
        return
    service = LinkService(session, platform)
    base = platform.settings.base_url.rstrip("/") + DEMO_PREFIX
    for page, tags in (("react-hooks", ["react"]), ("sourdough", []), ("seoul-trip", ["여행"])):
        await service.save(
            alice.id, LinkCreate(url=f"{base}/{page}", source="demo", tags=tags or None)
        )
