"""create_app(): FastAPI + static files + every app module; lifespan builds the Platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from townhall.core.auth import endpoints as auth_endpoints
from townhall.core.config import Settings, get_settings
from townhall.core.errors import install_error_handlers
from townhall.core.jobs.endpoints import router as jobs_admin_router
from townhall.core.logging import configure_logging
from townhall.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from townhall.core.platform import State, build_platform
from townhall.core.realtime import ConnectionSlotsMiddleware
from townhall.core.secrets.endpoints import router as settings_admin_router
from townhall.core.security_headers import SecurityHeadersMiddleware
from townhall.core.storage.endpoints import router as storage_router
from townhall.core.system import router as system_router
from townhall.modules.registry import load_apps
from townhall.web import pages

WEB_DIR = Path(__file__).parent / "web"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; infrastructure is built when its lifespan starts."""
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.log_level, json=settings.log_json)
    apps = load_apps()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with build_platform(settings) as platform, platform.jobs.serving():
            app.state.platform = platform
            yield {"platform": platform}

    app = FastAPI(
        title="townhall",
        version="0.1.0",
        summary="Five real-time apps on one shared platform.",
        lifespan=lifespan,
        # /docs is the Docs app's home page, so the interactive API docs live under /api.
        docs_url="/api/docs",
        redoc_url="/api/redoc",
    )
    app.state.settings = settings
    app.state.apps = apps
    install_error_handlers(app)
    app.include_router(system_router)
    app.include_router(auth_endpoints.router)
    app.include_router(storage_router)
    app.include_router(jobs_admin_router)
    app.include_router(settings_admin_router)
    for module in apps:
        for router in module.routers:
            app.include_router(router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    for module in apps:
        if module.install is not None:
            module.install(app)
    app.add_middleware(ConnectionSlotsMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    # Outermost, so even the last-resort 500 carries the headers.
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    return app
