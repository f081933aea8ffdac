"""The Links app's contribution to the platform."""

from __future__ import annotations

from townhall.modules.registry import AppModule


def module() -> AppModule:
    """Links (seed 002)."""
    from townhall.modules.link import demo, endpoints, pages, realtime

    return AppModule(
        slug="link",
        title="Links",
        summary="Save a URL instantly; scraped, thumbnailed and tagged for you.",
        seed="002",
        home_path="/links",
        routers=(endpoints.router, realtime.router, pages.router),
        install=pages.install,
        demo=demo.load,
        task_modules=("townhall.modules.link.tasks",),
    )
