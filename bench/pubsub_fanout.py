"""Pub/sub fan-out: messages/s and p99 publish->receive latency to N local subscribers.

Runs the memory and Redis backends of townhall.core.pubsub, and measures the raw Redis
PUBLISH limit in the same run (redis-benchmark, and a plain redis-py awaited PUBLISH loop,
which is what one publishing coroutine can reach). Loopback only; every phase is bounded.

    uv run python bench/pubsub_fanout.py [--subscribers 100] [--messages 2000] [--load 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from townhall.core.pubsub import MemoryPubSub, PubSub, RedisPubSub

CHANNEL = "bench:fanout"


@dataclass
class Result:
    label: str
    published: int
    deliveries: int
    seconds: float
    latencies: list[float]

    @property
    def msgs_per_s(self) -> float:
        return self.published / self.seconds

    @property
    def deliveries_per_s(self) -> float:
        return self.deliveries / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def fanout(
    pubsub: PubSub, label: str, subscribers: int, messages: int, rate: float | None, limit: float
) -> Result:
    """Publish `messages` to `subscribers` local subscriptions; time every delivery."""
    latencies: list[float] = []
    pad = "x" * 64
    cms = [pubsub.subscribe(CHANNEL, queue_size=messages + 10) for _ in range(subscribers)]
    subs = [await cm.__aenter__() for cm in cms]
    last = 0.0

    async def consume(sub: Any) -> int:
        nonlocal last
        got = 0
        for _ in range(messages):
            msg = await sub.__anext__()
            now = time.perf_counter()
            if msg.gap:
                continue
            latencies.append(now - msg.data["t"])
            last = max(last, now)
            got += 1
        return got

    tasks = [asyncio.create_task(consume(s)) for s in subs]
    start = time.perf_counter()
    for i in range(messages):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await pubsub.publish(CHANNEL, {"t": time.perf_counter(), "i": i, "pad": pad})
        if not rate:
            await asyncio.sleep(0)  # a real publisher (a request handler) yields between sends
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    delivered = sum(t.result() for t in done if not t.exception())
    for cm in cms:
        await cm.__aexit__(None, None, None)
    return Result(label, messages, delivered, max(last - start, 1e-9), latencies)


def redis_benchmark(port: int, clients: int, pipeline: int, n: int) -> float | None:
    """Raw PUBLISH requests/s from redis-benchmark, or None if it is missing."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    args = [binary, "-p", str(port), "-n", str(n), "-c", str(clients), "-P", str(pipeline), "-q"]
    args += ["--csv", "PUBLISH", CHANNEL, "x" * 100]
    out = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return float(rows[-1]["rps"])


async def redis_py_loop(url: str, n: int) -> float:
    """One coroutine, one connection, awaited PUBLISH after PUBLISH: the single-publisher limit."""
    client: Redis[bytes] = Redis.from_url(url)
    payload = b"x" * 100
    start = time.perf_counter()
    for _ in range(n):
        await client.publish(CHANNEL, payload)
    elapsed = time.perf_counter() - start
    await client.aclose()  # type: ignore[attr-defined]
    return n / elapsed


def start_redis() -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway redis-server on a free loopback port (the shared one stays untouched)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def show(r: Result) -> None:
    print(
        f"  {r.label:<28} {r.msgs_per_s:>10,.0f} msg/s {r.deliveries_per_s:>12,.0f} deliveries/s"
        f"   p50 {r.pct(0.50):7.2f} ms   p99 {r.pct(0.99):7.2f} ms"
        f"   ({r.deliveries} delivered)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--load", type=float, default=0.5, help="paced phase rate, as a share of saturated msg/s"
    )
    parser.add_argument("--limit", type=float, default=30.0, help="max seconds per phase")
    args = parser.parse_args()
    n, m = args.subscribers, args.messages

    proc, port = start_redis()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        print(f"pub/sub fan-out: {n} local subscribers, {m} messages per phase, loopback")
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")
        results: dict[str, Result] = {}
        for kind in ("memory", "redis"):
            rate: float | None = None
            for mode in ("saturated", "paced"):
                pubsub: PubSub = MemoryPubSub() if kind == "memory" else RedisPubSub(url)
                label = f"{kind} {mode}"
                count = m
                if rate is not None:
                    label += f" {rate:,.0f}/s"
                    count = max(50, min(m, int(rate * 5)))  # at most ~5 s
                try:
                    r = await fanout(pubsub, label, n, count, rate, args.limit)
                finally:
                    await pubsub.close()
                results[f"{kind} {mode}"] = r
                show(r)
                rate = r.msgs_per_s * args.load  # latency is measured below capacity

        single = redis_benchmark(port, 1, 1, 20_000)
        many = redis_benchmark(port, 50, 1, 100_000)
        piped = redis_benchmark(port, 50, 16, 300_000)
        loop = await redis_py_loop(url, 10_000)
        print("\nraw Redis PUBLISH limits (same server, same run):")
        if single is not None and many is not None and piped is not None:
            print(f"  redis-benchmark PUBLISH, 1 client            {single:>10,.0f} req/s")
            print(f"  redis-benchmark PUBLISH, 50 clients          {many:>10,.0f} req/s")
            print(f"  redis-benchmark PUBLISH, 50 clients, -P 16   {piped:>10,.0f} req/s")
        print(f"  redis-py awaited PUBLISH loop, 1 connection  {loop:>10,.0f} req/s")

        sat = results["redis saturated"]
        print("\nratios, townhall Redis backend saturated (one awaited publisher):")
        print(f"  msg/s vs redis-py awaited PUBLISH loop     {sat.msgs_per_s / loop:6.2f}")
        if single is not None and many is not None:
            print(f"  msg/s vs redis-benchmark 1 client          {sat.msgs_per_s / single:6.2f}")
            print(f"  msg/s vs redis-benchmark 50 clients        {sat.msgs_per_s / many:6.2f}")
            print(
                f"  deliveries/s vs redis-benchmark 50 clients {sat.deliveries_per_s / many:6.2f}"
                "  (each Redis message reaches every local subscriber)"
            )
        mem = results["memory saturated"]
        print(
            f"  memory msg/s vs Redis msg/s                {mem.msgs_per_s / sat.msgs_per_s:6.2f}"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        proc.kill()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
