"""The Sheets app's contribution to the platform."""

from __future__ import annotations

from townhall.modules.registry import AppModule


def module() -> AppModule:
    """Sheets (seed 000, service B)."""
    from townhall.modules.sheet import auth, demo, endpoints, pages

    auth.register()  # the collab engine asks these hooks who may open "sheet" documents
    return AppModule(
        slug="sheet",
        title="Sheets",
        summary="Excel-like workbooks with live formulas, edited together in real time.",
        seed="000",
        home_path="/sheets",
        routers=(endpoints.router, pages.router),
        install=pages.install,
        demo=demo.load,
    )
