"""Business rules of the Docs app: workspaces, the page tree, sharing, search, import/export."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pycrdt
from fastapi import UploadFile

from townhall.collab.access import RANK, invitee, require_role, user_ref
from townhall.collab.access import collab_role as member_collab_role
from townhall.collab.engine import build_store
from townhall.collab.repository import CollabRepository
from townhall.core.db import utcnow
from townhall.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from townhall.modules.doc import content
from townhall.modules.doc.models import DocFavorite, DocMember, DocPage, DocShare, DocWorkspace
from townhall.modules.doc.repository import DocRepository
from townhall.modules.doc.schemas import (
    ImageOut,
    MarkdownImport,
    MemberOut,
    PageCreate,
    PageMove,
    PageNode,
    PageOut,
    PageUpdate,
    PublicLinkOut,
    PublicPageOut,
    SearchHit,
    ShareOut,
    WorkspaceOut,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

SERVICE = "doc"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_BODY_TEXT = 500_000
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


def collab_id(page_id: uuid.UUID) -> str:
    """The collab document id of a page (32 hex digits, valid for the collab engine)."""
    return page_id.hex


def page_id_of(doc_id: str) -> uuid.UUID | None:
    """The page behind a collab document id, or None when it is not one of ours."""
    if not re.fullmatch(r"[0-9a-f]{32}", doc_id):
        return None
    return uuid.UUID(hex=doc_id)


def image_src(page_id: uuid.UUID, name: str) -> str:
    return f"/api/v1/doc/pages/{page_id}/images/{name}"


@dataclass(frozen=True)
class Access:
    """What the acting user may do with one page."""

    page: DocPage
    role: str  # owner | editor | viewer
    member: bool  # through workspace membership (else only through a share)

    @property
    def can_write(self) -> bool:
        return RANK[self.role] >= RANK["editor"] and self.page.trashed_at is None


async def page_access(
    repo: DocRepository, page: DocPage, user_id: uuid.UUID | None
) -> Access | None:
    """The user's access to a page: workspace role, or the best share on it or an ancestor."""
    if user_id is None:
        return None
    member = await repo.member(page.workspace_id, user_id)
    if member is not None:
        return Access(page, member.role, True)
    if page.trashed_at is not None:
        return None
    links = await repo.tree_links(page.workspace_id)
    chain: list[uuid.UUID] = []
    current: uuid.UUID | None = page.id
    while current is not None and current not in chain:
        chain.append(current)
        current = links.get(current)
    shares = await repo.shares_on(chain, user_id)
    if not shares:
        return None
    best = max(shares, key=lambda s: RANK[s.role])
    return Access(page, best.role, False)


def _descendants(links: dict[uuid.UUID, uuid.UUID | None], root: uuid.UUID) -> list[uuid.UUID]:
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for child, parent in links.items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [root]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(children.get(node, []))
    return out


def snippet(text: str, query: str, width: int = 80) -> str:
    """Text around the first matching term (the start of the text when none matches)."""
    flat = " ".join(text.split())
    lower = flat.lower()
    at = -1
    for term in query.lower().split():
        at = lower.find(term)
        if at >= 0:
            break
    if at < 0:
        return flat[:width] + ("…" if len(flat) > width else "")
    start = max(0, at - width // 2)
    end = min(len(flat), start + width)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(64 * 1024):
        yield chunk


class DocService:
    """Docs rules for one acting user (None: anonymous, public links only); never commits."""

    def __init__(self, session: AsyncSession, platform: Platform, user_id: uuid.UUID | None):
        self.session = session
        self.platform = platform
        self.user_id = user_id
        self.repo = DocRepository(session)

    # Workspaces --------------------------------------------------------------------------------

    def _me(self) -> uuid.UUID:
        if self.user_id is None:
            raise Forbidden("sign in to use Docs")
        return self.user_id

    async def workspaces(self) -> list[WorkspaceOut]:
        rows = await self.repo.workspaces_of(self._me())
        return [
            WorkspaceOut(id=w.id, name=w.name, role=r, created_at=w.created_at) for w, r in rows
        ]

    async def create_workspace(self, name: str) -> WorkspaceOut:
        workspace = DocWorkspace(name=name, created_by_id=self._me())
        await self.repo.add(workspace)
        await self.repo.add(DocMember(workspace_id=workspace.id, user_id=self._me(), role="owner"))
        return WorkspaceOut(
            id=workspace.id, name=workspace.name, role="owner", created_at=workspace.created_at
        )

    async def ensure_workspace(self, name: str) -> None:
        """Give a user without any workspace a first one (the Docs home page calls it)."""
        if not await self.repo.workspaces_of(self._me()):
            await self.create_workspace(name)

    async def _workspace(self, workspace_id: uuid.UUID, needs: str = "viewer") -> DocWorkspace:
        member = await self.repo.member(workspace_id, self._me())
        workspace = await self.repo.get_workspace(workspace_id) if member else None
        if member is None or workspace is None:
            raise NotFound("workspace not found")
        require_role(member.role, needs, "workspace")
        return workspace

    async def workspace_role(self, workspace_id: uuid.UUID) -> str:
        await self._workspace(workspace_id)
        member = await self.repo.member(workspace_id, self._me())
        assert member is not None
        return member.role

    async def rename_workspace(self, workspace_id: uuid.UUID, name: str) -> WorkspaceOut:
        workspace = await self._workspace(workspace_id, "owner")
        workspace.name = name
        await self.session.flush()
        return WorkspaceOut(
            id=workspace.id, name=workspace.name, role="owner", created_at=workspace.created_at
        )

    async def members(self, workspace_id: uuid.UUID) -> list[MemberOut]:
        await self._workspace(workspace_id)
        return [
            MemberOut(user=user_ref(u), role=m.role)
            for m, u in await self.repo.members(workspace_id)
        ]

    async def _user(self, email: str) -> User:
        return await invitee(self.session, email)

    async def add_member(self, workspace_id: uuid.UUID, email: str, role: str) -> MemberOut:
        await self._workspace(workspace_id, "owner")
        user = await self._user(email)
        if await self.repo.member(workspace_id, user.id) is not None:
            raise Conflict(f"{email} is already a member")
        await self.repo.add(DocMember(workspace_id=workspace_id, user_id=user.id, role=role))
        return MemberOut(user=user_ref(user), role=role)

    async def _other_member(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> DocMember:
        member = await self.repo.member(workspace_id, user_id)
        if member is None:
            raise NotFound("not a member of this workspace")
        return member

    async def update_member(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID, role: str
    ) -> MemberOut:
        await self._workspace(workspace_id, "owner")
        member = await self._other_member(workspace_id, user_id)
        if member.role == "owner" and role != "owner":
            await self._keep_an_owner(workspace_id)
        member.role = role
        await self.session.flush()
        user = (await self.repo.users([user_id]))[user_id]
        return MemberOut(user=user_ref(user), role=role)

    async def remove_member(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
        # Owners remove anyone; every member may leave.
        await self._workspace(workspace_id, "viewer" if user_id == self._me() else "owner")
        member = await self._other_member(workspace_id, user_id)
        if member.role == "owner":
            await self._keep_an_owner(workspace_id)
        await self.repo.delete_member(member)

    async def _keep_an_owner(self, workspace_id: uuid.UUID) -> None:
        if await self.repo.count_owners(workspace_id) <= 1:
            raise Conflict("a workspace keeps at least one owner")

    # Pages -------------------------------------------------------------------------------------

    async def access(self, page_id: uuid.UUID) -> Access:
        """The caller's access to a page; 404 when they may not even read it."""
        page = await self.repo.get_page(page_id)
        found = await page_access(self.repo, page, self.user_id) if page else None
        if found is None:
            raise NotFound("page not found")
        return found

    async def writable(self, page_id: uuid.UUID) -> Access:
        access = await self.access(page_id)
        if access.page.trashed_at is not None:
            raise Conflict("the page is in the trash; restore it first")
        if not access.can_write:
            raise Forbidden("you can only read this page")
        return access

    async def page_out(self, access: Access) -> PageOut:
        page = access.page
        favorite = (
            self.user_id is not None and await self.repo.favorite(self.user_id, page.id) is not None
        )
        return PageOut(
            id=page.id,
            workspace_id=page.workspace_id,
            parent_id=page.parent_id,
            position=page.position,
            title=page.title,
            icon=page.icon,
            cover=page.cover,
            cover_url=self.cover_url(page),
            collab_id=collab_id(page.id),
            role=access.role,
            favorite=favorite,
            public=page.public_token is not None,
            trashed_at=page.trashed_at,
            created_at=page.created_at,
            updated_at=page.updated_at,
        )

    def cover_url(self, page: DocPage) -> str | None:
        if not page.cover:
            return None
        if _URL.match(page.cover):
            return page.cover
        return image_src(page.id, page.cover.rsplit("/", 1)[-1])

    async def get(self, page_id: uuid.UUID) -> PageOut:
        return await self.page_out(await self.access(page_id))

    async def tree(self, workspace_id: uuid.UUID) -> list[PageNode]:
        """The live pages of a workspace, nested, in sibling order."""
        await self._workspace(workspace_id)
        return self._nest(await self.repo.pages(workspace_id))

    @staticmethod
    def _nest(pages: Sequence[DocPage], root: uuid.UUID | None = None) -> list[PageNode]:
        nodes = {p.id: PageNode(id=p.id, title=p.title, icon=p.icon) for p in pages}
        top: list[PageNode] = []
        for page in pages:  # already in position order
            parent = nodes.get(page.parent_id) if page.parent_id else None
            if page.id == root or parent is None:
                if root is None or page.id == root:
                    top.append(nodes[page.id])
            else:
                parent.children.append(nodes[page.id])
        return top

    async def shared_with_me(self) -> list[PageNode]:
        """Pages other workspaces shared with the caller, with their live subpages."""
        out: list[PageNode] = []
        mine = {w.id for w, _ in await self.repo.workspaces_of(self._me())}
        for _share, page in await self.repo.shares_of_user(self._me()):
            if page.workspace_id in mine:
                continue
            pages = await self.repo.pages(page.workspace_id)
            out += self._nest(pages, page.id)
        return out

    async def trash(self, workspace_id: uuid.UUID) -> list[PageOut]:
        await self._workspace(workspace_id)
        role = await self.workspace_role(workspace_id)
        return [
            await self.page_out(Access(p, role, True))
            for p in await self.repo.trash_roots(workspace_id)
        ]

    async def _parent_for_new(self, workspace_id: uuid.UUID, parent_id: uuid.UUID | None) -> None:
        """Creating under a parent needs write access to it; at the top, the editor role."""
        if parent_id is None:
            await self._workspace(workspace_id, "editor")
            return
        parent = await self.writable(parent_id)
        if parent.page.workspace_id != workspace_id:
            raise Unprocessable("the parent page belongs to another workspace")

    async def _append_position(self, workspace_id: uuid.UUID, parent: uuid.UUID | None) -> float:
        siblings = await self.repo.siblings(workspace_id, parent)
        return (max(s.position for s in siblings) + 1.0) if siblings else 0.0

    async def create_page(self, workspace_id: uuid.UUID, body: PageCreate) -> PageOut:
        return await self.page_out(
            await self._create(workspace_id, body.parent_id, body.title, body.icon)
        )

    async def _create(
        self,
        workspace_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        title: str,
        icon: str | None,
    ) -> Access:
        await self._parent_for_new(workspace_id, parent_id)
        page = DocPage(
            workspace_id=workspace_id,
            parent_id=parent_id,
            position=await self._append_position(workspace_id, parent_id),
            title=" ".join(title.split()),
            icon=icon or None,
            created_by_id=self._me(),
        )
        await self.repo.add(page)
        found = await page_access(self.repo, page, self.user_id)
        assert found is not None
        return found

    async def update_page(self, page_id: uuid.UUID, body: PageUpdate) -> PageOut:
        access = await self.writable(page_id)
        page = access.page
        fields = body.model_fields_set
        if "title" in fields:
            page.title = " ".join((body.title or "").split())
        if "icon" in fields:
            page.icon = body.icon or None
        if "cover" in fields:
            page.cover = self._checked_cover(page, body.cover)
        await self.session.flush()
        return await self.page_out(access)

    @staticmethod
    def _checked_cover(page: DocPage, cover: str | None) -> str | None:
        if not cover:
            return None
        if _URL.match(cover):
            return cover
        if re.fullmatch(rf"doc/{page.workspace_id}/{page.id}/[0-9a-f]{{32}}", cover):
            return cover
        raise Unprocessable("cover must be an http(s) image URL or an image uploaded to this page")

    async def move_page(self, page_id: uuid.UUID, body: PageMove) -> PageOut:
        """Reparent and/or reorder; a page never moves under itself or its own subpages."""
        access = await self.writable(page_id)
        page = access.page
        parent_id = body.parent_id
        if parent_id is not None:
            parent = await self.writable(parent_id)
            if parent.page.workspace_id != page.workspace_id:
                raise Unprocessable("pages move within their workspace only")
            links = await self.repo.tree_links(page.workspace_id)
            if parent_id in _descendants(links, page.id):
                raise Unprocessable("a page cannot move under itself or one of its subpages")
        elif page.parent_id is not None:
            await self._workspace(page.workspace_id, "editor")
        siblings = [
            s for s in await self.repo.siblings(page.workspace_id, parent_id) if s.id != page.id
        ]
        index = len(siblings) if body.index is None else min(body.index, len(siblings))
        page.parent_id = parent_id
        page.position = self._position_at(siblings, index)
        await self.session.flush()
        return await self.page_out(access)

    @staticmethod
    def _position_at(siblings: list[DocPage], index: int) -> float:
        before = siblings[index - 1].position if index > 0 else None
        after = siblings[index].position if index < len(siblings) else None
        if before is not None and after is not None and after - before < 1e-9:
            # Repeated moves into one gap exhausted the float; renumber this sibling list.
            for n, sibling in enumerate(siblings):
                sibling.position = float(n)
            before = float(index - 1) if index > 0 else None
            after = float(index) if index < len(siblings) else None
        if before is None and after is None:
            return 0.0
        if before is None:
            assert after is not None
            return after - 1.0
        if after is None:
            return before + 1.0
        return (before + after) / 2

    async def archive(self, page_id: uuid.UUID) -> PageOut:
        """Move a page and its subpages to the trash."""
        access = await self.writable(page_id)
        page = access.page
        links = await self.repo.tree_links(page.workspace_id)
        live = {p.id for p in await self.repo.pages(page.workspace_id)}
        subtree = [i for i in _descendants(links, page.id) if i in live]
        await self.repo.set_trashed(subtree, utcnow(), page.id)
        await self.session.refresh(page)
        return await self.page_out(access)

    async def _trashed_root(self, page_id: uuid.UUID) -> Access:
        access = await self.access(page_id)
        if not access.member or RANK[access.role] < RANK["editor"]:
            raise Forbidden("restoring and deleting need the editor role in the workspace")
        if access.page.trash_root_id != access.page.id:
            raise Conflict("the page is not in the trash (or went there with its parent)")
        return access

    async def restore(self, page_id: uuid.UUID) -> PageOut:
        """Bring back a trashed page with what was trashed with it."""
        access = await self._trashed_root(page_id)
        page = access.page
        await self.repo.set_trashed(await self.repo.trashed_with(page.id), None, None)
        await self.session.refresh(page)
        parent = await self.repo.get_page(page.parent_id) if page.parent_id else None
        if page.parent_id is not None and (parent is None or parent.trashed_at is not None):
            page.parent_id = None  # its parent is still in the trash: restore at the top
        page.position = await self._append_position(page.workspace_id, page.parent_id)
        await self.session.flush()
        return await self.page_out(access)

    async def delete(self, page_id: uuid.UUID) -> None:
        """Delete a trashed page and its subpages for good."""
        access = await self._trashed_root(page_id)
        ids = list(await self.repo.trashed_with(access.page.id))
        collab = CollabRepository(self.session)
        for doc_page in ids:
            document = await collab.get_document(SERVICE, collab_id(doc_page))
            if document is not None:
                await self.session.delete(document)
        await self.repo.delete_pages(ids)

    # Favorites ---------------------------------------------------------------------------------

    async def set_favorite(self, page_id: uuid.UUID, on: bool) -> PageOut:
        access = await self.access(page_id)
        existing = await self.repo.favorite(self._me(), page_id)
        if on and existing is None:
            await self.repo.add(DocFavorite(user_id=self._me(), page_id=page_id))
        elif not on and existing is not None:
            await self.repo.delete_favorite(existing)
        return await self.page_out(access)

    async def favorites(self) -> list[PageOut]:
        out = []
        pages = await self.repo.pages_by_ids(await self.repo.favorite_ids(self._me()))
        for page_id in await self.repo.favorite_ids(self._me()):
            page = pages.get(page_id)
            access = await page_access(self.repo, page, self.user_id) if page else None
            if access is not None and page is not None and page.trashed_at is None:
                out.append(await self.page_out(access))
        return out

    # Sharing -----------------------------------------------------------------------------------

    async def shares(self, page_id: uuid.UUID) -> list[ShareOut]:
        await self.writable(page_id)
        return [
            ShareOut(user=user_ref(u), role=s.role)
            for s, u in await self.repo.shares_of_page(page_id)
        ]

    async def share(self, page_id: uuid.UUID, email: str, role: str) -> ShareOut:
        """Share a page with an existing user (re-sharing changes the role)."""
        await self.writable(page_id)
        user = await self._user(email)
        existing = await self.repo.share(page_id, user.id)
        if existing is None:
            await self.repo.add(DocShare(page_id=page_id, user_id=user.id, role=role))
        else:
            existing.role = role
            await self.session.flush()
        return ShareOut(user=user_ref(user), role=role)

    async def unshare(self, page_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.writable(page_id)
        existing = await self.repo.share(page_id, user_id)
        if existing is None:
            raise NotFound("the page is not shared with that user")
        await self.repo.delete_share(existing)

    def public_url(self, token: str) -> str:
        return f"{self.platform.settings.base_url.rstrip('/')}/p/{token}"

    async def create_public_link(self, page_id: uuid.UUID) -> PublicLinkOut:
        """The page's read-only public link (the existing one if there is one)."""
        page = (await self.writable(page_id)).page
        if page.public_token is None:
            page.public_token = secrets.token_urlsafe(24)
            await self.session.flush()
        return PublicLinkOut(token=page.public_token, url=self.public_url(page.public_token))

    async def revoke_public_link(self, page_id: uuid.UUID) -> None:
        page = (await self.writable(page_id)).page
        page.public_token = None
        await self.session.flush()

    async def public_page(self, token: str) -> PublicPageOut:
        page = await self.repo.page_by_token(token) if len(token) <= 64 else None
        if page is None or page.trashed_at is not None:
            raise NotFound("this link does not exist or was revoked")
        items = content.read_state(await self._state(page))
        return PublicPageOut(
            title=page.title,
            icon=page.icon,
            cover_url=self.cover_url(page),
            html=content.to_html_fragment(items),
        )

    # Body: search, export, import --------------------------------------------------------------

    async def _state(self, page: DocPage) -> bytes:
        # The stored state merged with what is still in the write-back buffer.
        return await build_store(self.platform).load_state(
            self.session, SERVICE, collab_id(page.id)
        )

    async def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Live pages the caller can read whose title or text matches."""
        query = " ".join(query.split())
        if not query:
            return []
        me = self._me()
        workspace_ids = [w.id for w, _ in await self.repo.workspaces_of(me)]
        shared: list[uuid.UUID] = []
        for _share, page in await self.repo.shares_of_user(me):
            if page.workspace_id not in workspace_ids:
                shared += _descendants(await self.repo.tree_links(page.workspace_id), page.id)
        pages = await self.repo.search(
            query, workspace_ids=workspace_ids, page_ids=shared, limit=limit
        )
        return [
            SearchHit(
                id=p.id,
                workspace_id=p.workspace_id,
                title=p.title,
                icon=p.icon,
                snippet=snippet(p.body_text, query),
            )
            for p in pages
        ]

    async def export(self, page_id: uuid.UUID, fmt: str) -> tuple[str, str]:
        """(file name stem, text) of a page as Markdown or a standalone HTML document."""
        page = (await self.access(page_id)).page
        items = content.read_state(await self._state(page))
        title = page.title or "Untitled"
        if fmt == "md":
            return title, content.to_markdown(items, title)
        return title, content.to_html(items, title)

    async def import_markdown(self, workspace_id: uuid.UUID, body: MarkdownImport) -> PageOut:
        """A new page whose body is the Markdown, stored as its first collab state."""
        title, blocks = content.parse_markdown(body.markdown)
        access = await self._create(
            workspace_id, body.parent_id, body.title or title or "Imported page", None
        )
        state = content.build_update(blocks)
        limit = self.platform.settings.collab_max_document_bytes
        if len(state) > limit:
            raise Unprocessable(f"the imported page is larger than {limit} bytes")
        await CollabRepository(self.session).insert_document(
            SERVICE, collab_id(access.page.id), state, pycrdt.get_state(state)
        )
        access.page.body_text = content.plain_text(blocks)[:MAX_BODY_TEXT]
        await self.session.flush()
        return await self.page_out(access)

    # Images ------------------------------------------------------------------------------------

    async def upload_image(self, page_id: uuid.UUID, upload: UploadFile) -> ImageOut:
        """Store an image for a page (sniffed type, size limit); nothing is kept on failure."""
        page = (await self.writable(page_id)).page
        name = uuid.uuid4().hex
        key = f"doc/{page.workspace_id}/{page.id}/{name}"
        info = await self.platform.storage.put_stream(
            key,
            _chunks(upload),
            max_bytes=self.platform.settings.doc_max_image_bytes,
            declared_type=upload.content_type or None,
            allowed_types=IMAGE_TYPES,
        )
        return ImageOut(
            key=key,
            src=image_src(page.id, name),
            url=await self.platform.storage.signed_url(key),
            content_type=info.content_type,
            size=info.size,
        )

    async def image_url(self, page_id: uuid.UUID, name: str, *, public: bool = False) -> str:
        """A signed URL of a page's image, for anyone who may read the page."""
        if not re.fullmatch(r"[0-9a-f]{32}", name):
            raise NotFound("image not found")
        page = await self.repo.get_page(page_id)
        readable = page is not None and (
            await page_access(self.repo, page, self.user_id) is not None
            or (page.public_token is not None and page.trashed_at is None)
        )
        if page is None or not readable:
            raise NotFound("image not found")
        key = f"doc/{page.workspace_id}/{page.id}/{name}"
        if not await self.platform.storage.exists(key):
            raise NotFound("image not found")
        return await self.platform.storage.signed_url(key)


# Collab hooks ----------------------------------------------------------------------------------


async def collab_role(session: AsyncSession, user_id: uuid.UUID | None, doc_id: str) -> str | None:
    """ "editor", "viewer" or None for the collab engine (public links read anonymously)."""
    page_id = page_id_of(doc_id)
    repo = DocRepository(session)
    page = await repo.get_page(page_id) if page_id else None
    if page is None:
        return None
    access = await page_access(repo, page, user_id)
    if access is not None:
        # A trashed page is read-only for everyone.
        return member_collab_role(access.role if access.can_write else "viewer")
    if page.public_token is not None and page.trashed_at is None:
        return "viewer"
    return None


async def store_text(session: AsyncSession, doc_id: str, state: bytes) -> None:
    """Index the plain text of a flushed page body (runs inside the flusher's transaction)."""
    page_id = page_id_of(doc_id)
    if page_id is None:
        return
    text = content.plain_text(content.read_state(state))[:MAX_BODY_TEXT]
    await DocRepository(session).set_body_text(page_id, text)
