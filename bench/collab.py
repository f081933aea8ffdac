"""Collab benchmark: townhall's y-websocket sync vs Hocuspocus, and the save path vs raw Redis.

Run: uv run python bench/collab.py [--docs 20 --clients 5 --updates 50 --interval 20]
Needs node + tests/collab/interop/node_modules (scripts/test-deps.sh) and Redis
(TOWNHALL_TEST_REDIS_URL, default redis://127.0.0.1:6379). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import redis.asyncio as aioredis
from common import REDIS_URL, ROOT, free_port, rss_kb, wait_ready

INTEROP = ROOT / "tests" / "collab" / "interop"


async def start_townhall(tmp: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "TOWNHALL_ENV": "test",
        "TOWNHALL_VAR_DIR": str(tmp / "var"),
        "TOWNHALL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "TOWNHALL_REDIS_URL": REDIS_URL,
        "TOWNHALL_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
        "TOWNHALL_COLLAB_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
        "TOWNHALL_LOG_LEVEL": "WARNING",
        "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "1000",
    }
    cli = [sys.executable, "-m", "townhall.cli"]
    subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--no-migrate"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await wait_ready(f"http://127.0.0.1:{port}", proc, "/healthz")
    return proc, f"127.0.0.1:{port}", env


async def start_hocuspocus() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        ["node", "hocuspocus-server.mjs", str(port)], cwd=INTEROP, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
    return proc, f"127.0.0.1:{port}"


async def load(kind: str, url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "bench-load.mjs",
        kind,
        url,
        token,
        str(args.docs),
        str(args.clients),
        str(args.updates),
        str(args.interval),
        cwd=INTEROP,
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def small_updates(n: int) -> list[bytes]:
    """n consecutive small text edits of one document (what a leader's diff saves look like)."""
    updates = []
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for i in range(n):
        before = doc.get_state()
        text = doc.get("text", type=pycrdt.Text)
        text += f"w{i} "
        updates.append(doc.get_update(before))
    return updates


async def post_saves(
    host: str, token: str, updates: list[bytes], concurrency: int
) -> tuple[float, list[float]]:
    """POST the updates to one new document with `concurrency` workers; (seconds, latencies)."""
    doc_id = uuid.uuid4().hex
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://{host}", limits=limits) as client:
        headers = {"Authorization": f"Bearer {token}"}
        queue = list(reversed(updates))

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                r = await client.post(
                    f"/api/v1/collab/demo/save?id={doc_id}", content=body, headers=headers
                )
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t, sorted(latencies)


def p99(latencies: list[float]) -> float:
    return 1000 * latencies[int(0.99 * (len(latencies) - 1))]


async def save_path(host: str, token: str, n: int, concurrency: int) -> dict[str, float]:
    """Saves/s through the save API vs raw RPUSH of the same bytes (same concurrency).

    Latency is measured twice: one save at a time (what one leader sees: the issue's target)
    and at `concurrency` (where it is queueing behind the throughput limit).
    """
    updates = small_updates(n)
    _, sequential = await post_saves(host, token, updates[: max(n // 4, 1)], 1)
    api_seconds, latencies = await post_saves(host, token, updates, concurrency)
    r = aioredis.from_url(REDIS_URL, max_connections=concurrency)
    key = f"bench-raw-{uuid.uuid4().hex}"
    queue = list(updates)

    async def raw_worker() -> None:
        while queue:
            await r.rpush(key, queue.pop())

    t = time.perf_counter()
    await asyncio.gather(*(raw_worker() for _ in range(concurrency)))
    raw_seconds = time.perf_counter() - t
    await r.delete(key)
    await r.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
    return {
        "api_per_s": n / api_seconds,
        "raw_per_s": n / raw_seconds,
        "api_p50_ms": 1000 * statistics.median(latencies),
        "api_p99_ms": p99(latencies),
        "seq_p50_ms": 1000 * statistics.median(sequential),
        "seq_p99_ms": p99(sequential),
        "seq_n": len(sequential),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--interval", type=int, default=20, help="ms between a client's updates")
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        th, th_host, _ = await start_townhall(Path(tmp))
        hp, hp_host = await start_hocuspocus()
        try:
            async with httpx.AsyncClient(base_url=f"http://{th_host}") as client:
                signup = await client.post(
                    "/api/v1/auth/signup",
                    json={
                        "email": "bench@example.com",
                        "password": "password123",
                        "display_name": "bench",
                    },
                )
                token = signup.json()["access_token"]
            base = {"townhall": rss_kb(th.pid), "hocuspocus": rss_kb(hp.pid)}
            results = {
                "townhall": await load("townhall", f"ws://{th_host}/collab/ws/demo", token, args),
                "hocuspocus": await load("hocuspocus", f"ws://{hp_host}", token, args),
            }
            peak = {"townhall": rss_kb(th.pid), "hocuspocus": rss_kb(hp.pid)}
            saves = await save_path(th_host, token, args.saves, args.concurrency)
        finally:
            for proc in (th, hp):
                proc.terminate()
                proc.wait(15)
    print(
        f"Load: {args.docs} documents x {args.clients} clients, {args.updates} updates per "
        f"client every {args.interval} ms (real npm clients: y-websocket / @hocuspocus/provider)\n"
    )
    print(
        "| server | delivered/expected | updates/s delivered | p50 ms | p99 ms "
        "| RSS growth KB/doc |"
    )
    print("|---|---|---|---|---|---|")
    for kind, res in results.items():
        growth = (peak[kind] - base[kind]) / args.docs
        print(
            f"| {kind} | {res['delivered']}/{res['expected']} | {res['per_second']:.0f} | "
            f"{res['p50_ms']} | {res['p99_ms']} | {growth:.0f} |"
        )
    th_rate = results["townhall"]["per_second"]
    hp_rate = results["hocuspocus"]["per_second"]
    print(f"\ntownhall / Hocuspocus delivered updates/s: {th_rate / hp_rate:.2f}")
    print(
        f"\nSave path ({args.saves} saves, concurrency {args.concurrency}): "
        f"{saves['api_per_s']:.0f} saves/s through /api/v1/collab/demo/save "
        f"(p50 {saves['api_p50_ms']:.1f} ms, p99 {saves['api_p99_ms']:.1f} ms) vs "
        f"{saves['raw_per_s']:.0f} raw RPUSH/s: ratio {saves['api_per_s'] / saves['raw_per_s']:.3f}"
    )
    print(
        f"One save at a time ({saves['seq_n']:.0f} saves): p50 {saves['seq_p50_ms']:.1f} ms, "
        f"p99 {saves['seq_p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
