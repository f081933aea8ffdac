"""The quiz app's descriptor: routers, the Socket.IO mount, demo data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI

from townhall.modules.quiz.demo import load_demo
from townhall.modules.quiz.endpoints import router
from townhall.modules.quiz.pages import router as pages_router
from townhall.modules.quiz.realtime import QuizServer
from townhall.modules.registry import AppModule


def install(app: FastAPI) -> None:
    """Mount Socket.IO at /socket.io and run the game server inside the app's lifespan."""
    server = QuizServer(app.state.settings)
    app.state.quiz = server
    app.mount("/socket.io", socketio.ASGIApp(server.sio, socketio_path="socket.io"))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            await server.start(application.state.platform)
            try:
                yield state
            finally:
                await server.stop()

    app.router.lifespan_context = lifespan


def module() -> AppModule:
    return AppModule(
        slug="quiz",
        title="Quiz",
        summary="Kahoot-style live quiz games for a room full of phones.",
        seed="003",
        home_path="/quiz",
        routers=(router, pages_router),
        install=install,
        demo=load_demo,
    )
