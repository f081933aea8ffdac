"""`townhall worker` and `townhall jobs dlq list|show|retry|discard`."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from townhall.core.config import Settings
    from townhall.core.platform import Platform

T = TypeVar("T")

jobs_app = typer.Typer(help="Inspect and operate the job queue.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter store: jobs that failed every attempt.")
jobs_app.add_typer(dlq_app, name="dlq")
console = Console(soft_wrap=True)  # long paths stay on one line, copyable and greppable


def run_worker(
    settings: Settings,
    queues: list[str] | None,
    *,
    schedules: bool = True,
    metrics: tuple[str, int | None] = ("127.0.0.1", None),
) -> None:
    """Consume `queues` (all when None) until SIGINT/SIGTERM, then finish running jobs.

    `metrics` = (host, port): with a port, this process's job counters are served at
    http://host:port/metrics (a worker has no web server of its own for Prometheus to scrape).
    """
    host, port = metrics
    if port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(port, addr=host)
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot serve metrics on {host}:{port}: {exc}", param_hint="--metrics-port"
            ) from exc
    asyncio.run(_worker(settings, queues, schedules))


async def _worker(settings: Settings, queues: list[str] | None, schedules: bool) -> None:
    from townhall.core.platform import build_platform

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with build_platform(settings) as platform:
        await platform.jobs.run_worker(stop, queues, schedules=schedules)


def parse_queues(value: str | None) -> list[str] | None:
    from townhall.core.jobs.registry import QUEUE

    if not value:
        return None
    queues = [q.strip() for q in value.split(",") if q.strip()]
    bad = [q for q in queues if not QUEUE.match(q)]
    if bad or not queues:
        raise typer.BadParameter(f"not queue names: {', '.join(bad) or value!r}")
    return queues


def _run(action: Callable[[Platform], Awaitable[T]]) -> T:
    from townhall.core.config import get_settings
    from townhall.core.platform import build_platform

    async def main() -> T:
        async with build_platform(get_settings()) as platform:
            return await action(platform)

    return asyncio.run(main())


def _letter_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a dead-letter id") from None


def _fail_on_app_error(action: Callable[[Platform], Awaitable[T]]) -> T:
    from townhall.core.errors import AppError

    try:
        return _run(action)
    except AppError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc


@dlq_app.command("list")
def dlq_list(
    status: Annotated[str, typer.Option(help="dead, retrying, retried, discarded or all")] = "dead",
    task: Annotated[str | None, typer.Option(help="Only this task")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """List dead letters, newest first."""
    from townhall.core.jobs import service

    if status not in ("dead", "retrying", "retried", "discarded", "all"):
        raise typer.BadParameter("status must be dead, retrying, retried, discarded or all")

    async def action(platform: Platform) -> None:
        async with platform.db.session() as session:
            items, total = await service.list_dead_letters(
                session,
                status=None if status == "all" else status,
                task=task,
                limit=limit,
                offset=offset,
            )
        # Tab-separated, one letter a line: readable, and easy to cut/grep in scripts.
        typer.echo("\t".join(("id", "task", "queue", "attempts", "failed_at", "status", "error")))
        for item in items:
            last_line = (item.error.strip().splitlines() or [""])[-1][:120]
            row = (
                str(item.id),
                item.task,
                item.queue,
                str(item.attempts),
                item.failed_at.isoformat(timespec="seconds"),
                item.status,
                last_line,
            )
            typer.echo("\t".join(row))
        console.print(f"{len(items)} of {total} dead letters")

    _run(action)


@dlq_app.command("show")
def dlq_show(letter_id: Annotated[str, typer.Argument(help="Dead-letter id")]) -> None:
    """Print one dead letter (arguments and the full error) as JSON."""
    from townhall.core.jobs import service
    from townhall.core.jobs.schemas import DeadLetterOut

    parsed = _letter_id(letter_id)

    async def action(platform: Platform) -> None:
        async with platform.db.session() as session:
            letter = await service.get_dead_letter(session, parsed)
            body = DeadLetterOut.of(letter).model_dump(mode="json")
        typer.echo(json.dumps(body, indent=2))

    _fail_on_app_error(action)


@dlq_app.command("retry")
def dlq_retry(letter_id: Annotated[str, typer.Argument(help="Dead-letter id")]) -> None:
    """Send the job again with fresh attempts."""
    from townhall.core.jobs import service

    parsed = _letter_id(letter_id)

    async def action(platform: Platform) -> tuple[str, str]:
        async with platform.db.session() as session:
            _letter, job_id = await service.retry_dead_letter(session, platform.jobs, parsed)
        # The job was sent after the commit; the letter says whether the broker took it.
        async with platform.db.session() as session:
            letter = await service.get_dead_letter(session, parsed)
        return job_id, letter.status

    job_id, status = _fail_on_app_error(action)
    if status == "retried":
        console.print(f"[green]retried {letter_id} as job {job_id}[/green]")
    else:
        console.print(
            f"[yellow]{letter_id} is marked for retry as job {job_id}, but the broker did not "
            "take it yet; a worker's jobs.dlq_retrying sweeper sends it[/yellow]"
        )


@dlq_app.command("discard")
def dlq_discard(letter_id: Annotated[str, typer.Argument(help="Dead-letter id")]) -> None:
    """Drop the job for good (the letter is kept, marked discarded)."""
    from townhall.core.jobs import service

    parsed = _letter_id(letter_id)

    async def action(platform: Platform) -> None:
        async with platform.db.session() as session:
            await service.discard_dead_letter(session, parsed)

    _fail_on_app_error(action)
    console.print(f"[green]discarded {letter_id}[/green]")
