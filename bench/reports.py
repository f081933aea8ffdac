"""Reports benchmark: filing throughput with analysis in 1 and 2 worker processes, and the delay
from filing to the officer's live notification.

Run: uv run python bench/reports.py [--reports 200] [--concurrency 8] [--broker rabbitmq]
Needs PostgreSQL (TOWNHALL_TEST_DATABASE_URL; a fresh database is created and dropped), Redis
(TOWNHALL_TEST_REDIS_URL: pub/sub from the workers to the server's WebSockets) and, with
`--broker rabbitmq`, RabbitMQ (TOWNHALL_TEST_RABBITMQ_URL); the default broker is the embedded
one in the database. One `townhall serve` (consumers off) and N `townhall worker --queues report`
processes; the offline AI provider. Each report is a multipart POST with one 320x240 JPEG that
routes to the demo officer's department; the clock stops when that officer's WebSocket receives
the report.routed notification. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from links import ADMIN_URL, REDIS_URL, create_database, drop_database, pct
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from collab import ROOT, free_port, wait_http

RABBITMQ_URL = os.environ.get("TOWNHALL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLI = [sys.executable, "-m", "townhall.cli"]
CITIZEN, OFFICER, PASSWORD = "alice@example.com", "officer@example.com", "demo-password"


def photo() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((320, 240), 60).convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def environment(tmp: Path, database_url: str, broker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNHALL_")}
    env.update(
        {
            "TOWNHALL_ENV": "test",
            "TOWNHALL_VAR_DIR": str(tmp / "var"),
            "TOWNHALL_DATABASE_URL": database_url.replace("postgresql://", "postgresql+asyncpg://"),
            "TOWNHALL_REDIS_URL": REDIS_URL,
            "TOWNHALL_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
            "TOWNHALL_WORKER_IN_PROCESS": "false",
            "TOWNHALL_JOB_POLL_SECONDS": "0.02",
            "TOWNHALL_LOG_LEVEL": "WARNING",
            "TOWNHALL_LOGIN_ATTEMPTS_PER_IP": "1000",
            "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "1000",
        }
    )
    if broker == "rabbitmq":
        env["TOWNHALL_BROKER_URL"] = RABBITMQ_URL
        env["TOWNHALL_JOB_QUEUE_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}."
    return env


async def token(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    access: str = r.json()["access_token"]
    return access


async def listen(ws: ClientConnection, arrived: dict[str, float]) -> None:
    """Record when each report.routed notification reaches the officer."""
    while True:
        msg = json.loads(await ws.recv())
        note = msg.get("notification") if msg.get("type") == "notification" else None
        if note and note["kind"] == "report.routed":
            arrived.setdefault(note["report_id"], time.perf_counter())


async def one_round(
    host: str, env: dict[str, str], workers: int, reports: int, concurrency: int
) -> dict[str, float]:
    procs = [
        subprocess.Popen(
            [*CLI, "worker", "--queues", "report", "--no-migrate", "--no-schedules"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=60) as client:
            citizen = {"Authorization": f"Bearer {await token(client, CITIZEN)}"}
            officer = await token(client, OFFICER)
            ws = await connect(f"ws://{host}/api/v1/reports/ws?token={officer}")
            assert json.loads(await ws.recv())["type"] == "ready"
            arrived: dict[str, float] = {}
            listener = asyncio.create_task(listen(ws, arrived))
            await asyncio.sleep(2)  # the workers connect to the broker
            filed: dict[str, float] = {}
            image = photo()
            queue = list(range(reports))

            async def filer() -> None:
                while queue:
                    n = queue.pop()
                    started = time.perf_counter()
                    r = await client.post(
                        "/api/v1/reports",
                        headers=citizen,
                        data={
                            "title": f"Pothole {n} on Paldal-ro",
                            "description": "Deep pothole, 도로 포트홀 파손, cars swerve.",
                            "category": "pothole",
                            "lat": str(35.82 + (n % 50) * 0.0001),
                            "lng": "127.148",
                        },
                        files=[("photos", ("p.jpg", image, "image/jpeg"))],
                    )
                    r.raise_for_status()
                    filed[r.json()["id"]] = started

            began = time.perf_counter()
            await asyncio.gather(*(filer() for _ in range(concurrency)))
            filing = time.perf_counter() - began
            deadline = time.monotonic() + 600
            while not filed.keys() <= arrived.keys():
                if time.monotonic() > deadline or listener.done():
                    raise RuntimeError(f"{len(filed.keys() - arrived.keys())} never notified")
                await asyncio.sleep(0.01)
            done = max(arrived[rid] for rid in filed) - began
            listener.cancel()
            await ws.close()
        delays = [(arrived[rid] - t) * 1000 for rid, t in filed.items()]
        return {
            "filed_per_s": reports / filing,
            "analysed_per_s": reports / done,
            "p50_ms": pct(delays, 50),
            "p99_ms": pct(delays, 99),
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


async def run(reports: int, concurrency: int, broker: str) -> None:
    name = f"townhall_bench_reports_{os.getpid()}"
    url = await create_database(name)
    server: subprocess.Popen[bytes] | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = environment(Path(tmp), url, broker)
            for step in ("migrate", "demo"):
                subprocess.run([*CLI, step], env=env, cwd=ROOT, check=True, capture_output=True)
            port = free_port()
            server = subprocess.Popen(
                [*CLI, "serve", "--port", str(port), "--no-migrate"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            rows = []
            for workers in (1, 2):
                result = await one_round(f"127.0.0.1:{port}", env, workers, reports, concurrency)
                rows.append((workers, result))
            print(
                f"\n{reports} reports, {concurrency} concurrent filers, broker {broker}, "
                f"PostgreSQL at {ADMIN_URL.rsplit('@', 1)[-1]}\n"
            )
            print(
                "| analysis workers | filed/s (API) | analysed + notified/s | "
                "filing -> officer notification p50 | p99 |"
            )
            print("|---|---|---|---|---|")
            for workers, r in rows:
                print(
                    f"| {workers} | {r['filed_per_s']:.1f} | {r['analysed_per_s']:.1f} | "
                    f"{r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms |"
                )
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        await drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--broker", choices=("embedded", "rabbitmq"), default="embedded")
    args = parser.parse_args()
    asyncio.run(run(args.reports, args.concurrency, args.broker))


if __name__ == "__main__":
    main()
