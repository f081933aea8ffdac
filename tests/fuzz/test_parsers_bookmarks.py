"""Bookmark files (Unprocessable = 422 only) and scraped HTML metadata (never raises)."""

from __future__ import annotations

import contextlib
import json
import time

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import fuzz, fuzz_slow, json_values, texts
from townhall.core.errors import Unprocessable
from townhall.modules.link.bookmarks import parse_netscape
from townhall.modules.link.extract import extract, main_text

tags = st.sampled_from(
    [
        "a",
        "A",
        "dl",
        "DL",
        "dt",
        "dd",
        "DD",
        "h3",
        "H3",
        "p",
        "meta",
        "title",
        "h1",
        "link",
        "script",
        "body",
        "html",
        "head",
        "br",
        "img",
        "style",
        "noscript",
        "nav",
    ]
) | st.text(min_size=1, max_size=6)
names = st.sampled_from(
    [
        "href",
        "HREF",
        "add_date",
        "ADD_DATE",
        "tags",
        "property",
        "name",
        "content",
        "type",
        "itemprop",
        "rel",
        "src",
    ]
) | st.text(max_size=6)
values = (
    st.sampled_from(["og:image", "og:title", "og:type", "article", "video", "description"])
    | st.sampled_from(["application/ld+json", "application/json+oembed", "image_src"])
    | st.sampled_from(["http://[::1", "//[x", "https://a]b/", "javascript:x", "", "\x00"])
    | st.integers(-(10**20), 10**20).map(str)
    | st.text(max_size=8)
)


@st.composite
def attrs(draw: st.DrawFn) -> str:
    out = ""
    for name, value in draw(st.lists(st.tuples(names, values), max_size=3)):
        quote = draw(st.sampled_from(['"', "'", ""]))
        out += f" {name}={quote}{value}{quote}"
    return out


def _node(tag: str, attributes: str, body: str, close: bool) -> str:
    return f"<{tag}{attributes}>{body}" + (f"</{tag}>" if close else "")


# Well-formed metadata tags, so that their contents reach the metadata code.
metas = st.builds(
    '<meta property="{}" content="{}">'.format,
    st.sampled_from(["og:image", "og:title", "twitter:image", "article:published_time"]),
    values,
) | st.builds('<link rel="image_src" href="{}">'.format, values)
leaf = texts | json_values.map(json.dumps) | metas
nodes = st.recursive(
    leaf,
    lambda children: st.builds(
        _node, tags, attrs(), st.lists(children, max_size=3).map("".join), st.booleans()
    ),
    max_leaves=12,
)
documents = st.lists(nodes, max_size=4).map("".join)
bookmark_files = st.builds(
    lambda body, head: head + "<DL><p>" + body + "</DL>",
    documents,
    st.sampled_from(["<!DOCTYPE NETSCAPE-Bookmark-file-1>", "", "<a"]),
)


@given(bookmark_files | documents | st.text(max_size=200))
@fuzz
def test_parse_netscape(text: str) -> None:
    try:
        entries = parse_netscape(text)
    except Unprocessable:
        return
    assert entries
    assert all(entry.url for entry in entries)


@given(
    st.sampled_from(["<A HREF=x>", "<H3>x", "<a ", "<DL><p>", "<DT><A HREF=x>t</A><DD>"]),
    st.integers(1, 20_000),
)
@fuzz_slow
def test_parse_netscape_is_linear(unit: str, count: int) -> None:
    """Unclosed tags by the thousand (a 20 MB upload allows millions): no quadratic scan."""
    started = time.monotonic()
    with contextlib.suppress(Unprocessable):
        parse_netscape("<!DOCTYPE NETSCAPE-Bookmark-file-1><DL>" + unit * count)
    assert time.monotonic() - started < 2  # 200 kB; the quadratic regex took 17 s here


@given(
    documents | st.text(max_size=200), st.sampled_from(["https://example.com/a/", "http://[::1]/"])
)
@fuzz
def test_extract(html: str, base_url: str) -> None:
    extract(html, base_url)


@given(documents | st.text(max_size=200))
@fuzz_slow
def test_main_text(html: str) -> None:
    main_text(html)
