"""Sync engine benchmark on PostgreSQL: write path vs raw SQL, SSE fan-out, catch-up.

    uv run python bench/sync.py [--updates 1000] [--subscribers 1000] [--events 20]
        [--parts writes,bigdoc,fanout,catchup]

1. Committed updates/s through find_one_and_update (optimistic read, CAS update, seq
   allocation, event insert, one commit) against raw single-row UPDATE + INSERT per
   transaction on the same PostgreSQL in the same run; prints the ratio (goal >= 0.5) and
   each side's client CPU per write.
2. SSE fan-out: p50/p99 delay from commit to receipt for N subscribers of one stream.
3. Catch-up: a client 10k and 100k events behind, by events and by snapshot + tail.
4. Large document: milliseconds per one-field merge patch of a 10k-field document (the edit
   cost should follow the change, not the document).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import uvicorn
from common import free_port, pct, scratch_database
from tests.fixtures.app import make_settings

from townhall.core.auth.rbac import load_grants
from townhall.core.auth.service import AuthService
from townhall.core.deps import Principal
from townhall.core.migrate import upgrade
from townhall.main import create_app
from townhall.sync.patching import MergePatch
from townhall.sync.service import SyncService


async def bench_writes(
    platform: Any, owner: Principal, raw_url: str, updates: int
) -> dict[str, float]:
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create_collection(owner, "bench", "bench-writes")
        await service.create(owner, "bench-writes", "doc", {"n": 0, "title": "x" * 200})
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(updates):
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).find_one_and_update(
                owner, "bench-writes", "doc", MergePatch({"n": i})
            )
    engine = updates / (time.perf_counter() - start)
    engine_cpu = 1000 * (time.process_time() - cpu) / updates

    conn = await asyncpg.connect(raw_url)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS raw_docs (id int PRIMARY KEY, version bigint, data jsonb);"
        "CREATE TABLE IF NOT EXISTS raw_events (seq bigserial PRIMARY KEY, doc int, patch jsonb);"
        "INSERT INTO raw_docs VALUES (1, 1, '{}') ON CONFLICT DO NOTHING"
    )
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(updates):
        async with conn.transaction():
            patch = json.dumps({"n": i})
            await conn.execute(
                "UPDATE raw_docs SET version = version + 1, data = data || $1::jsonb WHERE id = 1",
                patch,
            )
            await conn.execute("INSERT INTO raw_events (doc, patch) VALUES (1, $1::jsonb)", patch)
    raw = updates / (time.perf_counter() - start)
    raw_cpu = 1000 * (time.process_time() - cpu) / updates
    await conn.close()
    # Client CPU per write (this process) is less at the mercy of a loaded machine than rates.
    return {
        "engine_per_s": engine,
        "raw_per_s": raw,
        "ratio": engine / raw,
        "engine_cpu_ms": engine_cpu,
        "raw_cpu_ms": raw_cpu,
    }


async def bench_big_document(
    platform: Any, owner: Principal, updates: int, fields: int = 10_000
) -> dict[str, float]:
    """Edit cost on a large document: one-field merge patches of a `fields`-field document."""
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create_collection(owner, "big", "bench-big")
        await service.create(owner, "bench-big", "doc", {f"f{i}": i for i in range(fields)})
    start = time.perf_counter()
    for i in range(updates):
        async with platform.db.session() as session:
            await SyncService(session, platform.settings).find_one_and_update(
                owner, "bench-big", "doc", MergePatch({"f0": -i})
            )
    return {"ms_per_edit": 1000 * (time.perf_counter() - start) / updates}


async def sse_reader(
    port: int, token: str, ready: asyncio.Event, delays: list[float], want: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /api/v1/sync/collections/bench-fan/events?since=1 HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    got = 0
    while got < want:
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b"retry:"):
            ready.set()  # the stream is open (auth and membership passed)
        if line.startswith(b"data: "):
            payload = json.loads(line[6:])
            sent = (payload.get("patch") or {}).get("t")
            if sent is not None:
                delays.append(time.time() - sent)
                got += 1
    ready.set()  # a refused or closed stream must not stall the ramp-up
    writer.close()


async def bench_fanout(
    app: Any, platform: Any, owner: Principal, token: str, subscribers: int, events: int
) -> dict[str, float]:
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create_collection(owner, "fan", "bench-fan")
        await service.create(owner, "bench-fan", "doc", {"t": 0})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="error", backlog=4096
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    delays: list[float] = []
    readies = [asyncio.Event() for _ in range(subscribers)]
    readers = []
    for start in range(0, subscribers, 25):  # ramp up: each connect authenticates + catches up
        batch = readies[start : start + 25]
        readers += [asyncio.create_task(sse_reader(port, token, r, delays, events)) for r in batch]
        await asyncio.gather(*(r.wait() for r in batch))
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # every stream has done its initial catch-up
    for _ in range(events):
        async with platform.db.session() as session:
            # The timestamp rides in the patch; delay = receipt - just before commit.
            await SyncService(session, platform.settings, platform.pubsub).find_one_and_update(
                owner, "bench-fan", "doc", MergePatch({"t": time.time()})
            )
        await asyncio.sleep(0.2)
    await asyncio.wait(readers, timeout=30)
    server.should_exit = True
    await serving
    return {
        "subscribers": subscribers,
        "deliveries": len(delays),
        "expected": subscribers * events,
        "p50_ms": 1000 * statistics.median(delays),
        "p99_ms": 1000 * pct(delays, 0.99),
    }


async def bulk(platform: Any, slug: str, count: int) -> None:
    from tests.sync.helpers import bulk_events

    await bulk_events(platform, slug, "doc", count)


async def bench_catchup(platform: Any, owner: Principal, behind: int) -> dict[str, float]:
    slug = f"bench-c{behind}"
    async with platform.db.session() as session:
        service = SyncService(session, platform.settings)
        await service.create_collection(owner, slug, slug)
        await service.create(owner, slug, "doc", {"n": 0})
    done = 0
    while done < behind:
        step = min(20_000, behind - done)
        await bulk(platform, slug, step)
        done += step
    async with platform.db.session() as session:
        await SyncService(session, platform.settings).snapshot(owner, slug)
    out: dict[str, float] = {}
    for mode, threshold in (("events", 10**9), ("snapshot", 5000)):
        settings = platform.settings.model_copy(update={"sync_catchup_max_events": threshold})
        start = time.perf_counter()
        pos, received = 1, 0
        while True:
            async with platform.db.session() as session:
                service = SyncService(session, settings)
                access = await service.access(owner, slug)
                page = await service.catch_up(access, pos, limit=10_000)
            received += len(page.events)
            pos = page.last_seq
            if not page.more:
                break
        out[f"{mode}_s"] = time.perf_counter() - start
        out[f"{mode}_events"] = received
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--parts", default="writes,bigdoc,fanout,catchup")
    args = parser.parse_args()
    async with scratch_database("sync") as url:
        async_url = url.replace("postgresql://", "postgresql+asyncpg://")
        await asyncio.to_thread(upgrade, async_url)
        settings = make_settings(
            Path(tempfile.mkdtemp()), database_url=async_url, database_pool_size=20
        )
        app = create_app(settings)
        from asgi_lifespan import LifespanManager

        async with LifespanManager(app, startup_timeout=60):
            platform = app.state.platform
            async with platform.db.session() as session:
                auth = AuthService(settings, platform.cache)
                user = await auth.create_user(
                    session,
                    email="bench@example.com",
                    display_name="B",
                    password="password123",
                    roles=("user",),
                )
                owner = Principal(
                    user=user, family_id=user.id, grants=await load_grants(session, user.id)
                )
            token = await issue_token(platform, settings)
            print("load average:", os.getloadavg())
            parts = set(args.parts.split(","))
            writes = await bench_writes(
                platform, owner, url, args.updates if "writes" in parts else 1
            )
            print(
                f"write path: engine {writes['engine_per_s']:.0f}/s, raw UPDATE+INSERT "
                f"{writes['raw_per_s']:.0f}/s, ratio {writes['ratio']:.2f}; client CPU per write "
                f"engine {writes['engine_cpu_ms']:.2f} ms, raw {writes['raw_cpu_ms']:.2f} ms"
            )
            fan = (
                None
                if "fanout" not in parts
                else await bench_fanout(app, platform, owner, token, args.subscribers, args.events)
            )
            if fan is not None:
                print(
                    f"SSE fan-out: {fan['subscribers']} subscribers, "
                    f"{fan['deliveries']}/{fan['expected']} "
                    f"deliveries, p50 {fan['p50_ms']:.1f} ms, p99 {fan['p99_ms']:.1f} ms"
                )
            if "bigdoc" in parts:
                big = await bench_big_document(platform, owner, max(1, args.updates // 5))
                print(
                    f"large document (10k fields): {big['ms_per_edit']:.2f} ms per one-field edit"
                )
            for behind in (10_000, 100_000) if "catchup" in parts else ():
                c = await bench_catchup(platform, owner, behind)
                print(
                    f"catch-up {behind} behind: events {c['events_s']:.2f} s "
                    f"({c['events_events']:.0f} events), "
                    f"snapshot+tail {c['snapshot_s']:.3f} s ({c['snapshot_events']:.0f} events)"
                )
            print("load average:", os.getloadavg())


async def issue_token(platform: Any, settings: Any) -> str:
    from townhall.core.auth.service import ClientInfo

    async with platform.db.session() as session:
        issued = await AuthService(settings, platform.cache).login(
            session,
            email="bench@example.com",
            password="password123",
            client=ClientInfo(ip="127.0.0.1", user_agent="bench"),
        )
    return str(issued.access_token)


if __name__ == "__main__":
    asyncio.run(main())
