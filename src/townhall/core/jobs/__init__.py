"""Durable jobs on taskiq: @task/@sweeper, platform.jobs.enqueue, retries, dead letters, cron."""

from townhall.core.jobs.registry import (
    JobContext,
    JobError,
    RetryPolicy,
    UnknownTask,
    UnserializablePayload,
    sweeper,
    task,
)
from townhall.core.jobs.runtime import Jobs, enqueue_after_commit

__all__ = [
    "JobContext",
    "JobError",
    "Jobs",
    "RetryPolicy",
    "UnknownTask",
    "UnserializablePayload",
    "enqueue_after_commit",
    "sweeper",
    "task",
]
