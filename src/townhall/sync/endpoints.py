"""HTTP API of the sync engine under /api/v1/sync/collections (thin: rules live in service)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from townhall.core.deps import (
    ACCESS_COOKIE,
    Auth,
    CurrentPrincipal,
    DbSession,
    PlatformDep,
    Principal,
    ReadSession,
    authenticate,
)
from townhall.core.errors import AppError, TooManyRequests, Unauthorized, Unprocessable
from townhall.core.platform import Platform
from townhall.core.realtime import TOO_MANY_CONNECTIONS, claim_connection
from townhall.sync import schemas
from townhall.sync.live import follow
from townhall.sync.patching import InvalidJSON, JsonPatch, MergePatch, loads
from townhall.sync.service import (
    SyncService,
    document_dict,
    etag,
    parse_if_match,
)

router = APIRouter(prefix="/api/v1/sync", tags=["sync"])
PREFIX = "/collections/{collection}"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
IfMatch = Annotated[str | None, Header(alias="If-Match")]


def service_for(session: Any, platform: Platform) -> SyncService:
    return SyncService(session, platform.settings, platform.pubsub)


async def read_json(request: Request) -> Any:
    """The body parsed strictly; malformed JSON is a 400 that says where."""
    raw = await request.body()
    if not raw:
        raise AppError("a JSON body is required", 400)
    try:
        return loads(raw)
    except InvalidJSON as exc:
        raise AppError(str(exc), 400) from exc


def doc_response(doc: Any, slug: str, status_code: int = 200) -> Response:
    body = schemas.DocumentOut.model_validate(document_dict(doc, slug))
    return Response(
        body.model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag(doc.version)},
    )


# Collections and members.


@router.post("/collections", status_code=201, response_model=schemas.CollectionOut)
async def create_collection(
    body: schemas.CollectionCreate,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> schemas.CollectionOut:
    collection = await service_for(session, platform).create_collection(
        principal, body.name, body.slug
    )
    return schemas.CollectionOut(
        slug=collection.slug,
        name=collection.name,
        owner_id=collection.owner_id,
        role="owner",
        head=0,
        created_at=collection.created_at,
    )


@router.get("/collections", response_model=list[schemas.CollectionOut])
async def list_collections(
    session: ReadSession, principal: CurrentPrincipal, platform: PlatformDep
) -> list[schemas.CollectionOut]:
    service = service_for(session, platform)
    out = []
    for collection in await service.repo.collections_of(principal.id):
        access = await service.access(principal, collection.slug)
        out.append(
            schemas.CollectionOut(
                slug=collection.slug,
                name=collection.name,
                owner_id=collection.owner_id,
                role=access.role,
                head=await service.repo.head(collection.id),
                created_at=collection.created_at,
            )
        )
    return out


@router.get(PREFIX, response_model=schemas.CollectionOut)
async def get_collection(
    collection: str, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> schemas.CollectionOut:
    service = service_for(session, platform)
    access = await service.access(principal, collection)
    return schemas.CollectionOut(
        slug=access.collection.slug,
        name=access.collection.name,
        owner_id=access.collection.owner_id,
        role=access.role,
        head=await service.repo.head(access.collection.id),
        created_at=access.collection.created_at,
    )


@router.get(PREFIX + "/members", response_model=list[schemas.MemberOut])
async def list_members(
    collection: str, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> list[schemas.MemberOut]:
    service = service_for(session, platform)
    access = await service.access(principal, collection)
    return [
        schemas.MemberOut(user_id=u.id, email=u.email, role=m.role)
        for m, u in await service.repo.members(access.collection.id)
    ]


@router.post(PREFIX + "/members", status_code=201, response_model=schemas.MemberOut)
async def set_member(
    collection: str,
    body: schemas.MemberSet,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> schemas.MemberOut:
    user_id, role = await service_for(session, platform).set_member(
        principal, collection, body.email, body.role
    )
    return schemas.MemberOut(user_id=user_id, email=body.email, role=role)


@router.delete(PREFIX + "/members/{user_id}", status_code=204)
async def remove_member(
    collection: str,
    user_id: uuid.UUID,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> Response:
    await service_for(session, platform).remove_member(principal, collection, user_id)
    return Response(status_code=204)


# Documents.


@router.post(PREFIX + "/documents", status_code=201, response_model=schemas.DocumentOut)
async def create_document(
    collection: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> Response:
    """Body `{"id": optional, "data": {...}}`; 409 when the id exists."""
    body = await read_json(request)
    if not isinstance(body, dict) or "data" not in body or set(body) - {"id", "data"}:
        raise Unprocessable('the body is {"id": optional string, "data": JSON object}')
    doc_id = body.get("id")
    if doc_id is not None and not isinstance(doc_id, str):
        raise Unprocessable("id must be a string")
    result = await service_for(session, platform).create(
        principal, collection, doc_id, body["data"]
    )
    response = doc_response(result.document, collection, 201)
    response.headers["Location"] = (
        f"/api/v1/sync/collections/{collection}/documents/{result.document.id}"
    )
    return response


@router.get(PREFIX + "/documents", response_model=schemas.DocumentPage)
async def list_documents(
    collection: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    after: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    include_deleted: bool = False,
) -> schemas.DocumentPage:
    service = service_for(session, platform)
    access = await service.access(principal, collection)
    docs = await service.repo.list_documents(
        access.collection.id, after=after, limit=limit + 1, include_deleted=include_deleted
    )
    items = [schemas.DocumentOut.model_validate(document_dict(d, collection)) for d in docs]
    next_id = items[limit - 1].id if len(items) > limit else None
    return schemas.DocumentPage(items=items[:limit], next=next_id)


@router.get(PREFIX + "/documents/{doc_id}", response_model=schemas.DocumentOut)
async def get_document(
    collection: str,
    doc_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    doc = await service_for(session, platform).get_document(principal, collection, doc_id)
    if if_none_match is not None and if_none_match.strip() in (etag(doc.version), "*"):
        return Response(status_code=304, headers={"ETag": etag(doc.version)})
    return doc_response(doc, collection)


@router.put(PREFIX + "/documents/{doc_id}", response_model=schemas.DocumentOut)
async def replace_document(
    collection: str,
    doc_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    if_match: IfMatch = None,
) -> Response:
    """Replace the whole document; `If-Match: "<version>"` makes it conditional."""
    expected = parse_if_match(if_match)
    data = await read_json(request)
    result = await service_for(session, platform).replace(
        principal, collection, doc_id, data, expected
    )
    return doc_response(result.document, collection)


@router.patch(PREFIX + "/documents/{doc_id}", response_model=schemas.DocumentOut)
async def patch_document(
    collection: str,
    doc_id: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    if_match: IfMatch = None,
) -> Response:
    """RFC 7396 merge patch or RFC 6902 JSON patch, chosen by Content-Type."""
    expected = parse_if_match(if_match)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await read_json(request)
    patch: MergePatch | JsonPatch
    if content_type in (MERGE_PATCH, "application/json"):
        if not isinstance(body, dict):
            raise Unprocessable("a merge patch for a document must be a JSON object")
        patch = MergePatch(body)
    elif content_type == JSON_PATCH:
        if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
            raise Unprocessable("a JSON patch is an array of operation objects")
        patch = JsonPatch(body)
    else:
        raise AppError(
            f"Content-Type must be {MERGE_PATCH} or {JSON_PATCH}",
            415,
            headers={"Accept-Patch": f"{MERGE_PATCH}, {JSON_PATCH}"},
        )
    result = await service_for(session, platform).find_one_and_update(
        principal, collection, doc_id, patch, expected
    )
    return doc_response(result.document, collection)


@router.delete(PREFIX + "/documents/{doc_id}", status_code=204)
async def delete_document(
    collection: str,
    doc_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    if_match: IfMatch = None,
) -> Response:
    """Tombstone: the document disappears and a `delete` event is recorded."""
    expected = parse_if_match(if_match)
    result = await service_for(session, platform).delete(principal, collection, doc_id, expected)
    return Response(status_code=204, headers={"ETag": etag(result.document.version)})


# Changes, snapshots, client positions.


@router.get(PREFIX + "/changes", response_model=schemas.ChangesOut)
async def changes(
    collection: str,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    since: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
) -> schemas.ChangesOut:
    """HTTP pull: events after `since`, or `reset: true` with a snapshot and its tail."""
    service = service_for(session, platform)
    access = await service.access(principal, collection)
    result = await service.catch_up(access, since, limit=limit)
    return schemas.ChangesOut(
        stream=result.stream,
        head=result.head,
        reset=result.reset,
        reason=result.reason,
        snapshot_seq=result.snapshot_seq,
        snapshot=result.snapshot,
        events=[schemas.EventOut.model_validate(e) for e in result.events],
        more=result.more,
        next=result.last_seq if (result.events or result.reset) else since,
    )


@router.post(PREFIX + "/snapshots", status_code=201, response_model=schemas.SnapshotOut)
async def create_snapshot(
    collection: str, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> schemas.SnapshotOut:
    snapshot = await service_for(session, platform).snapshot(principal, collection)
    return schemas.SnapshotOut(
        stream=collection,
        seq=snapshot.seq,
        documents=len(snapshot.data),
        created_at=snapshot.created_at,
    )


@router.post(PREFIX + "/ack", response_model=dict[str, int])
async def ack(
    collection: str,
    body: schemas.AckIn,
    session: DbSession,
    principal: CurrentPrincipal,
    platform: PlatformDep,
) -> dict[str, int]:
    """Record a client's acknowledged position (`streams` must name this collection only)."""
    if set(body.streams) != {collection}:
        raise Unprocessable("streams must contain exactly this collection")
    return await service_for(session, platform).ack(principal, body.client_id, body.streams)


@router.get(PREFIX + "/clients", response_model=list[schemas.ClientStateOut])
async def clients(
    collection: str, session: DbSession, principal: CurrentPrincipal, platform: PlatformDep
) -> list[schemas.ClientStateOut]:
    """Who is behind: every client's acknowledged seq (owner only)."""
    service = service_for(session, platform)
    access = await service.access(principal, collection, "owner")
    head = await service.repo.head(access.collection.id)
    return [
        schemas.ClientStateOut(
            client_id=state.client_id,
            email=email,
            seq=state.seq,
            behind=head - state.seq,
            updated_at=state.updated_at,
        )
        for state, email in await service.repo.client_states(access.collection.id)
    ]


# Server-sent events.


async def stream_principal(
    request: Request, session: Any, auth: Any, token: str | None
) -> Principal:
    """EventSource cannot send headers: the token comes from the header, cookie or `?token=`."""
    header = request.headers.get("authorization", "")
    candidate = (
        header[7:].strip()
        if header.lower().startswith("bearer ")
        else token or request.cookies.get(ACCESS_COOKIE)
    )
    if not candidate:
        raise Unauthorized()
    return await authenticate(auth, session, candidate)


@router.get(PREFIX + "/events")
async def sse_events(
    collection: str,
    request: Request,
    session: DbSession,
    auth: Auth,
    platform: PlatformDep,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    token: Annotated[str | None, Query(max_length=4096)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """`text/event-stream`: each event's `id:` is its seq, so EventSource resumes by itself."""
    principal = await stream_principal(request, session, auth, token)
    access = await service_for(session, platform).access(principal, collection)
    if not claim_connection(request, platform, principal):
        raise TooManyRequests(TOO_MANY_CONNECTIONS, retry_after=5)
    start = since or 0
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit() or len(last_event_id) > 18:
            raise Unprocessable("Last-Event-ID must be a sequence number")
        start = int(last_event_id)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        try:
            async for item in follow(platform, principal, access, start):
                if item.kind == "ping":
                    yield b": ping\n\n"
                else:
                    yield f"id: {item.seq}\nevent: {item.kind}\ndata: {item.text}\n\n".encode()
        except AppError as exc:  # e.g. membership revoked while subscribed: say why, then end
            error = json.dumps({"type": "error", "status": exc.status_code, "message": exc.message})
            yield f"event: error\ndata: {error}\n\n".encode()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
