"""The Reports app's contribution to the platform."""

from __future__ import annotations

from townhall.modules.registry import AppModule


def module() -> AppModule:
    """Reports (seed 004)."""
    from townhall.modules.report import auth, demo, endpoints, open311, pages, realtime

    del auth  # imported for its register_role side effect (before sync_roles runs)
    return AppModule(
        slug="report",
        title="Reports",
        summary="Report civic issues with a photo and a location.",
        seed="004",
        home_path="/reports",
        routers=(endpoints.router, endpoints.admin, realtime.router, open311.router, pages.router),
        install=pages.install,
        demo=demo.load,
        task_modules=("townhall.modules.report.tasks",),
    )
