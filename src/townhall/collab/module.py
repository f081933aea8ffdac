"""The collab engine's AppModule: save API, versions, y-websocket rooms, signaling relay."""

from __future__ import annotations

from townhall.collab import endpoints, realtime
from townhall.collab.engine import install
from townhall.modules.registry import AppModule


def module() -> AppModule:
    return AppModule(
        slug="collab",
        title="Collab engine",
        summary=(
            "Yjs documents for docs and sheets: y-websocket rooms, y-webrtc signaling, "
            "a write-back save buffer flushed to the database."
        ),
        seed="000",
        routers=(endpoints.router, realtime.router),
        install=install,
        task_modules=("townhall.collab.tasks",),
    )
