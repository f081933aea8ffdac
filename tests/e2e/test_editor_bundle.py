"""Playwright: the vendored editor bundle on the collab engine's demo service, in real browsers."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.collab.conftest import serve
from tests.fixtures.app import make_settings, signup
from tests.fixtures.browser import browser, signed_in_context  # noqa: F401  (fixture)
from townhall.collab.engine import CollabEngine
from townhall.core.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"

# A test-only page: the Docs app builds its own; this one only mounts the editor.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Editor</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main class="container" style="max-width: 820px">
<p class="muted small">Team space / Product <span class="badge" id="status">loading</span></p>
<div class="panel"><div id="editor"></div></div></main>
<script type="module">
import { mountEditor, toolbarCommands } from '/static/collab/editor.js'
const q = new URLSearchParams(location.search)
const seen = { webrtcPeers: 0 }
window.mounted = await mountEditor(document.getElementById('editor'), {
  service: 'demo', docId: q.get('doc'),
  canEdit: q.get('edit') === '1', webrtc: q.get('rtc') === '1',
  user: { name: q.get('name'), color: q.get('color') },
  saveUrl: '/api/v1/collab/demo/save', saveIntervalMs: 300,
  onStatus: (s) => {
    seen.webrtcPeers = Math.max(seen.webrtcPeers, s.webrtcPeers)
    document.getElementById('status').textContent = s.state
  }
})
window.seen = seen
window.docId = q.get('doc')
window.commands = toolbarCommands(window.mounted.editor)
window.ready = true
</script></body></html>"""

PICTURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="120">'
    '<rect width="640" height="120" rx="10" fill="#e8f0fe"/>'
    '<text x="24" y="70" font-family="sans-serif" font-size="28" fill="#2f6feb">Roadmap</text>'
    "</svg>"
)


COLORS = {"Alice": "#2563eb", "Bob": "#db2777", "Guest": "#16a34a"}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, sqlite_database_url: str) -> str:
    return sqlite_database_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path, database_url=database_url, collab_flush_seconds=0, worker_in_process=False
    )


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def picture() -> Response:
        return Response(PICTURE, media_type="image/svg+xml")

    app.add_api_route("/e2e/editor", page, include_in_schema=False)
    app.add_api_route("/e2e/picture.svg", picture, include_in_schema=False)
    async with serve(app) as address:
        yield f"http://{address}"


class Window:
    """One browser profile with the test page open on a document."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    @classmethod
    async def open(
        cls, context: BrowserContext, base: str, doc: str, name: str, *, edit: bool, rtc: bool
    ) -> Window:
        window = cls(context, await context.new_page())
        flags = {"edit": "1" if edit else "0", "rtc": "1" if rtc else "0"}
        query = httpx.QueryParams(doc=doc, name=name, color=COLORS[name], **flags)
        await window.page.goto(f"{base}/e2e/editor?{query}")
        await window.page.wait_for_function("window.ready === true")
        return window

    @property
    def editor(self) -> Any:
        return self.page.locator(".th-editor")

    async def type_at_end(self, text: str) -> None:
        await self.editor.click()
        await self.page.keyboard.press("Control+End")
        await self.page.keyboard.type(text)

    async def type_after(self, block_text: str, text: str) -> None:
        """Type at the end of the first paragraph containing `block_text`."""
        await self.page.locator(".th-editor p", has_text=block_text).first.click()
        await self.page.keyboard.press("End")
        await self.page.keyboard.type(text)

    async def text(self) -> str:
        return str(await self.page.evaluate("window.mounted.editor.getText()"))

    async def content(self) -> Any:
        return await self.page.evaluate("window.mounted.editor.getJSON()")

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = await self.page.evaluate("window.mounted.status()")
        return status


async def converged(*windows: Window, containing: list[str]) -> Any:
    """Wait until every window shows all of `containing`, then check they hold the same content."""
    for window in windows:
        for text in containing:
            await expect(window.editor).to_contain_text(text, timeout=20_000)
    contents = [await window.content() for window in windows]
    for other in contents[1:]:
        assert other == contents[0]
    return contents[0]


async def persisted_locally(window: Window, text: str) -> None:
    """Wait until this profile's IndexedDB copy of the document contains `text`."""
    await window.page.wait_for_function(
        """async (text) => {
          const { Y, IndexeddbPersistence } = await import('/static/vendor/collab-editor.min.js')
          const doc = new Y.Doc()
          const store = new IndexeddbPersistence(`townhall:demo:${window.docId}`, doc)
          await store.whenSynced
          const found = doc.getXmlFragment('default').toString().includes(text)
          await store.destroy()
          return found
        }""",
        arg=text,
        polling=200,
        timeout=20_000,
    )


async def server_text(http: httpx.AsyncClient, doc_id: str) -> str:
    """The document's content as the server has it (database merged with the save buffer)."""
    response = await http.get(f"/api/v1/collab/demo/{doc_id}/state")
    assert response.status_code == 200, response.text
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(base64.b64decode(response.json()["state"]))
    return str(doc.get("default", type=pycrdt.XmlFragment))


async def server_has(http: httpx.AsyncClient, doc_id: str, text: str) -> None:
    for _ in range(100):
        if text in await server_text(http, doc_id):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the server never got {text!r}")


@pytest.mark.parametrize("rtc", [True, False], ids=["webrtc+websocket", "websocket-only"])
async def test_two_editors_converge_offline_and_viewer_is_read_only(
    app: FastAPI,
    base_url: str,
    browser: Browser,  # noqa: F811
    rtc: bool,
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        alice = await signup(http, "alice@example.com", display_name="Alice")
        bob = await signup(http, "bob@example.com", display_name="Bob")
    doc = f"public-{uuid.uuid4().hex[:12]}"  # demo ids "public-*" are readable by anyone
    a_ctx = await signed_in_context(browser, base_url, alice["access_token"], bypass_csp=True)
    b_ctx = await signed_in_context(browser, base_url, bob["access_token"], bypass_csp=True)
    one = await Window.open(a_ctx, base_url, doc, "Alice", edit=True, rtc=rtc)
    two = await Window.open(b_ctx, base_url, doc, "Bob", edit=True, rtc=rtc)
    for window in (one, two):
        await expect(window.page.locator("#status")).to_have_text("live", timeout=20_000)

    # Markdown shortcuts from StarterKit: "# " makes a heading, "- " a list, "[ ] " a to-do.
    await one.type_at_end("# Launch plan\nWe ship the editor this week.\n- write the docs\n")
    await one.page.keyboard.type("record a demo\n\n")
    await converged(one, two, containing=["Launch plan", "write the docs", "record a demo"])
    await expect(two.page.locator(".th-editor h1")).to_have_text("Launch plan")
    await expect(two.page.locator(".th-editor ul li p").first).to_have_text("write the docs")

    # Both type at once into the same document (different blocks, so neither text interleaves).
    await asyncio.gather(
        one.type_after("We ship", " Review by Alice."), two.type_at_end("Notes from Bob.")
    )
    await converged(one, two, containing=["this week. Review by Alice.", "Notes from Bob."])

    # Awareness: each sees the other's caret with their name.
    await expect(two.page.locator(".collaboration-carets__label", has_text="Alice")).to_be_visible()
    await expect(one.page.locator(".collaboration-carets__label", has_text="Bob")).to_be_visible()

    # Bob goes offline, both keep editing, Bob comes back: both edits survive on both sides.
    await b_ctx.set_offline(True)
    await expect(two.page.locator("#status")).to_have_text("offline")
    await two.type_at_end("\nWritten on the train.")
    await one.type_at_end("\nAdded while Bob was away.")
    await expect(one.editor).not_to_contain_text("Written on the train.")
    await b_ctx.set_offline(False)
    await expect(two.page.locator("#status")).to_have_text("live", timeout=20_000)
    await converged(one, two, containing=["Written on the train.", "Added while Bob was away."])

    # Offline again, and the tab is closed before the network returns: the edit lives in
    # IndexedDB and reaches Alice when Bob opens the page again.
    await b_ctx.set_offline(True)
    await expect(two.page.locator("#status")).to_have_text("offline")
    await two.type_at_end("\nKept in the browser.")
    await persisted_locally(two, "Kept in the browser.")
    await two.page.close()
    await b_ctx.set_offline(False)
    two = await Window.open(b_ctx, base_url, doc, "Bob", edit=True, rtc=rtc)
    await converged(one, two, containing=["Kept in the browser.", "Added while Bob was away."])

    # The toolbar helper: to-do, table, image by URL; unsafe URLs are refused.
    await one.type_at_end("\n")
    await one.page.evaluate("window.commands.taskList.run()")
    await one.page.keyboard.type("Record the demo\nBook the room")
    await one.page.locator('.th-editor ul[data-type="taskList"] input').first.check()
    await expect(two.page.locator('.th-editor li[data-checked="true"]')).to_contain_text(
        "Record the demo"
    )
    await one.page.evaluate("window.mounted.editor.commands.focus('end')")
    await one.page.evaluate("window.commands.table.run({rows: 2, cols: 3})")
    await one.page.keyboard.type("Owner")
    await one.page.evaluate("window.mounted.editor.commands.focus('end')")
    assert await one.page.evaluate("window.commands.image.run('/e2e/picture.svg', 'Roadmap')")
    assert await one.page.evaluate("window.commands.image.run('javascript:alert(1)')") is False
    assert await one.page.evaluate("window.commands.link.run('javascript:alert(1)')") is False
    await expect(two.page.locator(".th-editor table th").first).to_contain_text("Owner")
    await expect(two.page.locator(".th-editor img[src='/e2e/picture.svg']")).to_be_visible()
    await converged(one, two, containing=["Record the demo", "Owner"])

    # A viewer (signed out, canEdit=false) sees the page live but cannot change it.
    v_ctx = await signed_in_context(browser, base_url, None, bypass_csp=True)
    viewer = await Window.open(v_ctx, base_url, doc, "Guest", edit=False, rtc=rtc)
    before = await converged(one, two, viewer, containing=["Kept in the browser."])
    await expect(viewer.editor).to_have_attribute("contenteditable", "false")
    await viewer.editor.click()
    await viewer.page.keyboard.type("vandalism")
    await one.type_at_end("\nLast line by Alice.")
    after = await converged(one, two, viewer, containing=["Last line by Alice."])
    assert "vandalism" not in await viewer.text()
    assert after != before

    # Signed out on a document that is not public: the page is told, and stops retrying.
    private = await Window.open(
        v_ctx, base_url, doc[len("public-") :], "Guest", edit=False, rtc=rtc
    )
    await expect(private.page.locator("#status")).to_have_text("denied")
    assert (await private.status())["denied"]["code"] == 4401
    assert await private.text() == ""

    # The leader saver posted the document; the server's copy has what was typed.
    statuses = [await one.status(), await two.status()]
    assert sum(s["saves"] for s in statuses) >= 1
    assert [s["leader"] for s in statuses].count(True) == 1
    async with httpx.AsyncClient(base_url=base_url, timeout=20, headers=alice["headers"]) as http:
        await server_has(http, doc, "Last line by Alice.")
        # After a flush the buffer is empty: the state read back comes from the database.
        engine: CollabEngine = app.state.collab
        assert (await engine.flush()).documents >= 1
        assert "Written on the train." in await server_text(http, doc)

    # One Yjs in the bundle, no page errors.
    for window in (one, two, viewer, private):
        assert not [m for m in window.console if "Yjs was already imported" in m]
        assert not [m for m in window.console if m.startswith("pageerror")]

    # WebRTC is best effort (no STUN here): record whether editors' data channels opened.
    # Viewers never join the mesh (a peer trusts what peers send); they follow the server room.
    peers = [await w.page.evaluate("window.seen.webrtcPeers") for w in (one, two, viewer)]
    now = [(await w.status())["webrtcPeers"] for w in (one, two, viewer)]
    assert peers[2] == now[2] == 0
    if not rtc:
        assert peers == now == [0, 0, 0]
    ARTIFACTS.mkdir(exist_ok=True)
    mode = "webrtc" if rtc else "websocket"
    await two.page.locator(".th-editor h1").click()  # Bob's named caret in Alice's window
    await expect(one.page.locator(".collaboration-carets__label", has_text="Bob")).to_be_visible()
    await one.page.screenshot(path=str(ARTIFACTS / f"editor-{mode}.png"), full_page=True)
    (ARTIFACTS / f"webrtc-{mode}.txt").write_text(
        f"WebRTC peers connected, most seen {peers}, at the end {now}\n"
    )
    for context in (a_ctx, b_ctx, v_ctx):
        await context.close()
