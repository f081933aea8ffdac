"""Cron ticks and sweepers run once per tick however many workers share the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fixtures import jobs as fx
from tests.fixtures.jobs import QUEUE, read, record, running_worker, wait_until
from townhall.core.config import Settings
from townhall.core.jobs import JobContext, JobError, sweeper, task
from townhall.core.jobs.models import JobTick
from townhall.core.jobs.registry import SWEEPERS, TASKS
from townhall.core.jobs.runtime import due_ticks
from townhall.core.platform import Platform, build_platform

jobs_settings = fx.jobs_settings
jobs_platform = fx.jobs_platform

LEAP = datetime(2028, 2, 29, 0, 0, 5, tzinfo=UTC)


@pytest.fixture
def leap_job(tmp_path: Path) -> Iterator[str]:
    """A cron job due only at midnight on 29 February (never by accident during a test)."""
    log = str(tmp_path / "cron.jsonl")

    @task("testjobs.leap", queue=QUEUE, cron="0 0 29 2 *", retries=0)
    async def leap(ctx: JobContext) -> None:
        record(log, tick=ctx.tick.isoformat() if ctx.tick else None)

    yield log
    TASKS.pop("testjobs.leap", None)


async def test_cron_tick_is_claimed_by_one_of_many_processes(
    jobs_platform: Platform, jobs_settings: Settings, leap_job: str
) -> None:
    async with build_platform(jobs_settings) as other:
        won = await asyncio.gather(
            *(p.jobs.run_due_schedules(LEAP) for p in [jobs_platform, other] * 3)
        )
    # Other apps' schedules may be due at that instant too; count this job only.
    assert sum(w.count("testjobs.leap") for w in won) == 1, won
    await wait_until(lambda: len(read(leap_job)) == 1, message="the cron job")
    await asyncio.sleep(0.5)
    assert read(leap_job) == [{**read(leap_job)[0], "tick": "2028-02-29T00:00:00+00:00"}]
    # A restarted scheduler in the same minute (taskiq#244) does not send it again.
    async with build_platform(jobs_settings) as restarted:
        again = await restarted.jobs.run_due_schedules(LEAP.replace(second=40))
    assert "testjobs.leap" not in again


def test_due_ticks_follow_the_cron_expression() -> None:
    def spec(cron: str) -> object:
        return TASKS["testjobs.record"].__class__(
            name="x.y",
            fn=fx.record_job,
            queue=QUEUE,
            policy=TASKS["testjobs.record"].policy,
            cron=cron,
        )

    hourly = spec("0 * * * *")
    assert due_ticks(hourly, datetime(2026, 5, 1, 11, 0, 20, tzinfo=UTC)) == [  # type: ignore[arg-type]
        datetime(2026, 5, 1, 11, 0, tzinfo=UTC)
    ]
    assert due_ticks(hourly, datetime(2026, 5, 1, 11, 30, 0, tzinfo=UTC)) == []  # type: ignore[arg-type]
    # Just after the minute, the previous tick is still due (a late loop catches up once).
    assert due_ticks(hourly, datetime(2026, 5, 1, 12, 1, 3, tzinfo=UTC)) == [  # type: ignore[arg-type]
        datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    ]


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(JobError, match="five fields"):
        task("testjobs.bad", cron="* * *")
    with pytest.raises(JobError, match=r"<app>\.<verb>"):
        task("NoDots")
    with pytest.raises(JobError, match="queue name"):
        task("testjobs.bad", queue="Bad Queue!")
    with pytest.raises(JobError, match="interval"):
        sweeper("testjobs.bad", interval=0)


async def test_sweeper_runs_once_per_interval_and_re_enqueues(
    jobs_platform: Platform, jobs_settings: Settings, tmp_path: Path
) -> None:
    log = str(tmp_path / "swept.jsonl")
    runs: list[float] = []

    @sweeper("testjobs.stalled", interval=0.5)
    async def stalled(platform: Platform) -> int:
        runs.append(time.monotonic())
        await platform.jobs.enqueue("testjobs.record", path=log, key=f"swept-{len(runs)}")
        return 1

    try:
        async with build_platform(jobs_settings) as other, running_worker(other):
            started = time.monotonic()
            await wait_until(lambda: len(runs) >= 4, message="four sweeps")
            elapsed = time.monotonic() - started
            count = len(runs)
    finally:
        SWEEPERS.pop("testjobs.stalled", None)
    # Two workers sweep together, yet each 0.5 s tick runs once.
    assert count <= elapsed / 0.5 + 2
    async with jobs_platform.db.session() as session:
        claimed = (
            await session.execute(
                select(func.count())
                .select_from(JobTick)
                .where(JobTick.name == "sweeper:testjobs.stalled")
            )
        ).scalar_one()
    assert claimed >= count
    await wait_until(lambda: len(read(log)) >= 4, message="the re-enqueued jobs")
    assert {r["key"] for r in read(log)} >= {"swept-1", "swept-2", "swept-3", "swept-4"}
