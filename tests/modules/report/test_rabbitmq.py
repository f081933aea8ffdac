"""The analysis pipeline through RabbitMQ: a separate worker consumes queue `report`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.fixtures.app import make_settings
from tests.fixtures.jobs import cleanup_broker, running_worker
from tests.fixtures.services import RABBITMQ_URL, require

from townhall.core.config import Settings
from townhall.core.jobs.models import Job
from townhall.core.platform import Platform

from .conftest import World
from .lifecycle import lifecycle

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


async def test_lifecycle_with_a_rabbitmq_worker_and_live_notifications(
    app: FastAPI, world: World, platform: Platform
) -> None:
    """The same scenario as test_flow, with a separate consumer of queue `report` on RabbitMQ."""
    async with running_worker(platform, ["report"]):
        await lifecycle(app, world)
    async with platform.db.session() as session:  # nothing went through the embedded broker
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
