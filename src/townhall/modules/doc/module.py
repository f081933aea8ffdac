"""The Docs app's contribution to the platform."""

from __future__ import annotations

from townhall.modules.registry import AppModule


def module() -> AppModule:
    """Docs (seed 000, service A)."""
    from townhall.modules.doc import auth, demo, endpoints, pages

    auth.register()  # the collab engine asks these hooks who may open "doc" documents
    return AppModule(
        slug="doc",
        title="Docs",
        summary="Notion-like pages edited together in real time.",
        seed="000",
        home_path="/docs",
        routers=(endpoints.router, pages.router),
        install=pages.install,
        demo=demo.load,
    )
