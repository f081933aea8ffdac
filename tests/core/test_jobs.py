"""Jobs contract: every broker runs jobs once, retries with real delays, dead-letters after N."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures import jobs as fx
from tests.fixtures.jobs import QUEUE, read, wait_until
from townhall.core.jobs import (
    RetryPolicy,
    UnknownTask,
    UnserializablePayload,
    enqueue_after_commit,
)
from townhall.core.jobs.models import DeadLetter, Job
from townhall.core.platform import Platform

jobs_settings = fx.jobs_settings
jobs_platform = fx.jobs_platform


async def test_enqueued_job_runs_once(jobs_platform: Platform, tmp_path: Path) -> None:
    log = str(tmp_path / "runs.jsonl")
    job_id = await jobs_platform.jobs.enqueue("testjobs.record", path=log, key="a")
    await wait_until(lambda: len(read(log)) == 1, message="the job to run")
    await _settle(jobs_platform)
    runs = read(log)
    assert [(r["key"], r["attempt"], r["job_id"]) for r in runs] == [("a", 1, job_id)]


async def test_delay_is_honoured(jobs_platform: Platform, tmp_path: Path) -> None:
    log = str(tmp_path / "runs.jsonl")
    sent = time.time()
    await jobs_platform.jobs.enqueue("testjobs.record", delay=1.0, path=log, key="later")
    await jobs_platform.jobs.enqueue("testjobs.record", path=log, key="now")
    await wait_until(lambda: len(read(log)) == 2, message="both jobs to run")
    runs = {r["key"]: r["t"] for r in read(log)}
    assert runs["now"] < runs["later"]
    assert runs["later"] - sent >= 0.95


async def test_retries_wait_the_backoff_delays(jobs_platform: Platform, tmp_path: Path) -> None:
    log = str(tmp_path / "runs.jsonl")
    await jobs_platform.jobs.enqueue("testjobs.flaky", path=log, key="f", fail_times=2)
    await wait_until(lambda: len(read(log)) == 3, message="two retries")
    await _settle(jobs_platform)
    runs = read(log)
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert len({r["job_id"] for r in runs}) == 1
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(runs)]
    # retry_delay=0.4, backoff=2: the first retry waits 0.4 s, the second 0.8 s.
    assert gaps[0] >= 0.4 * 0.95
    assert gaps[1] >= 0.8 * 0.95
    assert await _count(jobs_platform, DeadLetter) == 0


async def test_dead_letter_after_last_attempt(jobs_platform: Platform, tmp_path: Path) -> None:
    log = str(tmp_path / "runs.jsonl")
    await jobs_platform.jobs.enqueue("testjobs.doomed", path=log, key="d")
    await wait_until(lambda: any(r.get("event") == "dead" for r in read(log)), message="on_dead")
    await _settle(jobs_platform)
    runs = read(log)
    assert [r.get("event", "run") for r in runs] == ["run", "run", "run", "dead"]
    assert runs[-1]["attempt"] == 3
    assert "ValueError: always broken" in runs[-1]["error"]
    async with jobs_platform.db.session() as session:
        letters = (await session.execute(select(DeadLetter))).scalars().all()
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.task, letter.queue, letter.attempts, letter.status) == (
        "testjobs.doomed",
        QUEUE,
        3,
        "dead",
    )
    assert letter.kwargs == {"path": log, "key": "d"}
    assert "always broken" in letter.error


async def test_job_longer_than_the_lease_runs_once_with_two_workers(
    jobs_platform: Platform, tmp_path: Path
) -> None:
    log = str(tmp_path / "runs.jsonl")
    lease = jobs_platform.settings.job_lease_seconds
    async with fx.running_worker(jobs_platform):  # a second worker beside the fixture's
        await jobs_platform.jobs.enqueue("testjobs.long", path=log, key="l", seconds=lease * 2)
        await wait_until(
            lambda: any(r["event"] == "done" for r in read(log)), message="the long job"
        )
        await _settle(jobs_platform)
    assert [(r["event"], r["attempt"]) for r in read(log)] == [("start", 1), ("done", 1)]


def test_jitter_lengthens_each_retry_delay_by_at_most_a_quarter() -> None:
    jittered = RetryPolicy(retries=5, delay=2.0, backoff=3.0, jitter=True, max_delay=50.0)
    plain = RetryPolicy(retries=5, delay=2.0, backoff=3.0, jitter=False, max_delay=50.0)
    # attempt 2 is the first retry; the cap applies before the jitter.
    for attempt, base in [(2, 2.0), (3, 6.0), (4, 18.0), (5, 50.0), (6, 50.0)]:
        delays = [jittered.delay_before(attempt) for _ in range(200)]
        assert all(base <= d <= base * 1.25 for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > base * 0.05  # really spread, not a constant
        assert plain.delay_before(attempt) == base


async def test_bad_payloads_are_refused(jobs_platform: Platform) -> None:
    with pytest.raises(UnserializablePayload, match="JSON"):
        await jobs_platform.jobs.enqueue("testjobs.record", path=object(), key="x")
    with pytest.raises(UnserializablePayload):
        await jobs_platform.jobs.enqueue("testjobs.record", path=float("nan"), key="x")
    with pytest.raises(UnknownTask, match=r"nope\.nothing"):
        await jobs_platform.jobs.enqueue("nope.nothing")


async def test_enqueue_after_commit_sends_only_committed_work(
    jobs_platform: Platform, tmp_path: Path
) -> None:
    log = str(tmp_path / "runs.jsonl")

    async def rolled_back() -> None:
        async with jobs_platform.db.session() as session:
            enqueue_after_commit(session, jobs_platform.jobs, "testjobs.record", path=log, key="no")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    async with jobs_platform.db.session() as session:
        enqueue_after_commit(session, jobs_platform.jobs, "testjobs.record", path=log, key="yes")
    await wait_until(lambda: len(read(log)) == 1, message="the committed job")
    await _settle(jobs_platform)
    assert [r["key"] for r in read(log)] == ["yes"]


async def _settle(platform: Platform) -> None:
    """Give a wrongly duplicated delivery time to show up, and the ack time to land."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not platform.jobs.embedded or await _count(platform, Job) == 0:
            break
        await _sleep(0.05)
    await _sleep(0.5)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def _count(platform: Platform, model: type[Job] | type[DeadLetter]) -> int:
    async with platform.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())
