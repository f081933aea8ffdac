"""Search over titles and flushed page text, limited to pages the caller can read."""

from __future__ import annotations

import httpx
import pycrdt
from fastapi import FastAPI
from tests.modules.doc.conftest import Team, make_page

from townhall.modules.doc.content import FRAGMENT, Node, Span, build_update

API = "/api/v1/doc"


def paragraph_update(text: str) -> bytes:
    return build_update([Node("paragraph", {}, [Span(text)])])


async def save(client: httpx.AsyncClient, team: Team, page_id: str, update: bytes) -> None:
    response = await client.post(
        f"/api/v1/doc/save?id={page_id.replace('-', '')}",
        content=update,
        headers={**team.headers("editor"), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text


async def titles(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    response = await client.get(f"{API}/search", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    return [hit["title"] for hit in response.json()]


async def test_text_is_searchable_after_the_flush(
    client: httpx.AsyncClient, app: FastAPI, team: Team
) -> None:
    h = team.headers("viewer")
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    first = build_update([Node("paragraph", {}, [Span("Quarterly budget for the zeppelin")])], doc)
    await save(client, team, team.page_id, first)
    assert await titles(client, h, "zeppelin") == []  # buffered, not flushed yet
    report = await app.state.collab.flush()
    assert report.documents == 1
    assert await titles(client, h, "zeppelin") == ["Home"]
    hits = (await client.get(f"{API}/search", params={"q": "zeppelin"}, headers=h)).json()
    assert "zeppelin" in hits[0]["snippet"]
    assert await titles(client, h, "budget zeppelin") == ["Home"]  # every term must match
    assert await titles(client, h, "budget submarine") == []
    # A later edit replaces the indexed text.
    text = doc.get(FRAGMENT, type=pycrdt.XmlFragment).children[0].children[0]
    before = doc.get_state()
    del text[0 : len(str(text))]
    text.insert(0, "Submarine budget")
    await save(client, team, team.page_id, doc.get_update(before))
    await app.state.collab.flush()
    assert await titles(client, h, "zeppelin") == []
    assert await titles(client, h, "SUBMARINE") == ["Home"]


async def test_search_respects_access(client: httpx.AsyncClient, app: FastAPI, team: Team) -> None:
    secret = await make_page(client, team.headers("owner"), team.workspace_id, "Secret plans")
    await save(client, team, secret, paragraph_update("the walrus key"))
    await app.state.collab.flush()
    assert await titles(client, team.headers("editor"), "walrus") == ["Secret plans"]
    assert await titles(client, team.headers("outsider"), "walrus") == []
    await client.post(
        f"{API}/pages/{secret}/shares",
        json={"email": "outsider@example.com"},
        headers=team.headers("owner"),
    )
    assert await titles(client, team.headers("outsider"), "walrus") == ["Secret plans"]
    await client.post(f"{API}/pages/{secret}/archive", headers=team.headers("owner"))
    assert await titles(client, team.headers("editor"), "walrus") == []
    assert await titles(client, team.headers("outsider"), "walrus") == []


async def test_search_matches_titles_and_escapes_wildcards(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.headers("owner")
    await make_page(client, h, team.workspace_id, "100% done_list")
    await make_page(client, h, team.workspace_id, "1000 things")
    assert await titles(client, h, "100%") == ["100% done_list"]
    assert await titles(client, h, "done_") == ["100% done_list"]
    assert await titles(client, h, "회의록") == []
    await make_page(client, h, team.workspace_id, "주간 회의록")
    assert await titles(client, h, "회의록") == ["주간 회의록"]
    missing = await client.get(f"{API}/search", headers=h)
    assert missing.status_code == 422
