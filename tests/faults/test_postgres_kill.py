"""SIGKILL PostgreSQL under Sync API writes: no acknowledged write lost, no 500s, no hangs.

The rule (issue 11, fault injection): requests during a database outage get 503 with
Retry-After, never a hang or a 500; /readyz is 503 until the database is back; after the
restart (crash recovery on the same data dir) writes succeed again and every 2xx survived.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fixtures.app import signup
from tests.fixtures.postgres_server import PostgresServer, postgres_server  # noqa: F401
from tests.fixtures.serve import TOWNHALL, serve_process, townhall_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

COLLECTIONS = "/api/v1/sync/collections"
DOCS = f"{COLLECTIONS}/faults/documents"
MERGE = {"Content-Type": "application/merge-patch+json"}
PROBLEM = "application/problem+json"
CLIENT_TIMEOUT = 10.0  # a response slower than this is a hang
WRITERS = 8
HEALTHY_SECONDS = 2.0
OUTAGE_SECONDS = 2.0
RECOVERY_TIMEOUT = 20.0
RECOVERED_SECONDS = 2.0


@dataclass
class Traffic:
    """What the writers saw, by phase (the phase when each response arrived)."""

    headers: dict[str, str]
    phase: str = "healthy"
    stopped: bool = False
    acked: dict[str, int] = field(default_factory=dict)  # doc id -> highest acknowledged version
    acked_writes: set[tuple[str, int]] = field(default_factory=set)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def check(self, what: str, response: httpx.Response) -> None:
        """A 2xx, a 503 problem with Retry-After, or a clean 4xx problem; anything else fails."""
        status = response.status_code
        self.statuses[(self.phase, status)] += 1
        if response.is_success:
            return
        problem_json = response.headers.get("content-type", "").startswith(PROBLEM)
        if status == 503 and "retry-after" in response.headers and problem_json:
            return
        if 400 <= status < 500 and status != 429 and problem_json:
            return
        self.failures.append(f"{self.phase}: {what} -> {status} {response.text[:200]}")

    def ack(self, doc_id: str, version: int) -> None:
        self.acked[doc_id] = max(self.acked.get(doc_id, 0), version)
        self.acked_writes.add((doc_id, version))


async def writer(client: httpx.AsyncClient, traffic: Traffic, index: int) -> None:
    """Create documents and merge-patch the acknowledged ones until stopped."""
    mine: list[str] = []
    n = 0
    while not traffic.stopped:
        n += 1
        if not mine or n % 4 == 0:
            doc_id = f"w{index}-{n}"
            what = f"POST {doc_id}"
            body = {"id": doc_id, "data": {"writer": index, "n": n}}
            request = client.build_request("POST", DOCS, json=body, headers=traffic.headers)
        else:
            doc_id = mine[n % len(mine)]
            what = f"PATCH {doc_id}"
            request = client.build_request(
                "PATCH",
                f"{DOCS}/{doc_id}",
                content=json.dumps({"n": n}).encode(),
                headers={**traffic.headers, **MERGE},
            )
        try:
            response = await client.send(request)
        except httpx.TimeoutException:
            traffic.failures.append(f"{traffic.phase}: {what} hung > {CLIENT_TIMEOUT} s")
            continue
        except httpx.TransportError as exc:
            traffic.failures.append(f"{traffic.phase}: {what} -> {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.1)
            continue
        traffic.check(what, response)
        if response.is_success:
            traffic.ack(doc_id, response.json()["version"])
            if doc_id not in mine:
                mine.append(doc_id)
        else:
            await asyncio.sleep(0.05)


async def readyz(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/readyz")


async def all_events(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The collection's whole event stream, page by page from seq 0."""
    events: list[dict[str, Any]] = []
    since = 0
    while True:
        page = await client.get(
            f"{COLLECTIONS}/faults/changes", params={"since": since, "limit": 1000}, headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert not body["reset"], body.get("reason")
        events += body["events"]
        since = body["next"]
        if not body["more"]:
            return events


async def create_database(server: PostgresServer, name: str) -> str:
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name).replace("postgresql://", "postgresql+asyncpg://")


def migrate(directory: Path, database_url: str) -> None:
    done = subprocess.run(
        [*TOWNHALL, "migrate"],
        cwd=directory,
        env=townhall_env(directory, TOWNHALL_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def run_traffic(
    client: httpx.AsyncClient, server: PostgresServer, traffic: Traffic
) -> dict[str, float]:
    """Healthy traffic, SIGKILL, outage, restart, recovery; returns the phase timings."""
    writers = [asyncio.create_task(writer(client, traffic, i)) for i in range(WRITERS)]
    timings: dict[str, float] = {}
    try:
        await asyncio.sleep(HEALTHY_SECONDS)
        assert traffic.acked, traffic.failures or traffic.statuses
        traffic.phase = "outage"
        await asyncio.to_thread(server.kill)
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < outage_ends:
            probe = await readyz(client)
            traffic.statuses[("readyz-outage", probe.status_code)] += 1
            assert probe.status_code == 503, probe.text
            assert "retry-after" in probe.headers
            assert "database" in probe.json()["failed"], probe.text
            await asyncio.sleep(0.2)
        traffic.phase = "restarting"
        started = time.monotonic()
        await asyncio.to_thread(server.start)
        timings["postgres_started"] = time.monotonic() - started
        while (await readyz(client)).status_code != 200:
            assert time.monotonic() - started < RECOVERY_TIMEOUT, "not ready after the restart"
            await asyncio.sleep(0.1)
        timings["ready_after_restart"] = time.monotonic() - started
        traffic.phase = "recovered"
        await asyncio.sleep(RECOVERED_SECONDS)
    finally:
        traffic.stopped = True
        await asyncio.gather(*writers, return_exceptions=True)
    return timings


async def test_sigkill_postgres_under_write_traffic(
    tmp_path: Path,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    database_url = await create_database(postgres_server, "townhall")
    migrate(tmp_path, database_url)
    with serve_process(
        tmp_path, TOWNHALL_DATABASE_URL=database_url, TOWNHALL_DATABASE_POOL_SIZE="10"
    ) as base:
        timeout = httpx.Timeout(CLIENT_TIMEOUT)
        async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
            assert (await readyz(client)).status_code == 200
            user = await signup(client, "faults@example.com")
            made = await client.post(
                COLLECTIONS, json={"name": "Faults", "slug": "faults"}, headers=user["headers"]
            )
            assert made.status_code == 201, made.text
            traffic = Traffic(headers=user["headers"])

            timings = await run_traffic(client, postgres_server, traffic)

            by_phase = {
                phase: {s: c for (p, s), c in sorted(traffic.statuses.items()) if p == phase}
                for phase in ("healthy", "outage", "readyz-outage", "restarting", "recovered")
            }
            print(f"\nstatuses by phase: {by_phase}; {timings}")
            assert not traffic.failures, traffic.failures[:20]
            assert set(by_phase["healthy"]) <= {200, 201}, by_phase
            assert by_phase["outage"].get(503), f"no 503 during the outage: {by_phase}"
            assert by_phase["recovered"], f"no write answered after the restart: {by_phase}"
            assert set(by_phase["recovered"]) <= {200, 201}, by_phase

            events = await all_events(client, user["headers"])
            seqs = [event["seq"] for event in events]
            written = {(event["doc_id"], event["version"]) for event in events}
            missing = sorted(traffic.acked_writes - written)
            newest: dict[str, int] = {}
            for event in events:
                newest[event["doc_id"]] = max(newest.get(event["doc_id"], 0), event["version"])
            lost = []
            for doc_id, version in sorted(traffic.acked.items()):
                got = await client.get(f"{DOCS}/{doc_id}", headers=user["headers"])
                stored = got.json().get("version", 0) if got.status_code == 200 else 0
                # At least what was acknowledged, and exactly what the event stream says.
                if stored < version or stored != newest.get(doc_id):
                    lost.append((doc_id, version, stored, newest.get(doc_id), got.status_code))
            print(
                f"acked writes: {len(traffic.acked_writes)} on {len(traffic.acked)} documents;"
                f" lost: {len(lost)}; events: {len(events)}; missing events: {len(missing)}"
            )
            assert not lost, lost[:20]
            assert seqs == list(range(1, len(seqs) + 1)), "the event stream has gaps"
            assert not missing, missing[:20]
