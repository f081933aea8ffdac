"""Page bodies as Yjs state: the TipTap XmlFragment to text/Markdown/HTML and Markdown back."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, cast

import pycrdt
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

# The TipTap Collaboration extension's default fragment name.
FRAGMENT = "default"

Marks = dict[str, dict[str, Any]]


@dataclass
class Span:
    """A run of text with its marks (bold, italic, code, strike, link)."""

    text: str
    marks: Marks = field(default_factory=dict)


@dataclass
class Node:
    """An element of the ProseMirror tree: a TipTap node name, attributes, children."""

    tag: str
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Node | Span] = field(default_factory=list)


# Reading the Yjs state -----------------------------------------------------------------------


def _mark_name(key: str) -> str:
    # y-prosemirror stores overlapping marks of one type as "<name>--<hash>".
    return key.split("--", 1)[0]


def _read(xml: Any) -> list[Node | Span]:
    out: list[Node | Span] = []
    for child in xml.children:
        if isinstance(child, pycrdt.XmlText):
            for chunk, attrs in child.diff():
                if isinstance(chunk, str) and chunk:
                    marks = {
                        _mark_name(k): (v if isinstance(v, dict) else {})
                        for k, v in (attrs or {}).items()
                        if v is not None
                    }
                    out.append(Span(chunk, marks))
        elif isinstance(child, pycrdt.XmlElement):
            attrs = {k: v for k, v in list(cast("Any", child.attributes)) if v is not None}
            out.append(Node(str(child.tag), attrs, _read(child)))
    return out


def read_state(state: bytes) -> list[Node | Span]:
    """The top-level blocks of a page body stored as a Yjs update."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    if state:
        doc.apply_update(state)
    return _read(doc.get(FRAGMENT, type=pycrdt.XmlFragment))


# Writing the Yjs state -----------------------------------------------------------------------


def _write(parent: Any, items: list[Node | Span]) -> None:
    text: Any = None
    offset = 0
    for item in items:
        if isinstance(item, Span):
            if text is None:
                text = parent.children.append(pycrdt.XmlText())
                offset = 0
            text.insert(offset, item.text, dict(item.marks) or None)
            offset += len(item.text)
            continue
        text = None
        element = parent.children.append(pycrdt.XmlElement(item.tag, dict(item.attrs)))
        _write(element, item.children)


def build_update(blocks: list[Node | Span], doc: pycrdt.Doc[Any] | None = None) -> bytes:
    """A Yjs update appending `blocks` to the page fragment of `doc` (a new doc by default)."""
    doc = doc if doc is not None else pycrdt.Doc()
    before = doc.get_state()
    fragment = doc.get(FRAGMENT, type=pycrdt.XmlFragment)
    with doc.transaction(origin="doc-import"):
        _write(fragment, blocks)
    return doc.get_update(before)


# Plain text (search) -------------------------------------------------------------------------


def plain_text(items: list[Node | Span]) -> str:
    """The words of a body, one line per block, for search and snippets."""
    lines: list[str] = []

    def walk(nodes: list[Node | Span]) -> None:
        run: list[str] = []
        for node in nodes:
            if isinstance(node, Span):
                run.append(node.text)
            elif node.tag == "hardBreak":
                run.append(" ")
            else:
                lines.append("".join(run))
                run = []
                walk(node.children)
        lines.append("".join(run))

    walk(items)
    return "\n".join(line.strip() for line in lines if line.strip())


# Markdown export -----------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md_inline(items: list[Node | Span], *, in_table: bool = False) -> str:
    out = ""
    for item in items:
        if isinstance(item, Node):
            if item.tag == "hardBreak":
                out += " " if in_table else "\\\n"
            elif item.tag == "image":
                out += f"![{item.attrs.get('alt') or ''}]({item.attrs.get('src', '')})"
            else:
                out += _md_inline(item.children, in_table=in_table)
            continue
        marks = item.marks
        if "code" in marks:
            text = f"`{item.text}`"
        else:
            text = _MD_SPECIAL.sub(r"\\\1", item.text)
            if "bold" in marks:
                text = f"**{text}**"
            if "italic" in marks:
                text = f"*{text}*"
            if "strike" in marks:
                text = f"~~{text}~~"
        if "link" in marks:
            text = f"[{text}]({marks['link'].get('href', '')})"
        out += text
    return out


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0]] + [(rest + line if line else line) for line in lines[1:]])


def _md_blocks(items: list[Node | Span]) -> str:
    return "\n\n".join(b for b in (_md_block(i) for i in items) if b is not None)


_LISTS = ("bulletList", "orderedList", "taskList")


def _md_list_item(item: Node, marker: str) -> str:
    body = ""
    for child in item.children:
        block = _md_block(child)
        if block is None:
            continue
        # A nested list follows its line directly, so the list stays tight.
        nested = isinstance(child, Node) and child.tag in _LISTS
        body += ("\n" if nested else "\n\n") + block if body else block
    return _indent(body, marker, " " * len(marker))


def _md_block(item: Node | Span) -> str | None:
    if isinstance(item, Span):
        return _md_inline([item])
    tag, attrs = item.tag, item.attrs
    if tag == "paragraph":
        return _md_inline(item.children)
    if tag == "heading":
        return "#" * min(6, max(1, int(attrs.get("level", 1)))) + " " + _md_inline(item.children)
    if tag == "bulletList":
        return "\n".join(_md_list_item(li, "- ") for li in item.children if isinstance(li, Node))
    if tag == "orderedList":
        start = int(attrs.get("start", 1))
        return "\n".join(
            _md_list_item(li, f"{start + n}. ")
            for n, li in enumerate(c for c in item.children if isinstance(c, Node))
        )
    if tag == "taskList":
        return "\n".join(
            _md_list_item(li, "- [x] " if li.attrs.get("checked") else "- [ ] ")
            for li in item.children
            if isinstance(li, Node)
        )
    if tag == "blockquote":
        return _indent(_md_blocks(item.children), "> ", "> ").replace("\n\n", "\n>\n")
    if tag == "codeBlock":
        code = "".join(c.text for c in item.children if isinstance(c, Span))
        fence = "````" if "```" in code else "```"
        return f"{fence}{attrs.get('language') or ''}\n{code}\n{fence}"
    if tag == "horizontalRule":
        return "---"
    if tag == "image":
        return f"![{attrs.get('alt') or ''}]({attrs.get('src', '')})"
    if tag == "table":
        return _md_table(item)
    return _md_blocks(item.children) or None


def _md_cell(cell: Node) -> str:
    parts = [
        _md_inline(c.children, in_table=True) if isinstance(c, Node) else _md_inline([c])
        for c in cell.children
    ]
    return " ".join(p for p in parts if p) or " "


def _md_table(table: Node) -> str:
    rows = [
        [_md_cell(c) for c in row.children if isinstance(c, Node)]
        for row in table.children
        if isinstance(row, Node)
    ]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [" "] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def to_markdown(items: list[Node | Span], title: str | None = None) -> str:
    """CommonMark (+ GFM tables, task lists, strikethrough) of a page body."""
    body = _md_blocks(items)
    if title:
        body = f"# {title}\n\n{body}" if body else f"# {title}"
    return body + "\n"


# HTML export ---------------------------------------------------------------------------------

_SAFE_URL = re.compile(r"^(https?:|mailto:|/|#)", re.IGNORECASE)


def _url(value: Any) -> str:
    text = str(value or "")
    # A javascript: href in someone's page must not run in a reader's browser.
    return html.escape(text if _SAFE_URL.match(text) else "#", quote=True)


def _html_inline(items: list[Node | Span]) -> str:
    out = ""
    for item in items:
        if isinstance(item, Node):
            if item.tag == "hardBreak":
                out += "<br>"
            elif item.tag == "image":
                out += _html_block(item)
            else:
                out += _html_inline(item.children)
            continue
        text = html.escape(item.text)
        marks = item.marks
        for name, tag in (("code", "code"), ("bold", "strong"), ("italic", "em"), ("strike", "s")):
            if name in marks:
                text = f"<{tag}>{text}</{tag}>"
        if "link" in marks:
            text = f'<a href="{_url(marks["link"].get("href"))}">{text}</a>'
        out += text
    return out


_HTML_TAGS = {
    "bulletList": "ul",
    "orderedList": "ol",
    "listItem": "li",
    "blockquote": "blockquote",
    "tableRow": "tr",
    "tableCell": "td",
    "tableHeader": "th",
}


def _html_children(item: Node) -> str:
    if any(isinstance(c, Node) and c.tag not in ("hardBreak",) for c in item.children):
        return "".join(_html_block(c) for c in item.children)
    return _html_inline(item.children)


def _html_block(item: Node | Span) -> str:
    if isinstance(item, Span):
        return _html_inline([item])
    tag, attrs = item.tag, item.attrs
    if tag == "paragraph":
        return f"<p>{_html_inline(item.children)}</p>"
    if tag == "heading":
        level = min(6, max(1, int(attrs.get("level", 1))))
        return f"<h{level}>{_html_inline(item.children)}</h{level}>"
    if tag == "codeBlock":
        code = html.escape("".join(c.text for c in item.children if isinstance(c, Span)))
        language = attrs.get("language")
        cls = f' class="language-{html.escape(str(language), quote=True)}"' if language else ""
        return f"<pre><code{cls}>{code}</code></pre>"
    if tag == "horizontalRule":
        return "<hr>"
    if tag == "image":
        alt = html.escape(str(attrs.get("alt") or ""), quote=True)
        return f'<img src="{_url(attrs.get("src"))}" alt="{alt}">'
    if tag == "taskList":
        return f'<ul data-type="taskList">{_html_children(item)}</ul>'
    if tag == "taskItem":
        checked = bool(attrs.get("checked"))
        box = f'<input type="checkbox" disabled{" checked" if checked else ""}>'
        state = "true" if checked else "false"
        return f'<li data-checked="{state}">{box} {_html_children(item)}</li>'
    if tag == "table":
        return f"<table><tbody>{_html_children(item)}</tbody></table>"
    if tag == "orderedList" and int(attrs.get("start", 1)) != 1:
        return f'<ol start="{int(attrs["start"])}">{_html_children(item)}</ol>'
    if tag in ("tableCell", "tableHeader"):
        name = _HTML_TAGS[tag]
        inner = "".join(
            _html_inline(c.children)
            if isinstance(c, Node) and c.tag == "paragraph"
            else _html_block(c)
            for c in item.children
        )
        return f"<{name}>{inner}</{name}>"
    html_tag = _HTML_TAGS.get(tag)
    if html_tag is None:
        return _html_children(item)
    return f"<{html_tag}>{_html_children(item)}</{html_tag}>"


def to_html_fragment(items: list[Node | Span]) -> str:
    """The body as HTML elements (no document wrapper)."""
    return "\n".join(_html_block(i) for i in items)


def to_html(items: list[Node | Span], title: str) -> str:
    """A standalone HTML document of the page."""
    escaped = html.escape(title)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{escaped}</title></head>\n<body>\n<h1>{escaped}</h1>\n"
        f"{to_html_fragment(items)}\n</body></html>\n"
    )


# Markdown import -----------------------------------------------------------------------------

_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_TASK = re.compile(r"^\[([ xX])\]\s+")


def _inline(node: SyntaxTreeNode, marks: Marks | None = None) -> list[Node | Span]:
    marks = marks or {}
    out: list[Node | Span] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            if child.content:
                out.append(Span(child.content, dict(marks)))
        elif kind == "softbreak":
            out.append(Span(" ", dict(marks)))
        elif kind == "hardbreak":
            out.append(Node("hardBreak"))
        elif kind == "code_inline":
            out.append(Span(child.content, {**marks, "code": {}}))
        elif kind == "strong":
            out += _inline(child, {**marks, "bold": {}})
        elif kind == "em":
            out += _inline(child, {**marks, "italic": {}})
        elif kind == "s":
            out += _inline(child, {**marks, "strike": {}})
        elif kind == "link":
            out += _inline(child, {**marks, "link": {"href": str(child.attrs.get("href", ""))}})
        elif kind == "image":
            alt = "".join(c.content for c in child.children) or child.content
            attrs: dict[str, Any] = {"src": str(child.attrs.get("src", ""))}
            if alt:
                attrs["alt"] = alt
            out.append(Node("image", attrs))
        elif kind == "html_inline":
            out.append(Span(child.content, dict(marks)))
        else:
            out += _inline(child, marks)
    return _merge_spans(out)


def _merge_spans(items: list[Node | Span]) -> list[Node | Span]:
    out: list[Node | Span] = []
    for item in items:
        last = out[-1] if out else None
        if isinstance(item, Span) and isinstance(last, Span) and last.marks == item.marks:
            last.text += item.text
        else:
            out.append(item)
    return out


def _paragraph(inline: list[Node | Span]) -> list[Node | Span]:
    # An image alone on a line is a block image in TipTap.
    if len(inline) == 1 and isinstance(inline[0], Node) and inline[0].tag == "image":
        return [inline[0]]
    return [Node("paragraph", {}, inline)]


def _inline_of(node: SyntaxTreeNode) -> list[Node | Span]:
    return _inline(node.children[0]) if node.children else []


def _task_items(node: SyntaxTreeNode) -> list[Node] | None:
    """The items of a bullet list written as `- [ ] task`, or None for an ordinary list."""
    items: list[Node] = []
    for li in node.children:
        blocks = _blocks(li.children)
        first = blocks[0] if blocks else None
        if not (isinstance(first, Node) and first.tag == "paragraph" and first.children):
            return None
        head = first.children[0]
        if not isinstance(head, Span):
            return None
        match = _TASK.match(head.text)
        if match is None:
            return None
        head.text = head.text[match.end() :]
        if not head.text:
            first.children.pop(0)
        items.append(Node("taskItem", {"checked": match.group(1) != " "}, blocks))
    return items


def _table(node: SyntaxTreeNode) -> Node:
    rows: list[Node | Span] = []
    for section in node.children:
        for tr in section.children:
            cells: list[Node | Span] = []
            for cell in tr.children:
                tag = "tableHeader" if cell.type == "th" else "tableCell"
                cells.append(Node(tag, {}, [Node("paragraph", {}, _inline_of(cell))]))
            rows.append(Node("tableRow", {}, cells))
    return Node("table", {}, rows)


def _blocks(nodes: list[SyntaxTreeNode]) -> list[Node | Span]:
    out: list[Node | Span] = []
    for node in nodes:
        kind = node.type
        if kind == "paragraph":
            out += _paragraph(_inline_of(node))
        elif kind == "heading":
            out.append(Node("heading", {"level": int(node.tag[1])}, _inline_of(node)))
        elif kind == "bullet_list":
            tasks = _task_items(node)
            if tasks is not None:
                out.append(Node("taskList", {}, list(tasks)))
            else:
                out.append(
                    Node(
                        "bulletList",
                        {},
                        [Node("listItem", {}, _blocks(li.children)) for li in node.children],
                    )
                )
        elif kind == "ordered_list":
            start = int(str(node.attrs.get("start", 1)))
            items: list[Node | Span] = [
                Node("listItem", {}, _blocks(li.children)) for li in node.children
            ]
            out.append(Node("orderedList", {"start": start}, items))
        elif kind == "blockquote":
            out.append(Node("blockquote", {}, _blocks(node.children)))
        elif kind in ("fence", "code_block"):
            code = node.content[:-1] if node.content.endswith("\n") else node.content
            attrs: dict[str, Any] = {}
            language = (node.info or "").strip().split(" ")[0]
            if language:
                attrs["language"] = language
            out.append(Node("codeBlock", attrs, [Span(code)] if code else []))
        elif kind == "hr":
            out.append(Node("horizontalRule"))
        elif kind == "table":
            out.append(_table(node))
        elif kind == "html_block":
            out.append(Node("paragraph", {}, [Span(node.content.strip())]))
    # ProseMirror list items and cells must hold at least one block.
    return out


def parse_markdown(text: str) -> tuple[str | None, list[Node | Span]]:
    """Markdown to page blocks; a leading `# Title` is returned apart as the page title."""
    tree = SyntaxTreeNode(_md.parse(text))
    blocks = _blocks(tree.children)
    title: str | None = None
    first = blocks[0] if blocks else None
    if isinstance(first, Node) and first.tag == "heading" and first.attrs.get("level") == 1:
        title = "".join(c.text for c in first.children if isinstance(c, Span)).strip() or None
        if title is not None:
            blocks = blocks[1:]
    _fill_empty(blocks)
    return title, blocks


def _fill_empty(blocks: list[Node | Span]) -> None:
    for block in blocks:
        if isinstance(block, Node):
            if block.tag in ("listItem", "taskItem", "blockquote") and not block.children:
                block.children.append(Node("paragraph"))
            _fill_empty(block.children)
