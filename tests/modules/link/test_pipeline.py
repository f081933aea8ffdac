"""The scrape -> thumbnail -> tag pipeline end to end on the embedded broker."""

from __future__ import annotations

import asyncio
import inspect
import io
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from townhall.core.cache import LockHeld, lock
from townhall.core.jobs.models import DeadLetter
from townhall.core.platform import Platform
from townhall.modules.link import pipeline
from townhall.modules.link import tasks as link_tasks
from townhall.modules.link.models import StoredImage
from townhall.modules.link.urls import normalize_url, url_hash

from .conftest import Site, WaitFn

Check = Callable[..., Awaitable[None]]


async def run_together(checks: list[Check], **fixtures: Any) -> None:
    """Run independent scenarios concurrently on one app (one start-up, parallel pipelines)."""
    calls = []
    for check in checks:
        wanted = inspect.signature(check).parameters
        calls.append(check(**{k: v for k, v in fixtures.items() if k in wanted}))
    await asyncio.gather(*calls)


async def save(client: httpx.AsyncClient, user: dict[str, Any], url: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/links", json={"url": url, "source": "test"}, headers=user["headers"]
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "pending"
    return body


async def images(platform: Platform, link_id: str) -> list[StoredImage]:
    async with platform.db.session() as session:
        rows = (await session.execute(select(StoredImage))).scalars().all()
        return [r for r in rows if str(r.link_id) == link_id]


async def check_article_with_json_ld_completes_with_thumbnails_and_tags(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    saved = await save(client, user, site.page("article"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed", link
    assert link["title"] == "PostgreSQL indexes explained"
    assert link["author"] == "Jane Doe"
    assert link["published_at"].startswith("2025-10-05")
    assert link["description"] == "How B-tree and GIN indexes speed up queries."
    assert link["thumbnail_original_url"] == f"{site.url}/img/wide.png"
    rows = await images(platform, saved["id"])
    assert sorted((r.image_type, r.width) for r in rows) == [
        ("large", 600),
        ("medium", 300),
        ("small", 150),
    ]
    for row in rows:
        assert row.object_key.startswith(f"thumbnails/resized/{row.image_type}/{saved['id']}_")
        blob = await platform.storage.get(row.object_key)  # bytes
        image = Image.open(io.BytesIO(blob))
        assert image.format == "JPEG"
        assert image.size == (row.width, row.height)
        assert not row.is_placeholder
    # Signed thumbnail URLs are served.
    thumb = await client.get(link["thumbnails"]["small"])
    assert thumb.status_code == 200
    ai = {t["name"]: t for t in link["tags"] if t["is_auto_generated"]}
    assert "postgresql" in {n.lower() for n in ai} or "indexes" in {n.lower() for n in ai}
    assert all(0 < t["confidence"] <= 1 for t in ai.values())
    assert "advanced" in ai  # difficulty from "advanced deep dive"


async def check_youtube_goes_through_oembed_and_strips_exif(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    saved = await save(client, user, "https://youtu.be/dQw4w9WgXcQ?si=track")
    assert saved["normalized_url"] == "https://youtube.com/watch?v=dQw4w9WgXcQ"
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed", link
    assert link["title"] == "Learn React Hooks in 10 minutes"
    assert link["author"] == "Code Channel"
    assert link["media_type"] == "video"
    assert site.hits.get("/oembed", 0) >= 1
    row = (await images(platform, saved["id"]))[0]
    blob = await platform.storage.get(row.object_key)  # bytes
    assert b"SecretCam" not in blob
    assert "video" in {t["name"] for t in link["tags"]}


async def check_og_video_page_and_redirect_chain(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    video = await save(client, user, site.page("video"))
    chained = await save(client, user, f"{site.url}/r/3")
    link = await wait_done(video["id"], user["headers"])
    assert link["status"] == "completed"
    assert link["title"] == "Cat video"
    assert link["media_type"] == "video"
    link = await wait_done(chained["id"], user["headers"])
    assert link["status"] == "completed"
    assert link["title"] == "PostgreSQL indexes explained"
    assert site.hits["/r/0"] >= 1


async def check_page_without_metadata_gets_placeholder(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    saved = await save(client, user, site.page("plain"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed"
    assert link["title"] is None
    rows = await images(platform, saved["id"])
    assert len(rows) == 3
    assert all(r.is_placeholder for r in rows)
    assert link["thumbnails"]["medium"]
    assert "gardening" in {t["name"] for t in link["tags"]}


async def check_bad_images_fall_back_to_placeholder_with_reason(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    cases = {"bomb": "exceeds", "fake-image": "not a usable image", "huge-image": "limit"}
    ids = {name: (await save(client, user, site.page(name)))["id"] for name in cases}
    for name, reason in cases.items():
        link = await wait_done(ids[name], user["headers"])
        assert link["status"] == "completed", link
        assert reason in (link["processing_error"] or ""), (name, link["processing_error"])
        assert all(r.is_placeholder for r in await images(platform, ids[name]))


async def check_broken_html_and_korean_pages(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    broken = await save(client, user, site.page("broken"))
    korean = await save(client, user, site.page("korean"))
    assert (await wait_done(broken["id"], user["headers"]))["status"] == "completed"
    link = await wait_done(korean["id"], user["headers"])
    assert link["title"] == "리액트훅 완벽 가이드"
    found = await client.get("/api/v1/search", params={"q": "리액트"}, headers=user["headers"])
    assert [i["id"] for i in found.json()["items"]] == [korean["id"]]


async def check_transient_failure_is_retried_then_succeeds(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    site.fail_times["article"] = 2
    saved = await save(client, user, site.page("article"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed"
    assert link["retry_count"] == 2
    assert site.hits["/article"] == 3


async def check_404_retries_then_fails_into_dead_letters(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    saved = await save(client, user, site.page("missing"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "failed"
    assert "404" in link["processing_error"]
    # Seed 002: retry_count + 1 per failure, retried while retry_count < 3.
    assert link["retry_count"] == 3
    assert site.hits["/missing"] == 3
    async with platform.db.session() as session:
        dead = (await session.execute(select(DeadLetter))).scalars().all()
    mine = [d.task for d in dead if d.kwargs["link_id"] == saved["id"]]
    assert mine == ["link.scrape"]
    # A failed link can be retried from the API.
    retried = await client.post(f"/api/v1/links/{saved['id']}/retry", headers=user["headers"])
    assert retried.status_code == 200
    assert retried.json()["status"] == "pending"
    assert (await wait_done(saved["id"], user["headers"]))["status"] == "failed"


async def check_slow_page_times_out_and_fails(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    saved = await save(client, user, site.page("slow"))
    link = await wait_done(saved["id"], user["headers"], timeout=30)
    assert link["status"] == "failed"
    assert "timed out" in link["processing_error"]


async def check_non_html_fails_at_once(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    saved = await save(client, user, site.page("binary"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "failed"
    assert "unsupported content type" in link["processing_error"]
    assert site.hits["/binary"] == 1


async def check_ssrf_targets_are_refused(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    internal = await save(client, user, "http://169.254.169.254/latest/meta-data/")
    link = await wait_done(internal["id"], user["headers"])
    assert link["status"] == "failed"
    assert "private or reserved" in link["processing_error"]
    # An allowed page whose image points at the metadata address gets a placeholder instead.
    meta = await save(client, user, site.page("metadata"))
    link = await wait_done(meta["id"], user["headers"])
    assert link["status"] == "completed"
    assert "private or reserved" in link["processing_error"]


async def check_oembed_discovery_fills_title_and_image(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    saved = await save(client, user, site.page("oembed-discovery"))
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed", link
    assert link["title"] == "Learn React Hooks in 10 minutes"
    assert link["author"] == "Code Channel"
    assert link["thumbnail_original_url"] == f"{site.url}/img/video.jpg"
    assert not any(r.is_placeholder for r in await images(platform, saved["id"]))


async def check_redirect_to_a_private_address_is_refused(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    saved = await save(client, user, f"{site.url}/internal-redirect")
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "failed"
    assert "169.254.169.254" in link["processing_error"]
    assert "private or reserved" in link["processing_error"]
    assert site.hits["/internal-redirect"] == 1  # refused for good, not retried


async def check_endless_page_stops_at_the_size_limit(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    saved = await save(client, user, f"{site.url}/endless")
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "failed"
    assert "exceeds the limit of 1000000 bytes" in link["processing_error"]
    assert site.hits["/endless"] == 1


async def check_a_url_being_scraped_is_not_fetched_again_meanwhile(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    url = site.page("locked")
    digest = url_hash(normalize_url(url))
    # Another worker holds the scrape lock of this URL (seed: SET lock:scrape:{hash} NX EX 300).
    async with lock(platform.cache, f"lock:scrape:{digest}", 300):
        saved = await save(client, user, url)
        with pytest.raises(LockHeld):
            await pipeline.scrape(platform, uuid.UUID(saved["id"]))
        await asyncio.sleep(1.0)
        assert site.hits.get("/locked", 0) == 0
        body = (await client.get(f"/api/v1/links/{saved['id']}", headers=user["headers"])).json()
        assert body["status"] == "scraping"
        assert body["retry_count"] == 0  # waiting for a lock is not a failure
    link = await wait_done(saved["id"], user["headers"])
    assert link["status"] == "completed"
    assert link["title"] == "PostgreSQL indexes explained"
    assert site.hits["/locked"] == 1


async def check_promote_an_ai_tag(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    done = await wait_done((await save(client, user, site.page("article")))["id"], user["headers"])
    ai = next(t for t in done["tags"] if t["is_auto_generated"])
    promoted = await client.post(f"/api/v1/tags/{ai['name']}/promote", headers=user["headers"])
    assert promoted.status_code == 200
    assert promoted.json()["kind"] == "user"
    body = (await client.get(f"/api/v1/links/{done['id']}", headers=user["headers"])).json()
    tag = next(t for t in body["tags"] if t["name"] == ai["name"])
    assert tag["is_auto_generated"] is False


async def check_ai_tags_reuse_the_users_tags(
    client: httpx.AsyncClient, user: dict[str, Any], site: Site, wait_done: WaitFn
) -> None:
    mine = await client.post(
        "/api/v1/links",
        json={"url": site.page("plain"), "tags": ["PostgreSQL"]},
        headers=user["headers"],
    )
    await wait_done(mine.json()["id"], user["headers"])
    done = await wait_done(
        (await save(client, user, site.page("article") + "?copy=1"))["id"], user["headers"]
    )
    names = [t["name"] for t in done["tags"]]
    assert "PostgreSQL" in names
    assert "postgresql" not in names


def test_retry_policy_is_the_seeds() -> None:
    """Three attempts, a fixed 30 s apart, by default (tests shorten only the delay)."""
    from townhall.core.config import Settings
    from townhall.core.jobs.registry import TASKS

    assert Settings.model_fields["link_retries"].default == 2
    assert Settings.model_fields["link_retry_delay_seconds"].default == 30.0
    for name in ("link.scrape", "link.thumbnail", "link.tag"):
        assert TASKS[name].policy.retries == link_tasks.RETRIES
        assert TASKS[name].queue == name.split(".")[1]
    assert link_tasks.BACKOFF == 1.0


async def test_pages_complete_with_metadata_thumbnails_and_tags(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    """Pages of every kind complete: metadata, thumbnails (or placeholders with a reason), tags."""
    await run_together(
        [
            check_article_with_json_ld_completes_with_thumbnails_and_tags,
            check_youtube_goes_through_oembed_and_strips_exif,
            check_og_video_page_and_redirect_chain,
            check_page_without_metadata_gets_placeholder,
            check_bad_images_fall_back_to_placeholder_with_reason,
            check_broken_html_and_korean_pages,
            check_ssrf_targets_are_refused,
            check_oembed_discovery_fills_title_and_image,
            check_redirect_to_a_private_address_is_refused,
            check_endless_page_stops_at_the_size_limit,
        ],
        client=client,
        user=user,
        site=site,
        platform=platform,
        wait_done=wait_done,
    )


async def test_failures_retry_then_fail_with_a_reason(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    """Transient errors are retried; 404s and timeouts fail after retries, wrong types at once."""
    await run_together(
        [
            check_transient_failure_is_retried_then_succeeds,
            check_404_retries_then_fails_into_dead_letters,
            check_slow_page_times_out_and_fails,
            check_non_html_fails_at_once,
            check_a_url_being_scraped_is_not_fetched_again_meanwhile,
        ],
        client=client,
        user=user,
        site=site,
        platform=platform,
        wait_done=wait_done,
    )


async def test_ai_tags_promotion_and_reuse(
    client: httpx.AsyncClient,
    user: dict[str, Any],
    site: Site,
    platform: Platform,
    wait_done: WaitFn,
) -> None:
    """AI tags can be promoted and reuse the user's own tags."""
    await check_ai_tags_reuse_the_users_tags(client, user, site, wait_done)
    await check_promote_an_ai_tag(client, user, site, wait_done)
