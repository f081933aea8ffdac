"""Backup and restore: one .tar.gz with the database dump, every stored object and a manifest."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal, TypeVar

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from townhall.core.backup.database import (
    DUMP_NAMES,
    BackupError,
    Dialect,
    dialect_of,
    dump_database,
    restore_database,
    sqlite_path,
)
from townhall.core.backup.repository import alembic_revisions, first_table_with_rows
from townhall.core.config import Settings
from townhall.core.db import Database, DatabaseUnavailable, build_engine, utcnow
from townhall.core.migrate import alembic_config, upgrade
from townhall.core.storage import BlobNotFound, InvalidKey, Storage, build_storage, validate_key

T = TypeVar("T")
MANIFEST = "manifest.json"
OBJECTS = "objects/"
_CHUNK = 1024 * 1024
# Objects are spooled in memory up to this size on their way into the archive, then to disk.
_SPOOL_BYTES = 8 * 1024 * 1024
# Reading an archive can fail in any of these ways when it is truncated or not a gzip'd tar.
_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


class ObjectEntry(BaseModel):
    """One stored object, archived as objects/KEY."""

    key: str
    size: int
    content_type: str
    sha256: str


class DatabaseEntry(BaseModel):
    """The database dump in the archive."""

    dialect: Dialect
    file: str
    size: int
    sha256: str


class Manifest(BaseModel):
    """manifest.json: what the archive holds and the checksum of every file in it."""

    format: Literal["townhall-backup"] = "townhall-backup"
    format_version: Literal[1] = 1
    townhall_version: str
    created_at: datetime
    alembic_revisions: list[str]
    database: DatabaseEntry
    storage: str
    object_count: int
    objects: list[ObjectEntry]


@dataclass(frozen=True)
class BackupResult:
    """Where the archive was written and what it holds."""

    path: Path
    manifest: Manifest


@dataclass(frozen=True)
class RestoreResult:
    """What was restored, and the revisions the database is at now."""

    manifest: Manifest
    revisions: list[str]
    upgraded: bool


class _Bar:
    """One task of an optional rich Progress."""

    def __init__(self, progress: Progress | None, description: str, total: int | None) -> None:
        self._progress = progress
        self._task = None if progress is None else progress.add_task(description, total=total)
        self._done = 0

    def advance(self) -> None:
        self._done += 1
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def finish(self) -> None:
        """Show a bar of unknown length as complete."""
        if self._progress is not None and self._task is not None:
            done = max(self._done, 1)
            self._progress.update(self._task, total=done, completed=done)


def progress_bar(console: Console) -> Progress:
    """The progress display of `townhall backup` and `townhall restore`."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _digest(reader: IO[bytes], out: IO[bytes] | None = None) -> str:
    """The SHA-256 of everything read from reader, copied to out on the way."""
    digest = hashlib.sha256()
    while chunk := reader.read(_CHUNK):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest()


def _archive_path(dest: Path) -> Path:
    if dest.is_dir():
        return dest / f"townhall-backup-{utcnow():%Y%m%dT%H%M%SZ}.tar.gz"
    if dest.exists():
        raise BackupError(f"{dest} already exists: choose a new file name or a directory")
    if not dest.parent.is_dir():
        raise BackupError(f"the directory {dest.parent} does not exist")
    return dest


async def _on_database(url: str, read: Callable[[Connection], T]) -> T:
    engine = build_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    except (SQLAlchemyError, OSError, DatabaseUnavailable) as exc:
        cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) else exc
        raise BackupError(f"cannot read the database: {cause or exc}"[:500]) from exc
    finally:
        await engine.dispose()


def _applied(script: ScriptDirectory, revisions: Sequence[str]) -> set[str]:
    """Every revision a database at these heads has applied, dependencies included."""
    return {rev.revision for rev in script.iterate_revisions(tuple(revisions), "base") if rev}


# Backup ------------------------------------------------------------------------------------


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> str:
    with path.open("rb") as f:
        checksum = _digest(f)
        size = f.tell()
        f.seek(0)
        _add_stream(tar, name, f, size)
    return checksum


def _add_stream(tar: tarfile.TarFile, name: str, data: IO[bytes], size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(utcnow().timestamp())
    info.mode = 0o600
    tar.addfile(info, data)


async def _add_object(tar: tarfile.TarFile, storage: Storage, key: str) -> ObjectEntry:
    info, chunks = await storage.open(key)
    digest = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        async for chunk in chunks:
            digest.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        spool.seek(0)
        await asyncio.to_thread(_add_stream, tar, OBJECTS + key, spool, size)
    return ObjectEntry(
        key=key, size=size, content_type=info.content_type, sha256=digest.hexdigest()
    )


def _create_private(path: Path) -> None:
    # The archive holds password hashes and personal data: only its owner may read it.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def create_backup(
    settings: Settings, dest: Path, progress: Progress | None = None
) -> BackupResult:
    """Dump the database, then copy every stored object, into one .tar.gz archive."""
    url = str(settings.database_url)
    dialect = dialect_of(url)
    target = _archive_path(dest)
    storage = build_storage(settings)
    partial = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".townhall-backup-") as tmp:
        dump = Path(tmp) / DUMP_NAMES[dialect]
        # The database first: uploads are stored before the rows naming them commit, so the
        # objects a dumped row names are still there when the objects are copied just after.
        bar = _Bar(progress, "dumping the database", None)
        await dump_database(url, dump)
        bar.finish()
        # SQLite: read the copy, which is exactly what the archive holds.
        dumped_url = url if dialect == "postgresql" else f"sqlite+aiosqlite:///{dump}"
        revisions = await _on_database(dumped_url, alembic_revisions)
        if not revisions:
            raise BackupError("the database has no migrations applied: run `townhall migrate`")
        keys = sorted([key async for key in storage.list_all()])
        bar = _Bar(progress, "copying objects", len(keys))
        await asyncio.to_thread(_create_private, partial)
        try:
            with tarfile.open(partial, "w:gz") as tar:
                checksum = await asyncio.to_thread(_add_file, tar, dump.name, dump)
                objects: list[ObjectEntry] = []
                for key in keys:
                    # An object deleted since the listing is no longer part of the data.
                    with contextlib.suppress(BlobNotFound):
                        objects.append(await _add_object(tar, storage, key))
                    bar.advance()
                manifest = Manifest(
                    townhall_version=importlib.metadata.version("townhall"),
                    created_at=utcnow(),
                    alembic_revisions=revisions,
                    database=DatabaseEntry(
                        dialect=dialect,
                        file=dump.name,
                        size=dump.stat().st_size,
                        sha256=checksum,
                    ),
                    storage=storage.backend,
                    object_count=len(objects),
                    objects=objects,
                )
                body = manifest.model_dump_json(indent=2).encode()
                await asyncio.to_thread(_add_stream, tar, MANIFEST, io.BytesIO(body), len(body))
            await asyncio.to_thread(_fsync, partial)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupResult(path=target, manifest=manifest)


# Restore -----------------------------------------------------------------------------------


def _verify_archive(
    source: Path, workdir: Path, advance: Callable[[], None]
) -> tuple[Manifest, Path]:
    """Check every checksum of the archive and extract its database dump into workdir."""
    digests: dict[str, str] = {}
    manifest_bytes: bytes | None = None
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                reader = tar.extractfile(member) if member.isfile() else None
                if reader is None:
                    raise BackupError(f"{source}: {member.name!r} is not a regular file")
                if member.name == MANIFEST:
                    manifest_bytes = reader.read()
                elif member.name in DUMP_NAMES.values():
                    with (workdir / member.name).open("wb") as out:
                        digests[member.name] = _digest(reader, out)
                else:
                    digests[member.name] = _digest(reader)
                advance()
    except _ARCHIVE_ERRORS as exc:
        raise BackupError(f"cannot read the backup archive {source}: {exc}") from exc
    if manifest_bytes is None:
        raise BackupError(f"{source} has no {MANIFEST}: it is not a townhall backup")
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        raise BackupError(f"{source}: {MANIFEST} is not a valid townhall manifest: {exc}") from exc
    expected = {manifest.database.file: manifest.database.sha256}
    for entry in manifest.objects:
        try:
            validate_key(entry.key)
        except InvalidKey as exc:
            raise BackupError(f"{source}: {exc.message}") from exc
        expected[OBJECTS + entry.key] = entry.sha256
    for name, checksum in expected.items():
        if name not in digests:
            raise BackupError(f"{source} is incomplete: {name!r} is missing")
        if digests[name] != checksum:
            raise BackupError(f"{source} is corrupted: the checksum of {name!r} does not match")
    if unexpected := sorted(digests.keys() - expected.keys()):
        raise BackupError(f"{source} holds files its manifest does not list: {unexpected[:5]}")
    return manifest, workdir / manifest.database.file


def _check_compatible(manifest: Manifest, url: str, script: ScriptDirectory) -> None:
    dialect = dialect_of(url)
    if manifest.database.dialect != dialect:
        raise BackupError(
            f"the backup holds a {manifest.database.dialect} database but the target "
            f"(TOWNHALL_DATABASE_URL) is {dialect}"
        )
    try:
        _applied(script, manifest.alembic_revisions)
    except CommandError as exc:
        raise BackupError(
            f"the backup was made by a newer townhall ({manifest.townhall_version}): {exc}; "
            "restore it with that version or a newer one"
        ) from exc


async def _refuse_if_not_empty(url: str, storage: Storage) -> None:
    if dialect_of(url) == "postgresql" or sqlite_path(url).exists():
        table = await _on_database(url, first_table_with_rows)
        if table is not None:
            raise BackupError(
                f"the target database is not empty (table {table!r} has rows): restore into "
                "an empty database, or pass --force to replace its contents"
            )
    async for key in storage.list_all():
        raise BackupError(
            f"the target object storage {storage.description} is not empty (it holds {key!r}): "
            "restore into empty storage, or pass --force to overwrite objects"
        )


async def _migrate(url: str, script: ScriptDirectory) -> list[str]:
    """Bring the restored database to the code's revisions and check it got there."""
    try:
        await asyncio.to_thread(upgrade, url)
    except (CommandError, SQLAlchemyError) as exc:
        raise BackupError(f"migrating the restored database failed: {exc}"[:500]) from exc
    revisions = await _on_database(url, alembic_revisions)
    missing = set(script.get_heads()) - _applied(script, revisions)
    if missing:
        raise BackupError(f"the restored database lacks revisions {sorted(missing)}")
    from townhall.core.auth.rbac import sync_roles

    db = Database(url)
    try:
        async with db.session() as session:
            await sync_roles(session)
    finally:
        await db.dispose()
    return revisions


async def _restore_objects(source: Path, manifest: Manifest, storage: Storage, bar: _Bar) -> None:
    entries = {OBJECTS + entry.key: entry for entry in manifest.objects}
    try:
        tar = await asyncio.to_thread(tarfile.open, source, "r:gz")
        with tar:
            while (member := await asyncio.to_thread(tar.next)) is not None:
                entry = entries.get(member.name)
                reader = tar.extractfile(member) if entry is not None else None
                if entry is None or reader is None:
                    continue
                data = await asyncio.to_thread(reader.read)
                await _put_verified(storage, entry, data)
                bar.advance()
    except _ARCHIVE_ERRORS as exc:
        raise BackupError(f"cannot read the backup archive {source}: {exc}") from exc


async def _put_verified(storage: Storage, entry: ObjectEntry, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise BackupError(f"the archive changed during the restore: {entry.key!r} differs")
    await storage.put(entry.key, data, entry.content_type)
    if hashlib.sha256(await storage.get(entry.key)).hexdigest() != entry.sha256:
        raise BackupError(f"{entry.key!r} reads back from {storage.description} with other bytes")


async def restore_backup(
    settings: Settings, source: Path, *, force: bool = False, progress: Progress | None = None
) -> RestoreResult:
    """Verify an archive, then load it into an empty database and object storage."""
    url = str(settings.database_url)
    storage = build_storage(settings)
    script = ScriptDirectory.from_config(alembic_config(url))
    if not await asyncio.to_thread(source.is_file):
        raise BackupError(f"{source} is not a file")
    with tempfile.TemporaryDirectory(prefix="townhall-restore-") as tmp:
        bar = _Bar(progress, "verifying the archive", None)
        manifest, dump = await asyncio.to_thread(_verify_archive, source, Path(tmp), bar.advance)
        bar.finish()
        _check_compatible(manifest, url, script)
        if not force:
            await _refuse_if_not_empty(url, storage)
        bar = _Bar(progress, "restoring the database", None)
        await restore_database(url, dump)
        bar.finish()
    revisions = await _migrate(url, script)
    await _restore_objects(
        source, manifest, storage, _Bar(progress, "restoring objects", manifest.object_count)
    )
    return RestoreResult(
        manifest=manifest,
        revisions=revisions,
        upgraded=sorted(revisions) != sorted(manifest.alembic_revisions),
    )
