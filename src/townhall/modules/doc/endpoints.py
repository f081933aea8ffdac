"""The Docs HTTP API under /api/v1/doc (thin: rules live in service.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from fastapi.responses import RedirectResponse

from townhall.core.deps import (
    CurrentPrincipal,
    DbSession,
    OptionalPrincipal,
    PlatformDep,
    ReadSession,
)
from townhall.modules.doc.schemas import (
    ImageOut,
    MarkdownImport,
    MemberIn,
    MemberOut,
    MemberUpdate,
    PageCreate,
    PageMove,
    PageNode,
    PageOut,
    PageUpdate,
    PublicLinkOut,
    PublicPageOut,
    SearchHit,
    ShareIn,
    ShareOut,
    WorkspaceCreate,
    WorkspaceOut,
)
from townhall.modules.doc.service import DocService

router = APIRouter(prefix="/api/v1/doc", tags=["docs"])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "Not found, or not visible to the caller"}}
WRITE: Responses = {
    403: {"description": "The caller can only read this"},
    404: {"description": "Not found, or not visible to the caller"},
}


async def get_service(
    session: DbSession, platform: PlatformDep, principal: CurrentPrincipal
) -> DocService:
    return DocService(session, platform, principal.id)


async def get_read_service(
    session: ReadSession, platform: PlatformDep, principal: CurrentPrincipal
) -> DocService:
    return DocService(session, platform, principal.id)


Service = Annotated[DocService, Depends(get_service)]
ReadService = Annotated[DocService, Depends(get_read_service)]  # lists and search: the replica


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Workspaces and members ------------------------------------------------------------------------


@router.get("/workspaces", response_model=list[WorkspaceOut])
async def list_workspaces(service: ReadService) -> list[WorkspaceOut]:
    """The workspaces the caller is a member of, with their role."""
    return await service.workspaces()


@router.post("/workspaces", response_model=WorkspaceOut, status_code=status.HTTP_201_CREATED)
async def create_workspace(body: WorkspaceCreate, service: Service) -> WorkspaceOut:
    """Create a workspace; the caller is its owner."""
    return await service.create_workspace(body.name)


@router.patch("/workspaces/{workspace_id}", response_model=WorkspaceOut, responses=WRITE)
async def rename_workspace(
    workspace_id: uuid.UUID, body: WorkspaceCreate, service: Service
) -> WorkspaceOut:
    """Rename a workspace (owners only)."""
    return await service.rename_workspace(workspace_id, body.name)


@router.get(
    "/workspaces/{workspace_id}/members", response_model=list[MemberOut], responses=NOT_FOUND
)
async def list_members(workspace_id: uuid.UUID, service: Service) -> list[MemberOut]:
    """Members of a workspace and their roles."""
    return await service.members(workspace_id)


@router.post(
    "/workspaces/{workspace_id}/members",
    response_model=MemberOut,
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE, 409: {"description": "Already a member"}},
)
async def add_member(workspace_id: uuid.UUID, body: MemberIn, service: Service) -> MemberOut:
    """Add an existing account by email (owners only; an unknown email is 404)."""
    return await service.add_member(workspace_id, body.email, body.role)


@router.patch(
    "/workspaces/{workspace_id}/members/{user_id}", response_model=MemberOut, responses=WRITE
)
async def update_member(
    workspace_id: uuid.UUID, user_id: uuid.UUID, body: MemberUpdate, service: Service
) -> MemberOut:
    """Change a member's role (owners only; the last owner stays an owner)."""
    return await service.update_member(workspace_id, user_id, body.role)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
async def remove_member(workspace_id: uuid.UUID, user_id: uuid.UUID, service: Service) -> Response:
    """Remove a member (owners), or leave (anyone, themselves)."""
    await service.remove_member(workspace_id, user_id)
    return _no_content()


# The page tree ---------------------------------------------------------------------------------


@router.get("/workspaces/{workspace_id}/pages", response_model=list[PageNode], responses=NOT_FOUND)
async def page_tree(workspace_id: uuid.UUID, service: ReadService) -> list[PageNode]:
    """The workspace's live pages as a tree, in sibling order."""
    return await service.tree(workspace_id)


@router.post(
    "/workspaces/{workspace_id}/pages",
    response_model=PageOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
)
async def create_page(workspace_id: uuid.UUID, body: PageCreate, service: Service) -> PageOut:
    """Create a page at the end of its parent's children (or of the top level)."""
    return await service.create_page(workspace_id, body)


@router.get("/workspaces/{workspace_id}/trash", response_model=list[PageOut], responses=NOT_FOUND)
async def trash(workspace_id: uuid.UUID, service: ReadService) -> list[PageOut]:
    """Pages moved to the trash (each with the subpages that went with it)."""
    return await service.trash(workspace_id)


@router.post(
    "/workspaces/{workspace_id}/import",
    response_model=PageOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
)
async def import_markdown(
    workspace_id: uuid.UUID, body: MarkdownImport, service: Service
) -> PageOut:
    """Create a page from Markdown (headings, lists, task lists, tables, code, quotes, links)."""
    return await service.import_markdown(workspace_id, body)


@router.get("/shared", response_model=list[PageNode])
async def shared_with_me(service: ReadService) -> list[PageNode]:
    """Pages of other workspaces shared with the caller."""
    return await service.shared_with_me()


@router.get("/favorites", response_model=list[PageOut])
async def favorites(service: ReadService) -> list[PageOut]:
    """The caller's starred pages that they can still read."""
    return await service.favorites()


@router.get("/search", response_model=list[SearchHit])
async def search(
    service: ReadService,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[SearchHit]:
    """Titles and text (as of the last flush) of every page the caller can read."""
    return await service.search(q, limit)


# One page --------------------------------------------------------------------------------------


@router.get("/pages/{page_id}", response_model=PageOut, responses=NOT_FOUND)
async def get_page(page_id: uuid.UUID, service: Service) -> PageOut:
    """A page's metadata and the caller's role on it."""
    return await service.get(page_id)


@router.patch("/pages/{page_id}", response_model=PageOut, responses=WRITE)
async def update_page(page_id: uuid.UUID, body: PageUpdate, service: Service) -> PageOut:
    """Rename, or set the icon (an emoji) or cover (an image URL or an uploaded image key)."""
    return await service.update_page(page_id, body)


@router.post(
    "/pages/{page_id}/move",
    response_model=PageOut,
    responses={**WRITE, 422: {"description": "Would move a page under itself"}},
)
async def move_page(page_id: uuid.UUID, body: PageMove, service: Service) -> PageOut:
    """Move under another parent (or the top level) and/or to another position."""
    return await service.move_page(page_id, body)


@router.post("/pages/{page_id}/archive", response_model=PageOut, responses=WRITE)
async def archive_page(page_id: uuid.UUID, service: Service) -> PageOut:
    """Move the page and its subpages to the trash."""
    return await service.archive(page_id)


@router.post("/pages/{page_id}/restore", response_model=PageOut, responses=WRITE)
async def restore_page(page_id: uuid.UUID, service: Service) -> PageOut:
    """Bring a trashed page back with its subpages."""
    return await service.restore(page_id)


@router.delete(
    "/pages/{page_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**WRITE, 409: {"description": "Only pages in the trash can be deleted"}},
)
async def delete_page(page_id: uuid.UUID, service: Service) -> Response:
    """Delete a trashed page and its subpages permanently."""
    await service.delete(page_id)
    return _no_content()


@router.put("/pages/{page_id}/favorite", response_model=PageOut, responses=NOT_FOUND)
async def favorite(page_id: uuid.UUID, service: Service) -> PageOut:
    """Star a page."""
    return await service.set_favorite(page_id, True)


@router.delete("/pages/{page_id}/favorite", response_model=PageOut, responses=NOT_FOUND)
async def unfavorite(page_id: uuid.UUID, service: Service) -> PageOut:
    """Unstar a page."""
    return await service.set_favorite(page_id, False)


@router.get("/pages/{page_id}/shares", response_model=list[ShareOut], responses=WRITE)
async def list_shares(page_id: uuid.UUID, service: Service) -> list[ShareOut]:
    """Who the page is shared with (editors of the page only)."""
    return await service.shares(page_id)


@router.post(
    "/pages/{page_id}/shares",
    response_model=ShareOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE,
)
async def share_page(page_id: uuid.UUID, body: ShareIn, service: Service) -> ShareOut:
    """Share the page and its subpages with an existing account (unknown email: 404)."""
    return await service.share(page_id, body.email, body.role)


@router.delete(
    "/pages/{page_id}/shares/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE
)
async def unshare_page(page_id: uuid.UUID, user_id: uuid.UUID, service: Service) -> Response:
    """Stop sharing the page with a user."""
    await service.unshare(page_id, user_id)
    return _no_content()


@router.post("/pages/{page_id}/public-link", response_model=PublicLinkOut, responses=WRITE)
async def create_public_link(page_id: uuid.UUID, service: Service) -> PublicLinkOut:
    """Turn on the read-only public link (idempotent)."""
    return await service.create_public_link(page_id)


@router.delete(
    "/pages/{page_id}/public-link", status_code=status.HTTP_204_NO_CONTENT, responses=WRITE
)
async def revoke_public_link(page_id: uuid.UUID, service: Service) -> Response:
    """Revoke the public link: its token stops working at once."""
    await service.revoke_public_link(page_id)
    return _no_content()


@router.get(
    "/pages/{page_id}/export",
    responses={
        200: {"content": {"text/markdown": {}, "text/html": {}}, "description": "The page"},
        **NOT_FOUND,
    },
)
async def export_page(
    page_id: uuid.UUID, service: Service, format: Literal["md", "html"] = "md"
) -> Response:
    """The page as Markdown or as a standalone HTML document (a download)."""
    title, body = await service.export(page_id, format)
    media = "text/markdown; charset=utf-8" if format == "md" else "text/html; charset=utf-8"
    filename = quote(f"{title[:80]}.{format}")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


@router.post(
    "/pages/{page_id}/images",
    response_model=ImageOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        **WRITE,
        413: {"description": "Larger than the limit"},
        415: {"description": "Not a PNG, JPEG, GIF or WebP image"},
        422: {"description": "The bytes do not match the declared type"},
    },
)
async def upload_image(
    page_id: uuid.UUID, service: Service, file: Annotated[UploadFile, File()]
) -> ImageOut:
    """Upload an image (multipart field `file`) to put in the page or use as its cover."""
    return await service.upload_image(page_id, file)


@router.get(
    "/pages/{page_id}/images/{name}",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses={307: {"description": "Redirect to a signed URL"}, **NOT_FOUND},
)
async def image(
    page_id: uuid.UUID,
    name: str,
    session: DbSession,
    platform: PlatformDep,
    principal: OptionalPrincipal,
) -> Response:
    """Redirect a reader of the page (or of its public link) to a short-lived signed URL."""
    service = DocService(session, platform, principal.id if principal else None)
    url = await service.image_url(page_id, name)
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=300"})


@router.get("/public/{token}", response_model=PublicPageOut, responses=NOT_FOUND)
async def public_page(token: str, session: DbSession, platform: PlatformDep) -> PublicPageOut:
    """A page through its public link, read-only, for anyone (no sign-in)."""
    return await DocService(session, platform, None).public_page(token)
