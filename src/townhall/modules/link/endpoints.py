"""The Links HTTP API under /api/v1 (thin: rules live in service.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from townhall.core.deps import (
    CurrentPrincipal,
    DbSession,
    PlatformDep,
    ReadSession,
    action_limit,
)
from townhall.core.errors import BadRequest, PayloadTooLarge
from townhall.modules.link import bookmarks
from townhall.modules.link.schemas import (
    ImportResult,
    LinkCreate,
    LinkOut,
    LinkPage,
    LinkUpdate,
    PullResponse,
    PushRequest,
    PushResponse,
    SavedLink,
    SearchResult,
    TagMerge,
    TagRename,
    TagSummary,
)
from townhall.modules.link.service import LinkService, parse_since

router = APIRouter(prefix="/api/v1", tags=["links"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024


async def get_service(session: DbSession, platform: PlatformDep) -> LinkService:
    return LinkService(session, platform)


async def get_read_service(session: ReadSession, platform: PlatformDep) -> LinkService:
    return LinkService(session, platform)


Service = Annotated[LinkService, Depends(get_service)]
ReadService = Annotated[LinkService, Depends(get_read_service)]  # lists and search: the replica
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post(
    "/links",
    response_model=SavedLink,
    status_code=status.HTTP_201_CREATED,
    dependencies=[action_limit("link.save", lambda s: s.link_saves_per_minute, 60)],
    responses={200: {"model": SavedLink, "description": "Already saved (duplicate: true)"}},
)
async def save_link(body: LinkCreate, principal: CurrentPrincipal, service: Service) -> Response:
    """Save a URL: answers at once with status 'pending'; the pipeline runs after commit."""
    link, duplicate = await service.save(principal.id, body)
    out = SavedLink(**(await service.one_out(link)).model_dump(), duplicate=duplicate)
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if duplicate else 201)


@router.get("/links", response_model=LinkPage)
async def list_links(
    principal: CurrentPrincipal,
    service: ReadService,
    page: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    limit: Limit = 20,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LinkPage:
    """The user's links, newest first (page or cursor pagination; cached per user)."""
    return await service.list_page(
        principal.id, page=page, limit=limit, tag=tag, status=status_, q=q, cursor=cursor
    )


@router.get("/links/export")
async def export_links(
    principal: CurrentPrincipal,
    service: Service,
    format: Literal["html", "json", "csv"] = "html",
) -> Response:
    """Every link with notes and tags, as a Netscape bookmark file, JSON or CSV."""
    links = await service.export(principal.id)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    if format == "json":
        body, media, ext = bookmarks.to_json(links), "application/json", "json"
    elif format == "csv":
        body, media, ext = bookmarks.to_csv(links), "text/csv; charset=utf-8", "csv"
    else:
        body, media, ext = bookmarks.to_netscape(links), "text/html; charset=utf-8", "html"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="links-{stamp}.{ext}"'},
    )


@router.post("/links/import", response_model=ImportResult)
async def import_links(
    request: Request, principal: CurrentPrincipal, service: Service
) -> ImportResult:
    """Import a Netscape bookmark file (multipart field `file`, or the raw HTML as the body)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("send the bookmark file in the form field 'file'")
        raw = await upload.read(MAX_IMPORT_BYTES + 1)
    else:
        raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"bookmark files are limited to {MAX_IMPORT_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    return await service.import_bookmarks(principal.id, bookmarks.parse_netscape(text))


@router.get("/links/{link_id}", response_model=LinkOut)
async def get_link(link_id: uuid.UUID, principal: CurrentPrincipal, service: Service) -> LinkOut:
    return await service.one_out(await service.get(principal.id, link_id))


@router.patch("/links/{link_id}", response_model=LinkOut)
async def update_link(
    link_id: uuid.UUID, body: LinkUpdate, principal: CurrentPrincipal, service: Service
) -> LinkOut:
    """Change title, note, tags or read/archived/favorite (optionally only at `version`)."""
    return await service.one_out(await service.update(principal.id, link_id, body))


@router.delete("/links/{link_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_link(
    link_id: uuid.UUID, principal: CurrentPrincipal, service: Service
) -> Response:
    """Soft delete: the link becomes a tombstone that sync clients receive."""
    await service.delete(principal.id, link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/links/{link_id}/retry", response_model=LinkOut)
async def retry_link(link_id: uuid.UUID, principal: CurrentPrincipal, service: Service) -> LinkOut:
    """Run the pipeline again for a failed (or completed) link."""
    return await service.one_out(await service.retry(principal.id, link_id))


@router.get("/tags", response_model=list[TagSummary])
async def list_tags(principal: CurrentPrincipal, service: ReadService) -> list[TagSummary]:
    return await service.tags(principal.id)


@router.get("/tags/{name}/links", response_model=LinkPage)
async def tag_links(
    name: str,
    principal: CurrentPrincipal,
    service: ReadService,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Limit = 20,
) -> LinkPage:
    return await service.tag_page(principal.id, name, page, limit)


@router.patch("/tags/{name}", response_model=TagSummary)
async def rename_tag(
    name: str, body: TagRename, principal: CurrentPrincipal, service: Service
) -> TagSummary:
    return await service.rename_tag(principal.id, name, body.name)


@router.post("/tags/{name}/merge", response_model=TagSummary)
async def merge_tag(
    name: str, body: TagMerge, principal: CurrentPrincipal, service: Service
) -> TagSummary:
    """Move every link of `name` to `into` and delete `name`."""
    return await service.merge_tag(principal.id, name, body.into)


@router.post("/tags/{name}/promote", response_model=TagSummary)
async def promote_tag(name: str, principal: CurrentPrincipal, service: Service) -> TagSummary:
    """Make an AI tag a user tag (kept on its links, reused by the tagger)."""
    return await service.promote_tag(principal.id, name)


@router.get("/search", response_model=SearchResult)
async def search(
    principal: CurrentPrincipal,
    service: ReadService,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    limit: Limit = 20,
) -> SearchResult:
    """Ranked full-text search over title, description, note, tags and page text."""
    return SearchResult(query=q, items=await service.search(principal.id, q, limit))


@router.get("/sync/pull", response_model=PullResponse)
async def sync_pull(
    principal: CurrentPrincipal,
    service: Service,
    since: Annotated[str | None, Query(max_length=200)] = None,
) -> PullResponse:
    """Links changed since `since` (timestamp or cursor; all live links without it)."""
    return await service.pull(principal.id, parse_since(since))


@router.post("/sync/push", response_model=PushResponse)
async def sync_push(
    body: PushRequest, principal: CurrentPrincipal, service: Service
) -> PushResponse:
    """Apply offline changes one by one; conflicts are reported per change, never overwritten."""
    return await service.push(principal.id, body.changes)
