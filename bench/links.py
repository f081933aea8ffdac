"""Links benchmark: save, list (cached/uncached) and search latency with many links of one user.

Run: uv run python bench/links.py [--links 100000] [--requests 200] [--pipeline 200]
Needs PostgreSQL (TOWNHALL_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test;
a fresh database is created and dropped) and Redis (TOWNHALL_TEST_REDIS_URL). Requests go
through the ASGI app in process (no network), the pipeline is not running. Prints a Markdown
table next to the seed's figures (save < 500 ms, list cached ~50 ms, uncached ~200 ms,
search ~300 ms) as ratios (< 1 = faster than the seed's figure).

Then (`--pipeline N`, default 200, 0 skips it) the pipeline: first 5 links one at a time
(pending -> completed, the seed's "5-15 s" whole processing), then throughput: N new links to a
local fixture site (an article page with OpenGraph + JSON-LD and an 800x500 PNG) are saved
through the API while the in-process worker (embedded broker in PostgreSQL) scrapes,
thumbnails and tags them; links/min = N / (time from the first save until all are completed) * 60.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from aiohttp import web
from asgi_lifespan import LifespanManager
from common import REDIS_URL, pct, scratch_database
from PIL import Image

from townhall.core.config import Settings, normalise_database_url
from townhall.core.migrate import upgrade
from townhall.main import create_app
from townhall.modules.link.urls import normalize_url, url_hash

_WORDS_TEXT = """
react hooks python postgres index query cache redis queue worker thumbnail image
search korean 리액트훅 서울 여행 요리 레시피 design travel music science startup finance health
garden bread coffee review tutorial guide news weekly notes deep dive performance
"""
WORDS = _WORDS_TEXT.split()
ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>Bench {n}</title>
<meta property="og:title" content="Bench article {n}: React hooks and PostgreSQL indexes">
<meta property="og:description" content="A tutorial about hooks, indexes and caching.">
<meta property="og:image" content="{site}/img/{n}.png">
<script type="application/ld+json">{{"@type":"TechArticle","author":"Bench Writer",
"datePublished":"2025-10-05T09:00:00Z"}}</script></head><body><article><h1>Bench</h1>
<p>React hooks let function components keep state; PostgreSQL GIN indexes make search fast.
This advanced tutorial measures both in a deep dive for developers.</p></article></body></html>"""
SINGLE_LINKS = 5
SEED_MS = {"save": 500.0, "list cached": 50.0, "list uncached": 200.0, "search": 300.0}


async def fill(url: str, user_id: uuid.UUID, count: int) -> None:
    """Insert `count` completed links of one user straight into PostgreSQL (COPY)."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        words = rng.sample(WORDS, 6)
        title = " ".join(words[:4]).title()
        normalized = normalize_url(f"https://bench{i % 997}.example.com/post/{i}")
        stamp = now - timedelta(seconds=count - i)
        rows.append(
            (
                uuid.uuid4(),
                user_id,
                normalized,
                normalized,
                url_hash(normalized),
                "bench",
                title,
                " ".join(words),
                "",
                "completed",
                0,
                False,
                False,
                False,
                1,
                stamp,
                f"{title} {' '.join(words)}",
                stamp,
                stamp,
            )
        )
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "links",
            records=rows,
            columns=[
                "id",
                "user_id",
                "url",
                "normalized_url",
                "url_hash",
                "source",
                "title",
                "description",
                "note",
                "status",
                "retry_count",
                "is_read",
                "is_archived",
                "is_favorite",
                "version",
                "edited_at",
                "search_text",
                "created_at",
                "updated_at",
            ],
        )
        await conn.execute("ANALYZE links")
    finally:
        await conn.close()


async def timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> float:
    start = time.perf_counter()
    response = await client.request(method, url, **kw)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:200]}")
    return elapsed


async def fixture_site() -> tuple[web.AppRunner, str]:
    """The local site the pipeline fetches: /a/{n} (article) and /img/{n}.png (800x500)."""
    out = io.BytesIO()
    Image.new("RGB", (800, 500), (97, 218, 251)).save(out, "PNG")
    png = out.getvalue()
    base = ""

    async def article(request: web.Request) -> web.Response:
        html = ARTICLE.format(n=request.match_info["n"], site=base)
        return web.Response(text=html, content_type="text/html")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    app = web.Application()
    app.router.add_get("/a/{n}", article)
    app.router.add_get("/img/{n}.png", image)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    return runner, base


async def pipeline_throughput(
    settings: Settings, db_url: str, count: int
) -> tuple[float, int, float]:
    """Links/min through scrape -> thumbnail -> tag in-process; (rate, failed, one-link s)."""
    # Drop the jobs the latency part queued (its URLs are not fetchable) so only ours run.
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("DELETE FROM jobs")
    finally:
        await conn.close()
    runner, site = await fixture_site()
    worker_settings = settings.model_copy(
        update={"worker_in_process": True, "outbound_allowlist": ["127.0.0.1/32"]}
    )
    app = create_app(worker_settings)
    try:
        async with (
            LifespanManager(app, startup_timeout=60, shutdown_timeout=60),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench"
            ) as client,
        ):
            email = f"pipe-{uuid.uuid4().hex[:8]}@example.com"
            tokens = (
                await client.post(
                    "/api/v1/auth/signup",
                    json={"email": email, "password": "password123", "display_name": "Pipe"},
                )
            ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            conn = await asyncpg.connect(db_url)
            try:
                # One link at a time first: the seed's "whole processing 5-15 s" per link.
                single: list[float] = []
                for n in range(SINGLE_LINKS):
                    begin = time.perf_counter()
                    await timed(
                        client,
                        "POST",
                        "/api/v1/links",
                        headers=headers,
                        json={"url": f"{site}/a/single-{n}", "source": "bench-single"},
                    )
                    while not await conn.fetchval(
                        "SELECT count(*) FROM links WHERE source = 'bench-single'"
                        " AND status IN ('completed', 'failed') AND url LIKE $1",
                        f"%/a/single-{n}",
                    ):
                        await asyncio.sleep(0.05)
                    single.append(time.perf_counter() - begin)
                started = time.perf_counter()
                for n in range(count):
                    await timed(
                        client,
                        "POST",
                        "/api/v1/links",
                        headers=headers,
                        json={"url": f"{site}/a/{n}", "source": "bench-pipeline"},
                    )
                while True:
                    done, failed = await conn.fetchrow(
                        "SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')),"
                        " count(*) FILTER (WHERE status = 'failed')"
                        " FROM links WHERE source = 'bench-pipeline'"
                    )
                    if done >= count:
                        break
                    if time.perf_counter() - started > 600:
                        raise RuntimeError(f"only {done} of {count} links finished in 10 min")
                    await asyncio.sleep(0.2)
                elapsed = time.perf_counter() - started
            finally:
                await conn.close()
    finally:
        await runner.cleanup()
    return count / elapsed * 60, int(failed), statistics.median(single)


async def run(links: int, requests: int, pipeline: int) -> None:
    async with scratch_database("links") as url:
        await asyncio.to_thread(upgrade, normalise_database_url(url))
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                _env_file=None,
                env="test",
                var_dir=Path(tmp),
                secret_key="bench-secret-key-with-enough-length-for-hs256",
                database_url=url,
                redis_url=REDIS_URL,
                worker_in_process=False,
                log_level="WARNING",
                signup_per_ip_per_hour=1000,
            )
            app = create_app(settings)
            async with (
                LifespanManager(app, startup_timeout=60),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench"
                ) as client,
            ):
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                tokens = (
                    await client.post(
                        "/api/v1/auth/signup",
                        json={"email": email, "password": "password123", "display_name": "Bench"},
                    )
                ).json()
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                me = (await client.get("/api/v1/auth/me", headers=headers)).json()
                started = time.perf_counter()
                await fill(url, uuid.UUID(me["id"]), links)
                print(f"filled {links} links in {time.perf_counter() - started:.1f} s")
                results: dict[str, list[float]] = {k: [] for k in SEED_MS}
                for i in range(requests):
                    results["save"].append(
                        await timed(
                            client,
                            "POST",
                            "/api/v1/links",
                            headers=headers,
                            json={"url": f"https://new.example.com/{i}", "source": "bench"},
                        )
                    )
                platform = app.state.platform
                from townhall.modules.link.service import invalidate_user_cache

                for i in range(requests):
                    await invalidate_user_cache(platform, uuid.UUID(me["id"]))
                    page = 1 + i % 50
                    results["list uncached"].append(
                        await timed(
                            client, "GET", f"/api/v1/links?page={page}&limit=20", headers=headers
                        )
                    )
                await timed(client, "GET", "/api/v1/links?page=1&limit=20", headers=headers)
                for _ in range(requests):
                    results["list cached"].append(
                        await timed(client, "GET", "/api/v1/links?page=1&limit=20", headers=headers)
                    )
                rng = random.Random(11)
                for _ in range(requests):
                    q = " ".join(rng.sample(WORDS, 2))
                    results["search"].append(
                        await timed(
                            client, "GET", "/api/v1/search", params={"q": q}, headers=headers
                        )
                    )
        print(f"\n{links} links of one user, {requests} requests each (PostgreSQL + Redis)\n")
        print("| operation | p50 ms | p99 ms | seed figure ms | p50 / seed | p99 / seed |")
        print("|---|---|---|---|---|---|")
        for op, values in results.items():
            p50, p99 = statistics.median(values), pct(values, 0.99)
            seed = SEED_MS[op]
            ratios = f"{p50 / seed:.2f} | {p99 / seed:.2f}"
            print(f"| {op} | {p50:.1f} | {p99:.1f} | {seed:.0f} | {ratios} |")
        if pipeline:
            with tempfile.TemporaryDirectory() as tmp:
                rate, failed, one = await pipeline_throughput(
                    settings.model_copy(update={"var_dir": Path(tmp)}), url, pipeline
                )
            print(
                f"\npipeline: one link alone pending -> completed in {one:.2f} s (median of "
                f"{SINGLE_LINKS}; seed: 5-15 s); {pipeline} links at once: {rate:.0f} links/min, "
                f"{failed} failed"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pipeline", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.links, args.requests, args.pipeline))


if __name__ == "__main__":
    main()
