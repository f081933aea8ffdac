"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from townhall.core.deps import PlatformDep
from townhall.core.platform import Platform

router = APIRouter(tags=["system"])

CHECK_TIMEOUT = 3.0

Check = Callable[[Platform], Awaitable[None]]


async def _check_database(platform: Platform) -> None:
    async with platform.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_cache(platform: Platform) -> None:
    await platform.cache.ping()


async def readiness(platform: Platform) -> dict[str, str]:
    """Probe every configured backend; each maps to 'ok' or its error."""
    checks = {"database": _check_database, "cache": _check_cache, **platform.extra_checks}

    async def probe(name: str, check: Check) -> tuple[str, str]:
        try:
            await asyncio.wait_for(check(platform), CHECK_TIMEOUT)
        except Exception as exc:
            return name, f"error: {type(exc).__name__}: {exc}"[:300]
        return name, "ok"

    # Concurrently, so several dead backends cost one timeout, not one each.
    return dict(await asyncio.gather(*(probe(name, check) for name, check in checks.items())))


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(platform: PlatformDep) -> JSONResponse:
    """Every configured backend answers; 503 names the one that does not."""
    results = await readiness(platform)
    failed = [name for name, value in results.items() if value != "ok"]
    if failed:
        return JSONResponse(
            {"status": "unavailable", "failed": failed, "checks": results},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "checks": results})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
