"""Playwright on a real `townhall serve`: Docs pages edited live, offline, flushed; the page UI."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pycrdt
import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, expect

from tests.e2e.test_editor_bundle import ARTIFACTS
from tests.fixtures.app import signup
from tests.fixtures.browser import browser, signed_in_context  # noqa: F401  (fixture)
from tests.fixtures.serve import serve_process, townhall_env

# The server start (imports, migrations) dominates; 150 s was measured at a load average of 12,
# so the margin over pytest's default 120 s is for loaded CI runners.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

API = "/api/v1/doc"
WAIT = 20_000  # ms: generous for a loaded CI machine; every wait ends as soon as the state holds
ADMIN = ("admin@example.com", "admin-password")


@dataclass
class Server:
    """One `townhall serve` for this module (embedded defaults) and its admin account."""

    base: str
    admin: subprocess.Popen[bytes]  # `townhall createuser --admin`, run while tests start

    def admin_created(self) -> None:
        output, _ = self.admin.communicate(timeout=120)
        assert self.admin.returncode == 0, output.decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("docs-e2e")
    with serve_process(directory) as base:
        email, password = ADMIN
        command = ["createuser", email, "--admin", "--password", password]
        admin = subprocess.Popen(
            [sys.executable, "-m", "townhall.cli", *command],
            cwd=directory,
            env=townhall_env(directory),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            yield Server(base, admin)
        finally:
            admin.wait(timeout=120)


@dataclass
class Team:
    """Three accounts of one workspace (owner, editor, viewer) and its first page."""

    tokens: dict[str, str]
    emails: dict[str, str]
    workspace_id: str
    page_id: str
    collab_id: str

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def make_team(http: httpx.AsyncClient) -> Team:
    """Sign up Olive (owner), Ed (editor) and Vi (viewer); Olive makes a workspace and a page."""
    tokens, emails = {}, {}
    tag = uuid.uuid4().hex[:8]  # the tests of this module share one server
    for who, name in (("owner", "Olive Owner"), ("editor", "Ed Editor"), ("viewer", "Vi Viewer")):
        emails[who] = f"{who}.{tag}@example.com"
        account = await signup(http, emails[who], display_name=name)
        tokens[who] = account["access_token"]
    owner = {"Authorization": f"Bearer {tokens['owner']}"}
    workspace = await http.post(f"{API}/workspaces", json={"name": "Product"}, headers=owner)
    assert workspace.status_code == 201, workspace.text
    ws = workspace.json()["id"]
    for who in ("editor", "viewer"):
        added = await http.post(
            f"{API}/workspaces/{ws}/members",
            json={"email": emails[who], "role": who},
            headers=owner,
        )
        assert added.status_code == 201, added.text
    page = await http.post(
        f"{API}/workspaces/{ws}/pages",
        json={"title": "Launch plan", "icon": "🚀"},
        headers=owner,
    )
    assert page.status_code == 201, page.text
    return Team(tokens, emails, ws, page.json()["id"], page.json()["collab_id"])


class Window:
    """One signed-in browser profile with /docs/p/{id} open."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(cls, context: BrowserContext, base: str, page_id: str) -> Window:
        window = cls(context, await context.new_page())
        await window.page.goto(f"{base}/docs/p/{page_id}")
        await window.page.wait_for_function("window.docEditor !== undefined", timeout=WAIT)
        await expect(window.status).to_have_text("saved", timeout=WAIT)  # synced with the room
        return window

    @property
    def editor(self) -> Any:
        return self.page.locator("#doc-editor .th-editor")

    @property
    def status(self) -> Any:
        return self.page.locator("#doc-status")

    async def type_at_end(self, text: str) -> None:
        await self.editor.click()
        await self.page.keyboard.press("Control+End")
        await self.page.keyboard.type(text)

    async def content(self) -> Any:
        return await self.page.evaluate("window.docEditor.editor.getJSON()")

    async def text(self) -> str:
        return str(await self.page.evaluate("window.docEditor.editor.getText()"))


async def converged(*windows: Window, containing: list[str]) -> Any:
    """Wait until every window shows all of `containing`; then they hold the same document."""
    for window in windows:
        for text in containing:
            await expect(window.editor).to_contain_text(text, timeout=WAIT)
    contents = [await window.content() for window in windows]
    for other in contents[1:]:
        assert other == contents[0]
    return contents[0]


async def buffered_text(http: httpx.AsyncClient, team: Team) -> str:
    """The page's document as the server has it (database merged with the write-back buffer)."""
    response = await http.get(f"/api/v1/collab/doc/{team.collab_id}/state")
    assert response.status_code == 200, response.text
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(base64.b64decode(response.json()["state"]))
    return str(doc.get("default", type=pycrdt.XmlFragment))


async def wait_for_server(http: httpx.AsyncClient, team: Team, text: str) -> None:
    """Wait until a save (the leader's or the room's) has brought `text` to the server."""
    for _ in range(150):
        if text in await buffered_text(http, team):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the server never got {text!r}")


async def test_owner_and_editor_edit_live_offline_flush_and_a_viewer_reads(
    server: Server,
    browser: Browser,  # noqa: F811
) -> None:
    base = server.base
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        team = await make_team(http)
    owner_ctx = await signed_in_context(browser, base, team.tokens["owner"], bypass_csp=True)
    editor_ctx = await signed_in_context(browser, base, team.tokens["editor"], bypass_csp=True)
    olive = await Window.open(owner_ctx, base, team.page_id)
    ed = await Window.open(editor_ctx, base, team.page_id)
    await expect(olive.page.locator("#doc-title")).to_have_text("Launch plan")

    # Both edit; each sees the other's text (Markdown shortcuts make headings, lists, to-dos).
    await olive.type_at_end("## Goals\nShip the editor on Friday.\n- write the docs\n")
    await olive.page.keyboard.type("record a demo\n\n")
    await converged(olive, ed, containing=["Goals", "write the docs", "record a demo"])
    await expect(ed.editor.locator("h2")).to_have_text("Goals")
    await ed.type_at_end("## Open questions\n[ ] Who books the room?")
    await converged(olive, ed, containing=["Open questions", "Who books the room?"])
    await expect(olive.editor.locator('ul[data-type="taskList"] li')).to_have_count(1)

    # Presence: both are counted, and each sees the other's named caret.
    for window in (olive, ed):
        await expect(window.page.locator("#doc-peers")).to_have_text("2 here", timeout=WAIT)
    caret = olive.page.locator(".collaboration-carets__label", has_text="Ed Editor")
    await expect(caret).to_be_visible(timeout=WAIT)
    await olive.editor.locator("h2").first.click()
    await expect(
        ed.page.locator(".collaboration-carets__label", has_text="Olive Owner")
    ).to_be_visible(timeout=WAIT)

    # Ed goes offline and edits; Olive edits meanwhile; back online, both have both edits.
    await editor_ctx.set_offline(True)
    await expect(ed.status).to_have_text("offline", timeout=WAIT)
    await ed.type_at_end("\nWritten on the zeppelin.")
    await olive.type_at_end("\nAdded while Ed was away.")
    await expect(ed.editor).to_contain_text("Written on the zeppelin.")
    await expect(olive.editor).not_to_contain_text("Written on the zeppelin.")
    await editor_ctx.set_offline(False)
    await expect(ed.status).not_to_have_text("offline", timeout=WAIT)
    await converged(olive, ed, containing=["Written on the zeppelin.", "Added while Ed was away."])
    await expect(olive.page.locator("#doc-peers")).to_have_text(
        "2 here", timeout=WAIT
    )  # Ed is back

    # After a flush of the write-back buffer the text is in the database: search and export.
    async with httpx.AsyncClient(base_url=base, timeout=20, headers=team.headers("owner")) as http:
        await wait_for_server(http, team, "Written on the zeppelin.")
        await wait_for_server(http, team, "Added while Ed was away.")
        await asyncio.to_thread(server.admin_created)
        login = await http.post(
            "/api/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}
        )
        assert login.status_code == 200, login.text
        flushed = await http.post(
            "/api/v1/collab/flush",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
        assert flushed.status_code == 200, flushed.text
        hits = await http.get(
            f"{API}/search", params={"q": "zeppelin"}, headers=team.headers("editor")
        )
        assert [h["id"] for h in hits.json()] == [team.page_id]
        assert "zeppelin" in hits.json()[0]["snippet"]
        exported = await http.get(f"{API}/pages/{team.page_id}/export", params={"format": "md"})
        assert exported.status_code == 200
        for line in ("## Goals", "- write the docs", "- [ ] Who books the room?"):
            assert line in exported.text
        assert "Written on the zeppelin." in exported.text
        assert "Added while Ed was away." in exported.text

    # A viewer reads live but cannot edit: no toolbar, not editable, typing changes nothing.
    viewer_ctx = await signed_in_context(browser, base, team.tokens["viewer"], bypass_csp=True)
    vi = await Window.open(viewer_ctx, base, team.page_id)
    before = await converged(olive, ed, vi, containing=["Written on the zeppelin."])
    await expect(vi.editor).to_have_attribute("contenteditable", "false")
    await expect(vi.page.locator("#doc-toolbar")).to_have_count(0)
    await expect(vi.page.locator("#doc-share-open")).to_have_count(0)
    await expect(vi.page.locator("#doc-title")).not_to_have_attribute(
        "contenteditable", re.compile(".")
    )
    await vi.editor.click()
    await vi.page.keyboard.type("vandalism")
    await olive.type_at_end("\nLast line by Olive.")
    after = await converged(olive, ed, vi, containing=["Last line by Olive."])
    assert "vandalism" not in await vi.text()
    assert after != before
    await expect(olive.page.locator("#doc-peers")).to_have_text("3 here", timeout=WAIT)

    # Screenshots for the artifacts: Olive's window with Ed's caret, and a phone.
    ARTIFACTS.mkdir(exist_ok=True)
    await ed.editor.locator("h2").nth(1).click()
    await expect(caret).to_be_visible(timeout=WAIT)
    await olive.page.screenshot(path=str(ARTIFACTS / "docs-editor.png"))
    await vi.page.set_viewport_size({"width": 390, "height": 844})
    await vi.page.screenshot(path=str(ARTIFACTS / "docs-phone.png"))
    for window in (olive, ed, vi):
        assert window.errors == []
    for context in (owner_ctx, editor_ctx, viewer_ctx):
        await context.close()


def tree_item(page: Page, url: str) -> Any:
    """The sidebar tree's <li> of the page at `url` (with its subtree)."""
    page_id = url.rsplit("/", 1)[1]
    return page.locator(f'#doc-tree li:has(> .doc-node a[data-page-id="{page_id}"])')


async def test_page_ui_tree_subpages_favorites_share_and_trash(
    server: Server,
    browser: Browser,  # noqa: F811
) -> None:
    base = server.base
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        team = await make_team(http)
    context = await signed_in_context(browser, base, team.tokens["owner"], bypass_csp=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)  # the "delete forever?" confirmation
    await page.goto(f"{base}/docs")
    await expect(page.locator("#doc-tree")).to_contain_text("Launch plan")

    # A new top-level page from the workspace home; its title typed in place.
    await page.locator(".doc-main [data-new-page]").click()
    await page.wait_for_url(re.compile(r"/docs/p/[0-9a-f-]{36}$"))
    parent_url = page.url
    await page.locator("#doc-title").click()
    await page.keyboard.type("Research")
    await page.keyboard.press("Enter")  # saves the title and moves into the body
    # The sidebar entry is renamed once the title is saved.
    await expect(tree_item(page, parent_url).locator("a").first).to_have_text("📄 Research")

    # A subpage from the ⋯ menu: nested under Research in the tree, with breadcrumbs.
    await page.locator(".doc-more summary").click()
    await page.get_by_role("button", name="Add subpage").click()
    await page.wait_for_url(lambda url: url != parent_url and "/docs/p/" in url)
    child_url = page.url
    await page.locator("#doc-title").click()
    await page.keyboard.type("Interviews")
    await page.keyboard.press("Enter")
    await expect(tree_item(page, child_url).locator("a").first).to_have_text("📄 Interviews")
    await page.reload()
    await expect(page.locator(".doc-crumbs")).to_contain_text("Research")
    research = tree_item(page, parent_url)
    await expect(research.locator("ul")).to_contain_text("Interviews")
    await research.locator(".doc-twisty").first.click()  # collapse
    await expect(research.locator("ul").first).to_be_hidden()
    await research.locator(".doc-twisty").first.click()
    await expect(research.locator("ul").first).to_be_visible()

    # Favorite: the star toggles and the page is listed under Favorites.
    star = page.locator("#doc-favorite")
    await star.click()
    await expect(star).to_have_attribute("aria-pressed", "true")
    await page.reload()
    await expect(page.locator("#doc-favorites")).to_contain_text("Interviews")

    # Share dialog: invite by email, an unknown email is an error, a public link opens signed out.
    await page.locator("#doc-share-open").click()
    dialog = page.locator("#doc-share")
    await expect(dialog).to_be_visible()
    await page.locator("#doc-share-email").fill("nobody@example.com")
    await page.locator("#doc-share-form button").click()
    await expect(page.locator("#doc-share-error")).to_contain_text("nobody@example.com")
    await page.locator("#doc-share-email").fill(team.emails["viewer"])
    await page.locator("#doc-share-role").select_option("editor")
    await page.locator("#doc-share-form button").click()
    await expect(page.locator("#doc-share-list")).to_contain_text("Vi Viewer")
    await expect(page.locator("#doc-share-list")).to_contain_text("can edit")
    await page.locator("#doc-public-on").click()
    await expect(page.locator("#doc-public-url")).to_have_value(re.compile(r"/p/\S+$"))
    public_url = await page.locator("#doc-public-url").input_value()
    await expect(page.locator("#doc-public-off")).to_be_visible()  # the dialog knows it is public
    await page.screenshot(path=str(ARTIFACTS / "docs-share.png"))
    anonymous = await (await signed_in_context(browser, base, None, bypass_csp=True)).new_page()
    await anonymous.goto(public_url)
    await expect(anonymous.locator(".doc-title")).to_have_text("Interviews")
    await page.locator("#doc-public-off").click()
    await expect(page.locator("#doc-public-off")).to_be_hidden()
    assert (await anonymous.goto(public_url)).status == 404  # type: ignore[union-attr]
    await page.locator("#doc-share .doc-dialog-close button").click()
    await expect(dialog).to_be_hidden()

    # Trash: Research goes with its subpage, comes back on Restore; Delete removes it for good.
    await page.goto(parent_url)
    await page.locator(".doc-more summary").click()
    await page.get_by_role("button", name="Move to trash").click()
    await page.wait_for_url(re.compile(r"/docs\?ws="))
    await expect(page.locator("#doc-tree")).not_to_contain_text("Research")
    await page.locator("#doc-trash summary").click()
    await expect(page.locator("#doc-trash")).to_contain_text("Research")
    await page.locator("#doc-trash [data-restore]").click()
    await page.wait_for_url(parent_url)
    await expect(tree_item(page, parent_url).locator("ul")).to_contain_text("Interviews")
    await page.goto(child_url)
    await page.locator(".doc-more summary").click()
    await page.get_by_role("button", name="Move to trash").click()
    await page.wait_for_url(re.compile(r"/docs\?ws="))
    await page.locator("#doc-trash summary").click()
    await page.locator("#doc-trash [data-destroy]").click()
    await expect(page.locator("#doc-trash")).to_contain_text("The trash is empty.")
    await expect(page.locator("#doc-tree")).not_to_contain_text("Interviews")
    await page.screenshot(path=str(ARTIFACTS / "docs-home.png"))
    assert errors == []
    await context.close()
