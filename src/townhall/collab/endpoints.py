"""HTTP routes: the seed's save endpoints, document state, versions, and the flusher."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import pycrdt
from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from townhall.collab.engine import CollabEngine, get_engine
from townhall.collab.hooks import check_doc_id, get_service
from townhall.collab.schemas import (
    FlushOut,
    RestoreOut,
    SaveIn,
    SaveOut,
    StateOut,
    VersionDetail,
    VersionOut,
)
from townhall.collab.service import require_access
from townhall.core.db import after_commit
from townhall.core.deps import AdminPrincipal, DbSession, OptionalPrincipal
from townhall.core.errors import BadRequest, PayloadTooLarge, Unprocessable

router = APIRouter(tags=["collab"])

Engine = Annotated[CollabEngine, Depends(get_engine)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _read_save(request: Request, doc_id: str | None, limit: int) -> tuple[str, bytes]:
    try:
        body = await request.body()
    except ClientDisconnect as exc:
        # The browser went away mid-upload (tab closed): a partial update is never buffered,
        # and nobody is left to read the answer, so this is a client error, not a 500.
        raise BadRequest("request body incomplete") from exc
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            payload = SaveIn.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            if first.get("type") == "json_invalid":
                raise BadRequest("malformed JSON body") from exc
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise Unprocessable(f"{where}: {first.get('msg', 'invalid')}") from exc
        try:
            update = base64.b64decode(payload.update, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("update is not valid base64") from exc
        doc = payload.id
    else:
        if doc_id is None:
            raise BadRequest("binary saves need the document id in ?id=")
        update, doc = body, doc_id
    if len(update) > limit:
        raise PayloadTooLarge(f"update larger than {limit} bytes")
    return check_doc_id(doc), update


def _announce(
    engine: CollabEngine, session: DbSession, service: str, doc: str, update: bytes
) -> None:
    """Once the update is durably buffered, bring it to open rooms here and on other processes."""

    async def deliver() -> None:
        engine.rooms.announce(service, doc, update)

    after_commit(session, deliver)


async def _save(
    service: str,
    request: Request,
    doc_id: str | None,
    engine: CollabEngine,
    session: DbSession,
    principal: OptionalPrincipal,
) -> SaveOut:
    doc, update = await _read_save(request, doc_id, engine.settings.collab_max_update_bytes)
    result = await engine.store.save(session, principal, service, doc, update)
    _announce(engine, session, service, doc, update)
    return SaveOut(
        id=doc, service=service, state_vector=_b64(result.state_vector), buffered=result.buffered
    )


SAVE_DOC = (
    "Merge a Yjs update (binary body with ?id=, or JSON {id, update: base64}) into the "
    "write-back buffer; the flusher writes it to the database."
)
IdQuery = Annotated[str | None, Query(alias="id", max_length=64)]


@router.post("/api/v1/doc/save", response_model=SaveOut, description=SAVE_DOC)
async def save_doc(
    request: Request,
    engine: Engine,
    session: DbSession,
    principal: OptionalPrincipal,
    doc_id: IdQuery = None,
) -> SaveOut:
    return await _save("doc", request, doc_id, engine, session, principal)


@router.post("/api/v1/sheet/save", response_model=SaveOut, description=SAVE_DOC)
async def save_sheet(
    request: Request,
    engine: Engine,
    session: DbSession,
    principal: OptionalPrincipal,
    doc_id: IdQuery = None,
) -> SaveOut:
    return await _save("sheet", request, doc_id, engine, session, principal)


@router.post("/api/v1/collab/{service}/save", response_model=SaveOut, description=SAVE_DOC)
async def save_any(
    service: str,
    request: Request,
    engine: Engine,
    session: DbSession,
    principal: OptionalPrincipal,
    doc_id: IdQuery = None,
) -> SaveOut:
    get_service(service)
    return await _save(service, request, doc_id, engine, session, principal)


@router.get("/api/v1/collab/{service}/{doc_id}/state", response_model=StateOut)
async def document_state(
    service: str, doc_id: str, engine: Engine, session: DbSession, principal: OptionalPrincipal
) -> StateOut:
    """The document as the server has it now: database merged with the buffer."""
    role = await require_access(session, principal, service, doc_id, write=False)
    state = await engine.store.load_state(session, service, doc_id)
    return StateOut(
        id=doc_id,
        service=service,
        role=role,
        state=_b64(state),
        state_vector=_b64(pycrdt.get_state(state)),
    )


@router.get("/api/v1/collab/{service}/{doc_id}/versions", response_model=list[VersionOut])
async def list_versions(
    service: str, doc_id: str, engine: Engine, session: DbSession, principal: OptionalPrincipal
) -> list[VersionOut]:
    """Versions taken by the flusher, newest first."""
    await require_access(session, principal, service, doc_id, write=False)
    versions = await engine.store.versions(session, service, doc_id)
    return [
        VersionOut(number=v.number, name=v.name, size=v.size, created_at=v.created_at)
        for v in versions
    ]


def _render(state: bytes, roots: dict[str, type[Any]]) -> dict[str, Any]:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    out: dict[str, Any] = {}
    for name, kind in roots.items():
        root = doc.get(name, type=kind)
        out[name] = str(root) if kind in (pycrdt.Text, pycrdt.XmlFragment) else root.to_py()
    return out


@router.get("/api/v1/collab/{service}/{doc_id}/versions/{number}", response_model=VersionDetail)
async def view_version(
    service: str,
    doc_id: str,
    number: int,
    engine: Engine,
    session: DbSession,
    principal: OptionalPrincipal,
) -> VersionDetail:
    await require_access(session, principal, service, doc_id, write=False)
    v = await engine.store.version(session, service, doc_id, number)
    return VersionDetail(
        number=v.number,
        name=v.name,
        size=v.size,
        created_at=v.created_at,
        state=_b64(v.state),
        content=_render(v.state, get_service(service).roots),
    )


@router.post(
    "/api/v1/collab/{service}/{doc_id}/versions/{number}/restore", response_model=RestoreOut
)
async def restore_version(
    service: str,
    doc_id: str,
    number: int,
    engine: Engine,
    session: DbSession,
    principal: OptionalPrincipal,
) -> RestoreOut:
    """Restore a version as a new update, so live collaborators converge on it."""
    await require_access(session, principal, service, doc_id, write=True)
    update = await engine.store.restore_update(session, service, doc_id, number)
    await engine.store.buffer.push(
        session, service, doc_id, update, engine.settings.collab_max_document_bytes
    )
    _announce(engine, session, service, doc_id, update)
    return RestoreOut(number=number, update=_b64(update))


@router.post("/api/v1/collab/flush", response_model=FlushOut)
async def flush_now(engine: Engine, _admin: AdminPrincipal) -> FlushOut:
    """Run the flusher now (it also runs on collab_flush_cron)."""
    report = await engine.flush()
    return FlushOut(**report.__dict__)
