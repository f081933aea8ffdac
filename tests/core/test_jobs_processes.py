"""Jobs across real processes: cron in two workers, kill -9, `townhall worker` on RabbitMQ,
and brokers that go away and come back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.database import empty_tables
from tests.fixtures.jobs import (
    OTHER_QUEUE,
    QUEUE,
    cleanup_broker,
    job_settings,
    platform_with_worker,
    read,
    start_townhall,
    stop_process,
    wait_until,
)
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import RABBITMQ_URL, free_port, require
from townhall.core.migrate import upgrade
from townhall.core.platform import Platform, build_platform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def logs(*paths: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in paths if p.exists())


async def wait_http(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(1200):  # a loaded CI machine can take a minute to import everything
            if proc.poll() is not None:
                raise AssertionError(f"server exited early\n{logs(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"server did not come up\n{logs(log)}")


async def enqueue_when_back(platform: Platform, name: str, **kwargs: object) -> None:
    """Keep trying while the broker reconnects; fail if it never comes back."""
    last: Exception | None = None
    for _ in range(150):
        try:
            await platform.jobs.enqueue(name, **kwargs)
            return
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"broker never came back: {last!r}")


@pytest.mark.postgres
async def test_cron_runs_once_per_tick_across_two_workers(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = job_settings(tmp_path, postgres_database_url, None)
    ticks = tmp_path / "ticks.jsonl"
    paths = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    workers = [
        start_townhall(
            ["worker", "--no-migrate"], settings, path, TOWNHALL_TEST_TICK_LOG=str(ticks)
        )
        for path in paths
    ]
    try:
        await wait_until(
            lambda: len({r["tick"] for r in read(ticks)}) >= 3, timeout=150, message="3 ticks"
        )
        assert all(w.poll() is None for w in workers), logs(*paths)
    finally:
        for worker in workers:
            stop_process(worker)
        await empty_tables(postgres_database_url)
    per_tick = collections.Counter(r["tick"] for r in read(ticks))
    assert set(per_tick.values()) == {1}, (per_tick, logs(*paths))


async def test_accepted_job_survives_kill_9_of_the_embedded_worker(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}"
    await asyncio.to_thread(upgrade, database)
    settings = job_settings(tmp_path, database, None, job_lease_seconds=2.0)
    port = free_port()
    runs = str(tmp_path / "runs.jsonl")
    servers: list[subprocess.Popen[bytes]] = []

    async def serve() -> subprocess.Popen[bytes]:
        log = tmp_path / f"serve{len(servers) + 1}.log"
        proc = start_townhall(
            ["serve", "--port", str(port), "--no-migrate"],
            settings,
            log,
            TOWNHALL_WORKER_IN_PROCESS="true",
        )
        servers.append(proc)
        await wait_http(port, proc, log)
        return proc

    def kill(proc: subprocess.Popen[bytes]) -> None:
        proc.kill()  # SIGKILL: no shutdown hook runs
        proc.wait(10)

    try:
        first = await serve()
        async with build_platform(settings) as producer:
            await producer.jobs.enqueue("testjobs.record", delay=1.5, path=runs, key="accepted")
        kill(first)
        await asyncio.sleep(2.0)
        assert read(runs) == []  # due, but nobody is running

        second = await serve()
        await wait_until(lambda: len(read(runs)) == 1, timeout=60, message="the accepted job")
        await asyncio.sleep(1.0)
        assert [(r["key"], r["pid"]) for r in read(runs)] == [("accepted", second.pid)]

        # Killed while running: the lease expires and the next process runs it to the end.
        marker = tmp_path / "first-run"
        async with build_platform(settings) as producer:
            await producer.jobs.enqueue("testjobs.slow", path=runs, key="slow", marker=str(marker))
        await wait_until(lambda: marker.exists(), timeout=60, message="the slow job to start")
        kill(second)
        third = await serve()
        await wait_until(
            lambda: any(r.get("event") == "done" for r in read(runs)), timeout=60, message="done"
        )
        await asyncio.sleep(1.0)
        slow = [(r["event"], r["pid"]) for r in read(runs) if r["key"] == "slow"]
        assert slow == [("start", second.pid), ("start", third.pid), ("done", third.pid)]
    finally:
        for proc in servers:
            stop_process(proc)


@pytest.mark.rabbitmq
async def test_worker_consumes_the_selected_rabbitmq_queues(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    require("RabbitMQ", RABBITMQ_URL, 5672)
    settings = job_settings(tmp_path, sqlite_database_url, RABBITMQ_URL)
    runs = str(tmp_path / "runs.jsonl")
    paths = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers: list[subprocess.Popen[bytes]] = []

    def keys() -> list[str]:
        return [r["key"] for r in read(runs)]

    try:
        async with build_platform(settings) as producer:
            workers.append(
                start_townhall(
                    ["worker", "--queues", QUEUE, "--no-migrate", "--no-schedules"],
                    settings,
                    paths[0],
                )
            )
            await producer.jobs.enqueue("testjobs.record", path=runs, key="a")
            await producer.jobs.enqueue("testjobs.other", path=runs, key="b")
            await producer.jobs.enqueue("testjobs.flaky", path=runs, key="f", fail_times=1)
            await wait_until(
                lambda: "a" in keys() and keys().count("f") == 2,
                timeout=150,
                message=f"the worker to run a and f\n{logs(*paths)}",
            )
            await asyncio.sleep(1.0)
            assert "b" not in keys()  # its queue is not consumed by this worker
            assert {r["pid"] for r in read(runs)} == {workers[0].pid}
            flaky = [r for r in read(runs) if r["key"] == "f"]
            assert flaky[1]["t"] - flaky[0]["t"] >= 0.4 * 0.95  # the retry waited its delay

            workers.append(
                start_townhall(
                    ["worker", "--queues", OTHER_QUEUE, "--no-migrate", "--no-schedules"],
                    settings,
                    paths[1],
                )
            )
            await wait_until(lambda: "b" in keys(), timeout=150, message="the second worker")
            [b] = [r for r in read(runs) if r["key"] == "b"]
            assert b["pid"] == workers[1].pid
    finally:
        for worker in workers:
            stop_process(worker)
        await cleanup_broker(settings)
        await empty_tables(sqlite_database_url)


async def test_worker_serves_its_job_metrics(sqlite_database_url: str, tmp_path: Path) -> None:
    settings = job_settings(tmp_path, sqlite_database_url, None)
    runs = str(tmp_path / "runs.jsonl")
    log = tmp_path / "worker.log"
    port = free_port()
    worker = start_townhall(
        ["worker", "--no-migrate", "--no-schedules", "--metrics-port", str(port)], settings, log
    )
    try:
        async with build_platform(settings) as producer:
            await producer.jobs.enqueue("testjobs.record", path=runs, key="m")
        await wait_until(lambda: len(read(runs)) == 1, timeout=150, message=f"the job\n{logs(log)}")
        assert read(runs)[0]["pid"] == worker.pid
        line = 'townhall_jobs_total{event="succeeded",task="testjobs.record"} 1.0'
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # the counter moves just after the job's last line
                body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if line in body:
                    break
                await asyncio.sleep(0.1)
        assert line in body, body[-2000:]
        assert 'townhall_jobs_total{event="started",task="testjobs.record"} 1.0' in body
    finally:
        stop_process(worker)
        await empty_tables(sqlite_database_url)


@pytest.mark.redis
async def test_redis_broker_restart_loses_nothing_sent_after_it(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    server = RedisServer()
    server.start()
    runs = str(tmp_path / "runs.jsonl")
    settings = job_settings(tmp_path, sqlite_database_url, server.url)
    try:
        async with platform_with_worker(settings) as platform:
            await platform.jobs.enqueue("testjobs.record", path=runs, key="before")
            await wait_until(lambda: len(read(runs)) == 1, message="the first job")
            server.restart()
            await enqueue_when_back(platform, "testjobs.record", path=runs, key="after")
            await wait_until(lambda: len(read(runs)) == 2, timeout=60, message="the job after")
            await platform.jobs.check(platform)
        assert [r["key"] for r in read(runs)] == ["before", "after"]
    finally:
        server.stop()
        await empty_tables(sqlite_database_url)


class TcpProxy:
    """A TCP forwarder in front of a real server that a test can cut and restore."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, like a broker that went away."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.difference_update({writer, up_writer})


@pytest.fixture
async def rabbit_proxy() -> AsyncIterator[TcpProxy]:
    require("RabbitMQ", RABBITMQ_URL, 5672)
    proxy = TcpProxy(httpx.URL(RABBITMQ_URL).port or 5672)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.mark.rabbitmq
async def test_rabbitmq_going_away_and_coming_back(
    rabbit_proxy: TcpProxy, sqlite_database_url: str, tmp_path: Path
) -> None:
    url = httpx.URL(RABBITMQ_URL).copy_with(port=rabbit_proxy.port)
    settings = job_settings(tmp_path, sqlite_database_url, str(url))
    runs = str(tmp_path / "runs.jsonl")
    try:
        async with platform_with_worker(settings) as platform:
            await platform.jobs.enqueue("testjobs.record", path=runs, key="before")
            await wait_until(lambda: len(read(runs)) == 1, message="the first job")
            await rabbit_proxy.cut()
            await asyncio.sleep(1.0)
            with pytest.raises(Exception):  # noqa: B017, PT011 (any connection error)
                await asyncio.wait_for(platform.jobs.check(platform), 3)
            await rabbit_proxy.start()
            await enqueue_when_back(platform, "testjobs.record", path=runs, key="after")
            await wait_until(lambda: len(read(runs)) == 2, timeout=150, message="the job after")
        assert [r["key"] for r in read(runs)] == ["before", "after"]
    finally:
        await cleanup_broker(settings)
        await empty_tables(sqlite_database_url)
