"""The SQL of backups: which townhall tables hold rows, and the Alembic revisions applied."""

from __future__ import annotations

from sqlalchemy import Connection, column, inspect, literal, select, table

from townhall.core.db import Base
from townhall.core.migrate import import_all_models

# Filled by `townhall migrate` and by the schedulers on their own: not data a restore could lose.
BOOKKEEPING_TABLES = frozenset({"roles", "permissions", "role_permissions", "job_ticks"})


def first_table_with_rows(conn: Connection) -> str | None:
    """The name of a townhall table that holds data, or None when every one is empty."""
    import_all_models()
    existing = set(inspect(conn).get_table_names())
    for model_table in Base.metadata.sorted_tables:
        if model_table.name not in existing or model_table.name in BOOKKEEPING_TABLES:
            continue
        query = select(literal(1)).select_from(model_table).limit(1)
        if conn.execute(query).first() is not None:
            return model_table.name
    return None


def alembic_revisions(conn: Connection) -> list[str]:
    """The revisions recorded in alembic_version (one per branch head); empty if unmigrated."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    versions = table("alembic_version", column("version_num"))
    return sorted(conn.execute(select(versions.c.version_num)).scalars())
