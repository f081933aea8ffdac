"""Alembic migrations run programmatically; each app owns a branch under migrations/versions/."""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config

import townhall.core
import townhall.modules

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


def import_all_models() -> None:
    """Import every `models` module so Base.metadata knows every table."""
    importlib.import_module("townhall.core.auth.models")
    for package in (townhall.core, townhall.modules):
        for info in pkgutil.iter_modules(package.__path__):
            if not info.ispkg:
                continue
            name = f"{package.__name__}.{info.name}.models"
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise


def alembic_config(database_url: str) -> Config:
    """A Config pointing at migrations/ with every app's version folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    folders = sorted(str(p) for p in (MIGRATIONS_DIR / "versions").iterdir() if p.is_dir())
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(folders))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def tables_of(package: str) -> set[str]:
    """Names of the tables mapped by models defined under `package`."""
    from townhall.core.db import Base

    import_all_models()
    return {
        mapper.local_table.name  # type: ignore[attr-defined]
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(package + ".")
    }


def new_revision(app: str, package: str, message: str, database_url: str) -> None:
    """Autogenerate the next migration of `app`'s branch from its own models only."""
    config = alembic_config(database_url)
    folder = MIGRATIONS_DIR / "versions" / app
    own = tables_of(package)
    config.attributes["include_tables"] = own
    upgrade(database_url)
    existing = sorted(p.name for p in folder.glob("*.py")) if folder.exists() else []
    folder.mkdir(parents=True, exist_ok=True)
    number = len(existing) + 1
    command.revision(
        config,
        message=message,
        autogenerate=True,
        rev_id=f"{number:04d}_{app}",
        head=f"{app}@head" if existing else "base",
        branch_label=None if existing else app,
        depends_on=None if existing else "0001_core",
        version_path=str(folder),
        splice=not existing,
    )


def upgrade(database_url: str, target: str = "heads") -> None:
    """Bring the database to the newest revision of every branch."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), target)


def downgrade(database_url: str, target: str = "base") -> None:
    command.downgrade(alembic_config(database_url), target)
