"""The analysis pipeline through RabbitMQ: a separate worker consumes queue `report`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.fixtures.app import make_settings
from tests.fixtures.jobs import cleanup_broker, running_worker
from tests.fixtures.services import RABBITMQ_URL, require

from townhall.core.config import Settings
from townhall.core.jobs.models import Job
from townhall.core.platform import Platform

from .conftest import World

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url  # the broker is what this file tests


@pytest.fixture
async def settings(tmp_path: Path, database_url: str) -> AsyncIterator[Settings]:
    require("RabbitMQ", RABBITMQ_URL, 5672)
    s = make_settings(
        tmp_path,
        database_url=database_url,
        broker_url=RABBITMQ_URL,
        job_queue_prefix=f"th-test-{os.getpid()}-{uuid.uuid4().hex[:8]}.",
    )
    yield s
    await cleanup_broker(s)


async def test_filed_report_is_analysed_and_routed_by_a_rabbitmq_worker(
    world: World, platform: Platform
) -> None:
    async with running_worker(platform, ["report"]):
        report = await world.file("alice", description="도로 포트홀 pothole, 위험")
        analysed = await world.wait_analyzed(report["id"], "admin")
        assert analysed["routing"] == "routed"
        assert analysed["department_id"] == world.dept["roads"]
        notes = await world.client.get(
            "/api/v1/reports/notifications", headers=world.h("roads_officer")
        )
        assert [n["kind"] for n in notes.json()] == ["report.routed"]
    async with platform.db.session() as session:  # nothing went through the embedded broker
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
