"""`townhall reports ...`: batch re-analysis."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

# Registers the app's roles, so `townhall migrate` (which imports this CLI) syncs them.
from townhall.modules.report import auth as _roles  # noqa: F401

app = typer.Typer(help="Reports app (seed 004).", no_args_is_help=True)


@app.command()
def reanalyze(
    status: Annotated[
        list[str] | None, typer.Option(help="Only reports in this status (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many reports")] = 1000,
) -> None:
    """Enqueue report.analyze for reports (default: every open one)."""
    from pydantic import ValidationError

    from townhall.modules.report.schemas import Reanalyze

    try:
        # The admin API's own rules: known statuses only, 1 <= limit <= 100,000.
        request = Reanalyze(**({"status": status} if status else {}), limit=limit)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: {problems}", err=True)
        raise typer.Exit(2) from exc
    count = asyncio.run(_reanalyze(list(request.status), request.limit))
    typer.echo(f"enqueued {count} report(s) for analysis")


async def _reanalyze(status: list[str], limit: int) -> int:
    from townhall.core.config import get_settings
    from townhall.core.platform import build_platform
    from townhall.modules.report import tasks  # registers report.analyze
    from townhall.modules.report.service import enqueue_reanalysis

    del tasks

    async with build_platform(get_settings()) as platform, platform.db.session() as session:
        return await enqueue_reanalysis(session, platform, status, limit)
