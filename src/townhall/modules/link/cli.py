"""`townhall import-bookmarks FILE --user EMAIL`: a Netscape file into a user's links."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townhall.core.config import Settings
from townhall.core.errors import AppError
from townhall.modules.link.schemas import ImportResult


def _read(path: Path) -> str:
    if path.stat().st_size > 100 * 1024 * 1024:
        raise AppError(f"{path} is larger than 100 MB")
    return path.read_text(encoding="utf-8", errors="replace")


async def import_bookmarks(
    settings: Settings, path: Path, email: str, console: Console
) -> ImportResult:
    """Parse, dedupe and save every bookmark (pipelines are queued for the workers)."""
    from townhall.core.auth.repository import UserRepository
    from townhall.core.platform import build_platform
    from townhall.modules.link.bookmarks import parse_netscape
    from townhall.modules.link.service import LinkService

    entries = parse_netscape(await asyncio.to_thread(_read, path))
    async with build_platform(settings) as platform, platform.db.session() as session:
        user = await UserRepository(session).get_by_email(email)
        if user is None:
            raise AppError(f"no account with email {email}")
        with Progress(
            TextColumn("[bold]importing[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("import", total=len(entries))

            def advance(done: int) -> None:
                progress.update(bar, completed=done)

            result = await LinkService(session, platform).import_bookmarks(
                user.id, entries, on_progress=advance
            )
            progress.update(bar, completed=len(entries))
    return result
