"""Per-service hooks (Hocuspocus's ideas): on_authorize, on_load, on_change, on_store."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pycrdt

from townhall.core.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.deps import Principal

Role = Literal["editor", "viewer"]

# Owner app decides: "editor", "viewer" or None (no access). The session reads its ACL tables.
Authorize = Callable[["Principal | None", str, str, "AsyncSession"], Awaitable["Role | None"]]
# Initial state of a document that has none stored yet (a Yjs update), or None.
OnLoad = Callable[[str, str, "AsyncSession"], Awaitable[bytes | None]]
# Debounced after live edits in a room: (service, doc_id, the room's Doc).
OnChange = Callable[[str, str, "pycrdt.Doc[Any]"], Awaitable[None]]
# After the flusher wrote a new state: (service, doc_id, state update, session), same transaction.
OnStore = Callable[[str, str, bytes, "AsyncSession"], Awaitable[None]]

DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class ServiceHooks:
    """What an owning app registers for its documents."""

    name: str
    authorize: Authorize
    on_load: OnLoad | None = None
    on_change: OnChange | None = None
    on_store: OnStore | None = None
    # Root types of the service's documents (name -> pycrdt type); restore copies these.
    roots: dict[str, type[Any]] = field(default_factory=dict)


_services: dict[str, ServiceHooks] = {}


def register_service(hooks: ServiceHooks) -> None:
    """Register (or replace) the hooks of a service; the owning app calls this at import."""
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", hooks.name):
        raise ValueError(f"invalid collab service name {hooks.name!r}")
    _services[hooks.name] = hooks


def unregister_service(name: str) -> None:
    _services.pop(name, None)


def get_service(name: str) -> ServiceHooks:
    """The hooks of `name`; unknown services are 404."""
    hooks = _services.get(name)
    if hooks is None:
        raise NotFound(f"unknown collab service {name!r}")
    return hooks


def check_doc_id(doc_id: str) -> str:
    if not DOC_ID.fullmatch(doc_id):
        raise BadRequest("document id must be 1-64 characters of A-Z a-z 0-9 _ -")
    return doc_id


async def _deny_all(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    # The doc/sheet apps replace this with their owner/member check when they register.
    return None


async def _demo_authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    # The built-in demo service: any signed-in user edits; ids starting "public-" are readable
    # by everyone and "readonly-" ones editable by admins only.
    if doc_id.startswith("readonly-"):
        if principal is not None and principal.is_admin:
            return "editor"
        return "viewer" if principal is not None else None
    if principal is not None:
        return "editor"
    return "viewer" if doc_id.startswith("public-") else None


def register_builtins(*, production: bool = False) -> None:
    """The built-in services; `demo` (open to every user, any id) never exists in production."""
    if production:
        unregister_service("demo")
    else:
        register_service(
            ServiceHooks("demo", _demo_authorize, roots={"text": pycrdt.Text, "map": pycrdt.Map})
        )
    # Placeholders until the doc and sheet apps register their own hooks.
    for name in ("doc", "sheet"):
        if name not in _services:
            register_service(ServiceHooks(name, _deny_all))


register_builtins()
