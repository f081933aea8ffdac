"""Search (English, Korean, ranked) and offline sync (pull with tombstones, push with conflicts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from townhall.core.config import Settings
from townhall.core.platform import Platform
from townhall.modules.link import service as link_service
from townhall.modules.link.models import Link


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_in_process": False})


async def save(client: httpx.AsyncClient, user: dict[str, Any], url: str, **body: Any) -> str:
    response = await client.post(
        "/api/v1/links", json={"url": url, **body}, headers=user["headers"]
    )
    assert response.status_code == 201, response.text
    link_id: str = response.json()["id"]
    return link_id


async def search(client: httpx.AsyncClient, user: dict[str, Any], q: str) -> list[str]:
    response = await client.get("/api/v1/search", params={"q": q}, headers=user["headers"])
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_search_english_korean_and_ranking(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    hooks = await save(client, user, "https://example.com/1", title="React hooks tutorial")
    mention = await save(
        client,
        user,
        "https://example.com/2",
        title="Weekly links",
        note="something about react and hooks",
    )
    korean = await save(client, user, "https://example.com/3", title="리액트훅 완벽 가이드")
    tagged = await save(client, user, "https://example.com/4", title="Sourdough", tags=["baking"])
    await save(client, user, "https://example.com/5", title="Unrelated page")
    found = await search(client, user, "React hooks")
    assert set(found) == {hooks, mention}
    assert found[0] == hooks  # a title match outranks a note match
    assert await search(client, user, "리액트") == [korean]  # the start of a Korean compound
    assert await search(client, user, "훅") == [korean]  # and its middle
    assert await search(client, user, "baking") == [tagged]  # tags are searched
    assert await search(client, user, "hook") == [hooks, mention] or set(
        await search(client, user, "hook")
    ) == {hooks, mention}
    assert await search(client, user, "zebra") == []
    # Punctuation-only and overlong queries are clear errors, not 500s.
    assert (
        await client.get("/api/v1/search", params={"q": "!!!"}, headers=user["headers"])
    ).json()["items"] == []
    too_long = await client.get("/api/v1/search", params={"q": "x" * 600}, headers=user["headers"])
    assert too_long.status_code == 422
    # Other users' links never show up.
    from tests.fixtures.app import signup

    other = await signup(client, "other@example.com")
    assert await search(client, other, "react") == []
    # Deleted links leave the results.
    await client.delete(f"/api/v1/links/{hooks}", headers=user["headers"])
    assert await search(client, user, "React hooks") == [mention]


async def test_list_q_filter(client: httpx.AsyncClient, user: dict[str, Any]) -> None:
    a = await save(client, user, "https://example.com/a", title="PostgreSQL tips")
    await save(client, user, "https://example.com/b", title="Gardening")
    body = (await client.get("/api/v1/links?q=postgres", headers=user["headers"])).json()
    assert [i["id"] for i in body["items"]] == [a]


async def test_pull_returns_changes_and_tombstones(
    client: httpx.AsyncClient, user: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the overlap a pull right after another sends nothing again.
    monkeypatch.setattr(link_service, "PULL_OVERLAP", timedelta(0))
    first = await save(client, user, "https://example.com/a")
    gone = await save(client, user, "https://example.com/b")
    full = (await client.get("/api/v1/sync/pull", headers=user["headers"])).json()
    assert {link["id"] for link in full["links"]} == {first, gone}
    assert full["deleted"] == []
    since = full["sync_timestamp"]
    await asyncio.sleep(0.01)
    nothing = (
        await client.get("/api/v1/sync/pull", params={"since": since}, headers=user["headers"])
    ).json()
    assert nothing["links"] == []
    assert nothing["deleted"] == []
    await client.patch(f"/api/v1/links/{first}", json={"note": "changed"}, headers=user["headers"])
    await client.delete(f"/api/v1/links/{gone}", headers=user["headers"])
    changes = (
        await client.get("/api/v1/sync/pull", params={"since": since}, headers=user["headers"])
    ).json()
    assert [link["id"] for link in changes["links"]] == [first]
    assert changes["links"][0]["note"] == "changed"
    assert [t["id"] for t in changes["deleted"]] == [gone]
    assert changes["sync_timestamp"] > since
    by_cursor = (
        await client.get(
            "/api/v1/sync/pull", params={"since": full["cursor"]}, headers=user["headers"]
        )
    ).json()
    assert [link["id"] for link in by_cursor["links"]] == [first]
    assert [t["id"] for t in by_cursor["deleted"]] == [gone]
    for bad_since in ("yesterday", "WyJub3BlIl0"):
        bad = await client.get(
            "/api/v1/sync/pull", params={"since": bad_since}, headers=user["headers"]
        )
        assert bad.status_code == 422, bad_since


async def pull_all(
    client: httpx.AsyncClient, user: dict[str, Any], since: str | None
) -> tuple[list[str], str]:
    """Follow `cursor` until has_more is false; the ids received and the final cursor."""
    seen: list[str] = []
    while True:
        params = {"since": since} if since else {}
        body = (
            await client.get("/api/v1/sync/pull", params=params, headers=user["headers"])
        ).json()
        seen += [link["id"] for link in body["links"]] + [t["id"] for t in body["deleted"]]
        since = body["cursor"]
        if not body["has_more"]:
            return seen, body["cursor"]


async def test_pull_pages_keep_links_that_share_a_timestamp(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [await save(client, user, f"https://example.com/tie{i}") for i in range(5)]
    # Five links changed in the same instant, pages of two: a page boundary falls inside the tie.
    same = datetime(2030, 1, 1, tzinfo=UTC)
    async with platform.db.session() as session:
        await session.execute(update(Link).values(updated_at=same))
    monkeypatch.setattr(link_service, "PULL_LIMIT", 2)
    start = (same - timedelta(seconds=1)).isoformat()
    seen, _ = await pull_all(client, user, start)
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)  # each once


async def test_pull_does_not_lose_a_change_that_commits_after_it(
    client: httpx.AsyncClient, user: dict[str, Any], platform: Platform
) -> None:
    link_id = await save(client, user, "https://example.com/late")
    body = (await client.get("/api/v1/sync/pull", headers=user["headers"])).json()
    started = datetime.fromisoformat(body["sync_timestamp"]) + link_service.PULL_OVERLAP
    # An edit stamped just before that pull began but committed after it read the table.
    async with platform.db.session() as session:
        await session.execute(
            update(Link).values(note="late", updated_at=started - timedelta(milliseconds=300))
        )
    for since in (body["cursor"], body["sync_timestamp"]):
        again = (
            await client.get("/api/v1/sync/pull", params={"since": since}, headers=user["headers"])
        ).json()
        assert [(x["id"], x["note"]) for x in again["links"]] == [(link_id, "late")]


async def test_push_applies_changes_and_reports_conflicts(
    client: httpx.AsyncClient, user: dict[str, Any]
) -> None:
    link_id = await save(client, user, "https://example.com/a", note="server note")
    link = (await client.get(f"/api/v1/links/{link_id}", headers=user["headers"])).json()
    now = datetime.now(UTC)
    push = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                # The seed's example: a newer offline note update wins.
                {
                    "link_id": link_id,
                    "type": "note_update",
                    "content": "offline note",
                    "timestamp": (now + timedelta(seconds=1)).isoformat(),
                },
                {
                    "type": "create",
                    "url": "https://example.com/offline",
                    "client_id": "c1",
                    "tags": ["later"],
                    "timestamp": now.isoformat(),
                },
                {
                    "type": "update",
                    "link_id": link_id,
                    "fields": {"user_id": "x"},
                    "timestamp": now.isoformat(),
                },
            ]
        },
        headers=user["headers"],
    )
    assert push.status_code == 200, push.text
    results = push.json()["results"]
    assert results[0]["status"] == "success"
    assert results[0]["new_version"] == link["version"] + 1
    assert results[1]["status"] == "success"
    assert results[1]["client_id"] == "c1"
    assert results[2]["status"] == "error"
    assert push.json()["status"] == "partial"
    # A change made offline before the server's last edit is a conflict, reported not applied.
    stale = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                {
                    "link_id": link_id,
                    "type": "note_update",
                    "content": "old offline edit",
                    "timestamp": (now - timedelta(hours=1)).isoformat(),
                },
                {
                    "link_id": link_id,
                    "type": "update",
                    "fields": {"is_read": True},
                    "base_version": link["version"],
                    "timestamp": now.isoformat(),
                },
            ]
        },
        headers=user["headers"],
    )
    conflict, versioned = stale.json()["results"]
    assert conflict["status"] == "conflict"
    assert conflict["server"]["note"] == "offline note"
    assert versioned["status"] == "conflict"  # base_version is behind
    current = (await client.get(f"/api/v1/links/{link_id}", headers=user["headers"])).json()
    assert current["note"] == "offline note"
    assert current["is_read"] is False
    # The client may resolve by forcing its version after showing the conflict.
    forced = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                {
                    "link_id": link_id,
                    "type": "note_update",
                    "content": "merged",
                    "timestamp": now.isoformat(),
                    "force": True,
                }
            ]
        },
        headers=user["headers"],
    )
    assert forced.json()["results"][0]["status"] == "success"
    wrong_type = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                {
                    "link_id": link_id,
                    "type": "update",
                    "fields": {"is_read": "maybe"},
                    "timestamp": now.isoformat(),
                    "force": True,
                }
            ]
        },
        headers=user["headers"],
    )
    assert wrong_type.status_code == 200
    assert wrong_type.json()["results"][0]["status"] == "error"
    # Deletes via push become tombstones.
    deleted = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                {
                    "link_id": link_id,
                    "type": "delete",
                    "timestamp": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
                }
            ]
        },
        headers=user["headers"],
    )
    assert deleted.json()["results"][0]["status"] == "success"
    assert (
        await client.get(f"/api/v1/links/{link_id}", headers=user["headers"])
    ).status_code == 404
    unknown = await client.post(
        "/api/v1/sync/push",
        json={
            "changes": [
                {
                    "link_id": "00000000-0000-0000-0000-000000000000",
                    "type": "delete",
                    "timestamp": now.isoformat(),
                }
            ]
        },
        headers=user["headers"],
    )
    assert unknown.json()["results"][0]["status"] == "error"
    malformed = await client.post(
        "/api/v1/sync/push", json={"changes": [{"type": "explode"}]}, headers=user["headers"]
    )
    assert malformed.status_code == 422
