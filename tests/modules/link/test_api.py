"""The Links API: save/dedupe, bad input, list/pagination, edit, delete, tags, cache."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.fixtures.app import signup

from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.modules.link.service import list_cache_key

from .conftest import Site


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No worker: these tests look at the API, not the pipeline (no outbound fetches)."""
    return settings.model_copy(update={"worker_in_process": False})


async def post(client: httpx.AsyncClient, user: dict[str, Any], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/links", json=body, headers=user["headers"])


async def test_save_answers_pending_then_duplicates(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site
) -> None:
    first = await post(client, user, url=site.page("article") + "?utm_source=x#top", source="share")
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "pending"
    assert body["duplicate"] is False
    assert body["source"] == "share"
    again = await post(client, user, url=site.page("article"))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == body["id"]
    # Another user saving the same URL gets their own link.
    other = await signup(client, "other@example.com")
    theirs = await post(client, other, url=site.page("article"))
    assert theirs.status_code == 201
    assert theirs.json()["id"] != body["id"]


async def test_save_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/links", json={"url": "https://example.com/"})
    assert response.status_code == 401


BAD_BODIES: list[dict[str, Any]] = [
    {"url": "not a url"},
    {"url": "javascript:alert(1)"},
    {"url": "file:///etc/passwd"},
    {"url": "https://example.com/" + "a" * 10_000},
    {"url": "https://example.com/", "unknown": 1},
    {"url": "https://example.com/", "tags": ["x"] * 31},
    {"url": "https://example.com/", "source": "bad source!"},
    {},
]


async def test_bad_input_is_refused_clearly(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    for body in BAD_BODIES:
        response = await client.post("/api/v1/links", json=body, headers=user["headers"])
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]
    listing = await client.get("/api/v1/links", headers=user["headers"])
    assert listing.json()["total"] == 0


async def test_malformed_json(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    response = await client.post(
        "/api/v1/links",
        content=b"{not json",
        headers={**user["headers"], "content-type": "application/json"},
    )
    assert response.status_code == 400


async def test_get_patch_delete_and_ownership(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site
) -> None:
    link = (await post(client, user, url=site.page("plain"), tags=["Garden"])).json()
    url = f"/api/v1/links/{link['id']}"
    patched = await client.patch(
        url,
        json={
            "note": "read later",
            "is_favorite": True,
            "tags": ["garden", "summer"],
            "version": 1,
        },
        headers=user["headers"],
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["note"] == "read later"
    assert body["is_favorite"] is True
    assert body["version"] == 2
    assert sorted(t["name"] for t in body["tags"]) == ["Garden", "summer"]
    stale = await client.patch(url, json={"note": "x", "version": 1}, headers=user["headers"])
    assert stale.status_code == 409
    other = await signup(client, "mallory@example.com")
    assert (await client.get(url, headers=other["headers"])).status_code == 404
    assert (
        await client.patch(url, json={"note": "x"}, headers=other["headers"])
    ).status_code == 404
    assert (await client.delete(url, headers=other["headers"])).status_code == 404
    assert (await client.delete(url, headers=user["headers"])).status_code == 204
    assert (await client.get(url, headers=user["headers"])).status_code == 404
    assert (
        await client.get("/api/v1/links/not-a-uuid", headers=user["headers"])
    ).status_code == 422
    # Saving it again revives the same link.
    again = await post(client, user, url=site.page("plain"))
    assert again.status_code == 201
    assert again.json()["id"] == link["id"]


async def test_list_pages_cursor_tag_and_status(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    ids = []
    for i in range(5):
        tags = ["even"] if i % 2 == 0 else []
        ids.append(
            (await post(client, user, url=f"https://example.com/p{i}", tags=tags)).json()["id"]
        )
    newest_first = list(reversed(ids))
    page1 = (await client.get("/api/v1/links?page=1&limit=2", headers=user["headers"])).json()
    page2 = (await client.get("/api/v1/links?page=2&limit=2", headers=user["headers"])).json()
    assert page1["total"] == 5
    assert [i["id"] for i in page1["items"] + page2["items"]] == newest_first[:4]
    walked: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/api/v1/links", params=params, headers=user["headers"])).json()
        walked += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert walked == newest_first
    tagged = (await client.get("/api/v1/links?tag=EVEN", headers=user["headers"])).json()
    assert {i["id"] for i in tagged["items"]} == {ids[0], ids[2], ids[4]}
    by_tag = (await client.get("/api/v1/tags/even/links", headers=user["headers"])).json()
    assert by_tag["total"] == 3
    filtered = await client.get("/api/v1/links?status=failed", headers=user["headers"])
    assert filtered.status_code == 200
    bad = await client.get("/api/v1/links?status=nope", headers=user["headers"])
    assert bad.status_code == 422
    assert (
        await client.get("/api/v1/links?cursor=@@@", headers=user["headers"])
    ).status_code == 400
    assert (
        await client.get("/api/v1/links?limit=1000", headers=user["headers"])
    ).status_code == 422


async def test_list_cache_is_filled_and_invalidated(
    client: httpx.AsyncClient, user: dict[str, Any], platform: Platform
) -> None:
    me = (await client.get("/api/v1/auth/me", headers=user["headers"])).json()
    key = list_cache_key(me["id"], 1, None, 20)
    first = await post(client, user, url="https://example.com/one")
    await client.get("/api/v1/links?page=1&limit=20", headers=user["headers"])
    stored = await platform.cache.get(key)
    assert stored is not None
    # A cached page is served from the cache ...
    await platform.cache.set(key, stored.replace("example.com/one", "cached!"))
    cached = (await client.get("/api/v1/links?page=1&limit=20", headers=user["headers"])).json()
    assert cached["items"][0]["url"] == "https://cached!"
    # ... until any change to the user's links drops it.
    await client.patch(
        f"/api/v1/links/{first.json()['id']}", json={"note": "n"}, headers=user["headers"]
    )
    assert await platform.cache.get(key) is None
    fresh = (await client.get("/api/v1/links?page=1&limit=20", headers=user["headers"])).json()
    assert fresh["items"][0]["note"] == "n"
    await post(client, user, url="https://example.com/two")
    assert await platform.cache.get(key) is None


async def test_tags_rename_and_merge(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    a = (await post(client, user, url="https://example.com/a", tags=["js"])).json()
    b = (await post(client, user, url="https://example.com/b", tags=["javascript", "web"])).json()
    renamed = await client.patch(
        "/api/v1/tags/web", json={"name": "Web Dev"}, headers=user["headers"]
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Web Dev"
    clash = await client.patch(
        "/api/v1/tags/js", json={"name": "JavaScript"}, headers=user["headers"]
    )
    assert clash.status_code == 409
    merged = await client.post(
        "/api/v1/tags/js/merge", json={"into": "javascript"}, headers=user["headers"]
    )
    assert merged.status_code == 200
    assert merged.json()["count"] == 2
    names = {t["name"] for t in (await client.get("/api/v1/tags", headers=user["headers"])).json()}
    assert "js" not in names
    assert {"javascript", "Web Dev"} <= names
    for link in (a, b):
        body = (await client.get(f"/api/v1/links/{link['id']}", headers=user["headers"])).json()
        assert "javascript" in {t["name"] for t in body["tags"]}
    assert (
        await client.post("/api/v1/tags/nope/merge", json={"into": "x"}, headers=user["headers"])
    ).status_code == 404


async def test_every_pipeline_step_invalidates_the_cached_pages(
    client: httpx.AsyncClient, user: dict[str, Any], platform: Platform, site: Site
) -> None:
    import uuid

    from townhall.modules.link import pipeline

    me = (await client.get("/api/v1/auth/me", headers=user["headers"])).json()
    key = list_cache_key(me["id"], 1, None, 20)
    link_id = (await post(client, user, url=site.page("article"))).json()["id"]

    async def listed() -> dict[str, Any]:
        body = (await client.get("/api/v1/links?page=1&limit=20", headers=user["headers"])).json()
        item: dict[str, Any] = body["items"][0]
        return item

    assert (await listed())["status"] == "pending"
    steps = [
        (pipeline.scrape, "scraping_completed"),
        (pipeline.thumbnail, "thumbnail_completed"),
        (pipeline.tag, "completed"),
    ]
    for step, status in steps:
        assert await platform.cache.get(key) is not None
        await step(platform, uuid.UUID(link_id))
        assert await platform.cache.get(key) is None, status
        item = await listed()
        assert item["status"] == status
    assert item["title"] == "PostgreSQL indexes explained"
    # Signed thumbnail URLs are valid one hour (seed: pre-signed, 1 h).
    from urllib.parse import parse_qs, urlsplit

    expires = int(parse_qs(urlsplit(item["thumbnails"]["small"]).query)["exp"][0])
    assert abs(expires - (time.time() + 3600)) < 120
    await pipeline.count_failure(platform, uuid.UUID(link_id), "boom")
    assert await platform.cache.get(key) is None
    assert (await listed())["retry_count"] == 1


async def test_saves_past_the_per_user_limit_get_429_and_store_nothing(
    client: httpx.AsyncClient, user: dict[str, Any], platform: Platform, site: Site
) -> None:
    platform.settings.link_saves_per_minute = 3
    for n in range(3):
        assert (await post(client, user, url=site.page(f"limit-{n}"))).status_code == 201
    refused = await post(client, user, url=site.page("limit-over"))
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    listed = await client.get("/api/v1/links", params={"q": "limit-over"}, headers=user["headers"])
    assert all("limit-over" not in item["url"] for item in listed.json()["items"])
    other = await signup(client, "other-limit@example.com")  # the limit is per user
    assert (await post(client, other, url=site.page("limit-over"))).status_code == 201
