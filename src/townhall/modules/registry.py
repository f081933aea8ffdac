"""One descriptor per app: drives routers, the home page, demo data and mounts."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

DemoLoader = Callable[["Platform", "AsyncSession", "dict[str, User]"], Awaitable[None]]


@dataclass(frozen=True)
class AppModule:
    """What an app contributes to the platform."""

    slug: str
    title: str
    summary: str
    seed: str
    home_path: str | None = None
    routers: tuple[APIRouter, ...] = ()
    # Called with the FastAPI app after routers are included (mounts, Socket.IO).
    install: Callable[[FastAPI], None] | None = None
    # Loads this app's demo data; receives the demo users by email.
    demo: DemoLoader | None = None
    # Modules that declare this app's jobs (imported by `townhall worker` and `serve`).
    task_modules: tuple[str, ...] = ()

    @property
    def built(self) -> bool:
        return self.home_path is not None


PLANNED: tuple[AppModule, ...] = (
    AppModule("doc", "Docs", "Notion-like pages edited together in real time.", "000"),
    AppModule("sheet", "Sheets", "Excel-like workbooks with live formulas.", "000"),
    AppModule(
        "sync", "Sync API", "Server-authoritative JSON documents, live over WS and SSE.", "001"
    ),
    AppModule(
        "link", "Links", "Save a URL instantly; scraped, thumbnailed and tagged for you.", "002"
    ),
    AppModule("quiz", "Quiz", "Kahoot-style live quiz games for a room full of phones.", "003"),
    AppModule("report", "Reports", "Report civic issues with a photo and a location.", "004"),
)

# Where each app's `module.py` (exposing `def module() -> AppModule`) lives once built.
# Engines that serve an API of their own (sync, collab) are listed too.
PACKAGES: tuple[str, ...] = (
    "townhall.collab",
    "townhall.modules.doc",
    "townhall.modules.sheet",
    "townhall.sync",
    "townhall.modules.link",
    "townhall.modules.quiz",
    "townhall.modules.report",
)


def _discover() -> list[AppModule]:
    found = []
    for package in PACKAGES:
        name = f"{package}.module"
        try:
            source = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in (name, package):
                continue
            raise
        found.append(source.module())
    return found


def load_apps() -> list[AppModule]:
    """The five apps in home-page order (placeholders for unbuilt ones) plus engines."""
    built = {m.slug: m for m in _discover()}
    apps = [built.pop(planned.slug, planned) for planned in PLANNED]
    return apps + list(built.values())
