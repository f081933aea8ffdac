"""One Jinja2 environment over the shared templates and every app's `templates/` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

PACKAGE = Path(__file__).resolve().parent.parent
SEARCH_PATH = [PACKAGE / "web" / "templates", *sorted(PACKAGE.glob("modules/*/templates"))]

templates = Jinja2Templates(directory=[str(p) for p in SEARCH_PATH])


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the layout's common context (user, apps, settings)."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("apps", getattr(request.app.state, "apps", []))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
