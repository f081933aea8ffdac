"""The `townhall` command: serve, reload, worker, migrate, createuser, demo."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from townhall.core import serve as supervisor
from townhall.core.config import ConfigurationError, get_settings
from townhall.core.jobs.cli import jobs_app, parse_queues, run_worker
from townhall.modules.report.cli import app as reports_app


class _Group(TyperGroup):
    """Remembers whether help was asked for, which the settings check lets through."""

    # Any: the context is typer's vendored click Context, which typer does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["help"] = any(arg in ctx.help_option_names for arg in args)
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_Group, help="townhall: five real-time apps on one platform.", no_args_is_help=True
)
console = Console(soft_wrap=True)  # long paths stay on one line, copyable and greppable
app.add_typer(jobs_app, name="jobs")
app.add_typer(reports_app, name="reports")  # Reports app (seed 004)


def refuse(message: str) -> NoReturn:
    """Print one plain line on stderr and exit 2 (a configuration error, not a crash)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.callback()
def main(ctx: typer.Context) -> None:
    """townhall: five real-time apps on one platform."""
    if ctx.meta.get("help"):
        return  # help must work even on a misconfigured machine
    try:
        get_settings().check_production()
    except ConfigurationError as exc:
        refuse(str(exc))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes on the one port; with 2 or more, SIGHUP or `townhall reload` "
            "replaces them one by one without downtime"
        ),
    ] = 1,
    migrate_db: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    pid_file: Annotated[
        Path | None,
        typer.Option(help="Supervisor pid file of --workers N (default: VAR_DIR/townhall.pid)"),
    ] = None,
) -> None:
    """Run the web server (embedded database migrated first)."""
    import uvicorn

    settings = get_settings()
    if workers > 1 and settings.redis_url is None:
        # The embedded cache is per process: a log-out or a rate limit would not reach the
        # other workers.
        refuse(f"--workers {workers} needs TOWNHALL_REDIS_URL (shared sessions and rate limits)")
    if migrate_db and settings.is_sqlite:
        _migrate()
    # One worker runs without a supervisor: nothing there could replace it, so no pid file.
    holding = (
        supervisor.supervisor_pid_file(pid_file or _default_pid_file())
        if workers > 1
        else contextlib.nullcontext()
    )
    try:
        with holding:
            uvicorn.run(
                "townhall.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                proxy_headers=True,
                log_config=None,
                ws_max_size=16 * 1024 * 1024,
                timeout_graceful_shutdown=supervisor.GRACEFUL_SHUTDOWN_SECONDS,
                timeout_worker_healthcheck=supervisor.WORKER_START_SECONDS,
                http="townhall.core.serve:DrainingHttpProtocol",
            )
    except supervisor.ReloadError as exc:
        refuse(str(exc))


@app.command(
    help="Replace the workers of a running `serve --workers N` one by one, without downtime "
    "(the same as SIGHUP to its supervisor). Each new worker serves before an old one stops; "
    "the old one finishes its in-flight requests and closes WebSockets with code 1012 "
    "(service restart), so clients reconnect. Exit 1 when no server runs or a worker was not "
    "replaced in time (the error says why; the server keeps serving)."
)
def reload(
    pid_file: Annotated[
        Path | None,
        typer.Option(help="The server's --pid-file (default: VAR_DIR/townhall.pid)"),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait until every worker is replaced")
    ] = True,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each worker's replacement", min=1.0)
    ] = supervisor.RELOAD_STEP_SECONDS,
) -> None:
    """Rolling reload of `serve --workers N` (SIGHUP to the supervisor in the pid file)."""
    try:
        pids = supervisor.reload(
            pid_file or _default_pid_file(), step_timeout=timeout if wait else 0
        )
    except supervisor.ReloadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if pids:
        console.print(f"[green]reloaded[/green]: workers {', '.join(map(str, sorted(pids)))}")
    else:
        console.print("reload signalled: the workers are replaced one by one")


def _default_pid_file() -> Path:
    return get_settings().var_dir / supervisor.PID_FILE_NAME


def _migrate() -> None:
    from townhall.core.migrate import upgrade

    settings = get_settings()
    upgrade(str(settings.database_url))
    asyncio.run(_sync_roles())


async def _sync_roles() -> None:
    from townhall.core.auth.rbac import sync_roles
    from townhall.core.platform import build_platform

    async with build_platform(get_settings()) as platform, platform.db.session() as session:
        await sync_roles(session)


@app.command()
def migrate() -> None:
    """Apply every pending database migration."""
    _migrate()
    console.print("[green]database is up to date[/green]")


@app.command()
def worker(
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to consume (default: all)")
    ] = None,
    schedules: Annotated[
        bool, typer.Option("--schedules/--no-schedules", help="Also run cron jobs and sweepers")
    ] = True,
    migrate_db: Annotated[bool, typer.Option("--migrate/--no-migrate")] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this worker's Prometheus /metrics on this port", min=1, max=65535),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port")] = "127.0.0.1",
) -> None:
    """Run job consumers (and cron schedules and sweepers) until SIGTERM."""
    settings = get_settings()
    settings.check_production()
    selected = parse_queues(queues)
    if migrate_db and settings.is_sqlite:
        _migrate()
    from townhall.core.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
    run_worker(settings, selected, schedules=schedules, metrics=(metrics_host, metrics_port))


@app.command()
def createuser(
    email: Annotated[str, typer.Argument(help="Email of the new account")],
    display_name: Annotated[str, typer.Option("--name", help="Display name")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Grant the admin role")] = False,
    password: Annotated[str | None, typer.Option(help="Password (prompted when omitted)")] = None,
) -> None:
    """Create an account (optionally an admin)."""
    if password is None:
        password = getpass.getpass("Password: ")
    if len(password) < 8:
        console.print("[red]password must have at least 8 characters[/red]")
        raise typer.Exit(2)
    roles = ("user", "admin") if admin else ("user",)
    asyncio.run(_create_user(email, display_name or email.split("@")[0], password, roles))
    console.print(f"[green]created {email}[/green]" + (" (admin)" if admin else ""))


async def _create_user(email: str, name: str, password: str, roles: tuple[str, ...]) -> None:
    from townhall.core.auth.service import AuthService
    from townhall.core.errors import AppError
    from townhall.core.platform import build_platform

    async with build_platform(get_settings()) as platform:
        try:
            async with platform.db.session() as session:
                await AuthService(platform.settings, platform.cache).create_user(
                    session, email=email, display_name=name, password=password, roles=roles
                )
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(1) from exc


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Only on an empty database")] = False,
) -> None:
    """Load demo users and demo data of every app."""
    from townhall.demo import load_demo

    loaded = asyncio.run(load_demo(get_settings(), only_if_empty=if_empty))
    if loaded:
        console.print("[green]demo data loaded[/green]; accounts are listed in the README")
    else:
        console.print("database already has data; demo not loaded")


@app.command("import-bookmarks")
def import_bookmarks(
    file: Annotated[Path, typer.Argument(help="Netscape bookmark file (browser/Pocket export)")],
    user: Annotated[str, typer.Option("--user", help="Email of the account to import into")],
) -> None:
    """Import a bookmark file into a user's Links (scraped by the workers afterwards)."""
    from townhall.core.errors import AppError
    from townhall.modules.link.cli import import_bookmarks as run_import

    try:
        result = asyncio.run(run_import(get_settings(), file, user, console))
    except (AppError, OSError) as exc:
        console.print(f"[red]{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]{result.created} imported[/green], {result.duplicates} already saved, "
        f"{len(result.errors)} skipped"
    )
    for error in result.errors[:20]:
        console.print(f"  [yellow]skipped[/yellow] {error}")


def _backup_failed(exc: Exception) -> NoReturn:
    """Print why a backup or restore stopped, on stderr, and exit 1."""
    typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
    raise typer.Exit(1) from exc


@app.command()
def backup(
    dest: Annotated[
        Path, typer.Argument(help="Archive to write (.tar.gz), or a directory for a dated one")
    ],
) -> None:
    """Back up the database and every stored object into one .tar.gz archive."""
    from townhall.core.backup import create_backup, progress_bar
    from townhall.core.errors import AppError

    try:
        with progress_bar(console) as progress:
            result = asyncio.run(create_backup(get_settings(), dest, progress))
    except (AppError, OSError) as exc:
        _backup_failed(exc)
    console.print(
        f"[green]backup written to {result.path}[/green] ({result.manifest.object_count} objects)"
    )


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="Archive written by `townhall backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="Restore even if the target already has data")
    ] = False,
) -> None:
    """Restore a backup into an empty database and object storage, verifying every checksum."""
    from townhall.core.backup import progress_bar, restore_backup
    from townhall.core.errors import AppError

    try:
        with progress_bar(console) as progress:
            result = asyncio.run(
                restore_backup(get_settings(), src, force=force, progress=progress)
            )
    except (AppError, OSError) as exc:
        _backup_failed(exc)
    migrated = "; migrations applied" if result.upgraded else ""
    console.print(
        f"[green]restored {result.manifest.object_count} objects and the database[/green] "
        f"(backup of {result.manifest.created_at:%Y-%m-%d %H:%M} UTC{migrated})"
    )


if __name__ == "__main__":
    app()
