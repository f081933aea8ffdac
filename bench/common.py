"""Helpers the bench scripts share: ports, percentiles, memory, readiness, scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parent.parent
# Scripts run as `python bench/x.py` see bench/ on sys.path, not the repository root (tests/).
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

ADMIN_URL = os.environ.get(
    "TOWNHALL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
).replace("postgresql+asyncpg://", "postgresql://")
REDIS_URL = os.environ.get("TOWNHALL_TEST_REDIS_URL", "redis://127.0.0.1:6379")
BROKER_URL = os.environ.get("TOWNHALL_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


async def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None = None, path: str = "/readyz", tries: int = 600
) -> None:
    """Poll `url + path` every 0.2 s until it answers below 500; exit if `proc` dies first."""
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(tries):
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"{url} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(path)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not start")


async def create_database(name: str) -> str:
    """A fresh, empty PostgreSQL database `name` (dropped first); its plain postgresql:// URL."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(tag: str = "") -> AsyncIterator[str]:
    """A new database `townhall_bench_[tag_]<random>`, dropped on exit; yields its URL."""
    name = f"townhall_bench_{tag + '_' if tag else ''}{uuid.uuid4().hex[:8]}"
    url = await create_database(name)
    try:
        yield url
    finally:
        await drop_database(name)


async def delete_keys(*prefixes: str) -> None:
    """Delete the Redis keys of this run (every key starting with one of `prefixes`)."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        for prefix in prefixes:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.delete(key)
    finally:
        await client.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose
