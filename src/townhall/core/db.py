"""Async SQLAlchemy engine, sessions, Base, and the commit boundary with after-commit hooks."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeDecorator

from townhall.core.errors import AppError, ServiceUnavailable

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
PING_AFTER_IDLE_SECONDS = 2.0
# SQLSTATEs of a server that is gone or not up yet: class 08 (connection exception),
# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A random, unguessable identifier."""
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}  # noqa: RUF012


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RollbackOnCloseConnection(sqlite3.Connection):
    """A SQLite connection that rolls back before it closes."""

    def close(self) -> None:
        # A cancelled query can leave a half-read UPDATE ... RETURNING cursor alive in a
        # traceback; close() then only makes the connection a zombie that keeps the write
        # lock until the garbage collector frees that cursor, blocking every other writer.
        with contextlib.suppress(sqlite3.Error):
            self.rollback()
        super().close()


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class DatabaseUnavailable(ServiceUnavailable):
    """The database server cannot be reached (down, restarting, connection lost): a 503."""

    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry shortly")


def unavailable_on_outage(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable, not a driver error (a 500), while the server is down.

    A refused connect is a bare OSError (asyncpg does not wrap it); a connection lost mid-query
    or a server still in crash recovery is a DBAPI error with a disconnect SQLSTATE.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:  # refused, reset, unreachable, timed out
            raise DatabaseUnavailable() from exc

    @event.listens_for(sync_engine, "handle_error")
    def _translate(context: ExceptionContext) -> BaseException | None:
        if not isinstance(context.original_exception, Exception):
            return None  # a cancelled task (CancelledError): let the cancellation through
        sqlstate = getattr(context.original_exception, "sqlstate", None) or ""
        if context.is_disconnect or sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            context.is_disconnect = True  # the pool drops its other connections to that server
            return DatabaseUnavailable()
        return None


def build_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout, foreign keys and rollback on close."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": 10, "factory": RollbackOnCloseConnection}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    unavailable_on_outage(engine)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle for `idle_seconds`.

    `pool_pre_ping` costs asyncpg three round trips (BEGIN, `;`, ROLLBACK) on every checkout,
    12% of a sync write. A busy pool's connections were just used; a dead one that slips
    through fails its request, and SQLAlchemy then recycles the rest of the pool.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection was closed by the server") from exc


class WriteTrackingSession(Session):
    """A Session that notes in `info["wrote"]` that it flushed changes or ran a statement."""


@event.listens_for(WriteTrackingSession, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    session.info["wrote"] = True


@event.listens_for(WriteTrackingSession, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    statement = state.statement
    if statement.is_dml or (
        isinstance(statement, TextClause) and statement.text.lstrip()[:6].upper() != "SELECT"
    ):
        state.session.info["wrote"] = True


def session_wrote(session: AsyncSession) -> bool:
    """Whether `session` changed anything (read-your-writes routes the writer's next reads)."""
    return bool(session.info.get("wrote"))


class Database:
    """The engines and session factories of one process."""

    def __init__(self, url: str, replica_url: str | None = None, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = build_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=WriteTrackingSession
        )
        self.replica_engine = (
            build_engine(replica_url, pool_size=pool_size) if replica_url else None
        )
        self.read_sessionmaker = (
            async_sessionmaker(self.replica_engine, expire_on_commit=False)
            if self.replica_engine
            else self.sessionmaker
        )

    @property
    def has_replica(self) -> bool:
        return self.replica_engine is not None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, then runs after-commit hooks."""
        async with self.sessionmaker() as session:
            try:
                yield session
            except AppError as exc:
                if exc.commit_changes:
                    await commit(session)
                else:
                    await session.rollback()
                raise
            except BaseException:
                await session.rollback()
                raise
            await commit(session)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica_engine is not None:
            await self.replica_engine.dispose()


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook` once the session's transaction has committed (jobs, pub/sub)."""
    session.info.setdefault("after_commit", []).append(hook)


async def commit(session: AsyncSession) -> None:
    """Commit, then run the hooks queued with after_commit."""
    await session.commit()
    hooks: list[AfterCommit] = session.info.pop("after_commit", [])
    for hook in hooks:
        try:
            await hook()
        except Exception:
            # The state is committed; a sweeper re-derives lost triggers from it (DESIGN 1).
            log.exception("after-commit hook failed", hook=getattr(hook, "__qualname__", hook))
