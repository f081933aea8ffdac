"""Page bodies: Yjs state to Markdown/HTML/text, Markdown import, and the API around them."""

from __future__ import annotations

import httpx
import pycrdt
from fastapi import FastAPI
from tests.modules.doc.conftest import Team

from townhall.modules.doc.content import (
    FRAGMENT,
    Node,
    Span,
    build_update,
    parse_markdown,
    plain_text,
    read_state,
    to_html,
    to_markdown,
)

API = "/api/v1/doc"


def known_doc() -> bytes:
    """A TipTap-shaped document written with pycrdt directly, as y-prosemirror stores it."""
    doc: pycrdt.Doc = pycrdt.Doc()  # type: ignore[type-arg]
    fragment = doc.get(FRAGMENT, type=pycrdt.XmlFragment)
    heading = fragment.children.append(pycrdt.XmlElement("heading", {"level": 2}))
    heading.children.append(pycrdt.XmlText("Plan"))
    para = fragment.children.append(pycrdt.XmlElement("paragraph"))
    text = para.children.append(pycrdt.XmlText())
    text.insert(0, "Read ")
    text.insert(5, "this", {"bold": {}})
    text.insert(9, " and ")
    text.insert(14, "that", {"link": {"href": "https://example.com/a"}, "italic": {}})
    tasks = fragment.children.append(pycrdt.XmlElement("taskList"))
    for label, done in (("ship it", True), ("tell people", False)):
        item = tasks.children.append(pycrdt.XmlElement("taskItem", {"checked": done}))
        item.children.append(pycrdt.XmlElement("paragraph")).children.append(pycrdt.XmlText(label))
    table = fragment.children.append(pycrdt.XmlElement("table"))
    for cells, tag in ((("Name", "Qty"), "tableHeader"), (("Apples", "3"), "tableCell")):
        row = table.children.append(pycrdt.XmlElement("tableRow"))
        for cell in cells:
            row.children.append(pycrdt.XmlElement(tag)).children.append(
                pycrdt.XmlElement("paragraph")
            ).children.append(pycrdt.XmlText(cell))
    code = fragment.children.append(pycrdt.XmlElement("codeBlock", {"language": "sql"}))
    code.children.append(pycrdt.XmlText("SELECT 1;"))
    fragment.children.append(pycrdt.XmlElement("horizontalRule"))
    fragment.children.append(pycrdt.XmlElement("image", {"src": "https://example.com/i.png"}))
    return doc.get_update()


KNOWN_MD = """# Groceries

## Plan

Read **this** and [*that*](https://example.com/a)

- [x] ship it
- [ ] tell people

| Name | Qty |
| --- | --- |
| Apples | 3 |

```sql
SELECT 1;
```

---

![](https://example.com/i.png)
"""

KNOWN_HTML_BODY = (
    "<h2>Plan</h2>\n"
    '<p>Read <strong>this</strong> and <a href="https://example.com/a"><em>that</em></a></p>\n'
    '<ul data-type="taskList"><li data-checked="true"><input type="checkbox" disabled checked> '
    '<p>ship it</p></li><li data-checked="false"><input type="checkbox" disabled> '
    "<p>tell people</p></li></ul>\n"
    "<table><tbody><tr><th>Name</th><th>Qty</th></tr><tr><td>Apples</td><td>3</td></tr>"
    "</tbody></table>\n"
    '<pre><code class="language-sql">SELECT 1;</code></pre>\n'
    "<hr>\n"
    '<img src="https://example.com/i.png" alt="">'
)


def test_known_doc_to_markdown_html_and_text() -> None:
    items = read_state(known_doc())
    assert to_markdown(items, "Groceries") == KNOWN_MD
    assert KNOWN_HTML_BODY in to_html(items, "Groceries")
    assert plain_text(items).split("\n") == [
        "Plan",
        "Read this and that",
        "ship it",
        "tell people",
        "Name",
        "Qty",
        "Apples",
        "3",
        "SELECT 1;",
    ]


def test_markdown_round_trip() -> None:
    title, blocks = parse_markdown(KNOWN_MD)
    assert title == "Groceries"
    assert read_state(build_update(blocks)) == read_state(known_doc())
    assert to_markdown(read_state(build_update(blocks)), title) == KNOWN_MD


def test_lists_quotes_and_marks_round_trip() -> None:
    source = "- one\n- two\n  - nested ~~old~~ `code`\n\n3. three\n4. four\n\n> quoted *text*\n"
    _, blocks = parse_markdown(source)
    items = read_state(build_update(blocks))
    assert [b.tag for b in items if isinstance(b, Node)] == [
        "bulletList",
        "orderedList",
        "blockquote",
    ]
    assert to_markdown(items) == source


def test_unsafe_links_do_not_reach_html() -> None:
    blocks: list[Node | Span] = [
        Node("paragraph", {}, [Span("x", {"link": {"href": "javascript:alert(1)"}})]),
        Node("paragraph", {}, [Span("<script>alert(1)</script>")]),
    ]
    html = to_html(read_state(build_update(blocks)), "<b>t</b>")
    assert "javascript:" not in html
    assert "<script>" not in html
    assert "&lt;b&gt;t&lt;/b&gt;" in html


async def _page_with(client: httpx.AsyncClient, team: Team, update: bytes) -> None:
    saved = await client.post(
        f"/api/v1/doc/save?id={team.page_id.replace('-', '')}",
        content=update,
        headers={**team.headers("editor"), "content-type": "application/octet-stream"},
    )
    assert saved.status_code == 200, saved.text


async def test_export_of_a_saved_doc(client: httpx.AsyncClient, app: FastAPI, team: Team) -> None:
    await client.patch(
        f"{API}/pages/{team.page_id}", json={"title": "Groceries"}, headers=team.headers("owner")
    )
    await _page_with(client, team, known_doc())
    # Before the flush (state still in the write-back buffer) and after it: the same export.
    for _ in range(2):
        md = await client.get(
            f"{API}/pages/{team.page_id}/export?format=md", headers=team.headers("viewer")
        )
        assert md.status_code == 200
        assert md.headers["content-type"].startswith("text/markdown")
        assert "Groceries.md" in md.headers["content-disposition"]
        assert md.text == KNOWN_MD
        html = await client.get(
            f"{API}/pages/{team.page_id}/export?format=html", headers=team.headers("viewer")
        )
        assert html.headers["content-type"].startswith("text/html")
        assert KNOWN_HTML_BODY in html.text
        await app.state.collab.flush()
    bad = await client.get(
        f"{API}/pages/{team.page_id}/export?format=pdf", headers=team.headers("viewer")
    )
    assert bad.status_code == 422


async def test_viewer_cannot_save_into_a_page(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.post(
        f"/api/v1/doc/save?id={team.page_id.replace('-', '')}",
        content=known_doc(),
        headers={**team.headers("viewer"), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 403
    outsider = await client.post(
        f"/api/v1/doc/save?id={team.page_id.replace('-', '')}",
        content=known_doc(),
        headers={**team.headers("outsider"), "content-type": "application/octet-stream"},
    )
    assert outsider.status_code == 403


async def test_import_markdown_round_trip(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("editor")
    created = await client.post(
        f"{API}/workspaces/{team.workspace_id}/import",
        json={"markdown": KNOWN_MD, "parent_id": team.page_id},
        headers=h,
    )
    assert created.status_code == 201, created.text
    page = created.json()
    assert page["title"] == "Groceries"
    assert page["parent_id"] == team.page_id
    exported = await client.get(f"{API}/pages/{page['id']}/export?format=md", headers=h)
    assert exported.text == KNOWN_MD
    # Imported text is searchable at once (no flush needed for the first state).
    hits = (await client.get(f"{API}/search?q=apples", headers=h)).json()
    assert [hit["title"] for hit in hits] == ["Groceries"]


async def test_import_bad_input(client: httpx.AsyncClient, team: Team) -> None:
    h = team.headers("editor")
    url = f"{API}/workspaces/{team.workspace_id}/import"
    too_long = await client.post(url, json={"markdown": "x" * 1_000_001}, headers=h)
    assert too_long.status_code in (413, 422)
    not_json = await client.post(
        url, content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert not_json.status_code == 400
    # Odd Markdown is still a page, never a 500.
    odd = await client.post(
        url, json={"markdown": "<div>\n\n* \n\n|a|\n|-|\n\n```\nunclosed"}, headers=h
    )
    assert odd.status_code == 201
