"""URL normalisation and hashing: one page saved in many spellings is one link."""

from __future__ import annotations

import pytest

from townhall.modules.link.urls import InvalidURL, normalize_url, url_hash, youtube_video_id

SAME = [
    (
        "HTTPS://WWW.Example.COM:443/a/b/?utm_source=x&b=2&a=1#frag",
        "https://example.com/a/b?a=1&b=2",
    ),
    ("http://example.com:80", "http://example.com/"),
    ("https://m.example.com/page?fbclid=abc&gclid=1", "https://example.com/page"),
    ("https://example.com/x//y/", "https://example.com/x/y"),
    ("example.com/path", "https://example.com/path"),
    ("https://youtu.be/abc123?si=zz", "https://youtube.com/watch?v=abc123"),
    ("https://m.youtube.com/watch?v=abc123&feature=share", "https://youtube.com/watch?v=abc123"),
    ("https://www.youtube.com/shorts/XYZ", "https://youtube.com/watch?v=XYZ"),
    ("https://www.youtube.com/embed/XYZ?start=3", "https://youtube.com/watch?v=XYZ"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    (
        "https://ko.wikipedia.org/wiki/리액트",
        "https://ko.wikipedia.org/wiki/%EB%A6%AC%EC%95%A1%ED%8A%B8",
    ),
    ("https://bücher.de/", "https://xn--bcher-kva.de/"),
]


@pytest.mark.parametrize(("raw", "expected"), SAME)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected


def test_spellings_share_one_hash() -> None:
    spellings = [
        "https://www.example.com/post/",
        "HTTPS://example.com/post?utm_campaign=x#top",
        "https://example.com:443/post",
    ]
    assert len({url_hash(normalize_url(s)) for s in spellings}) == 1
    assert len(url_hash(normalize_url(spellings[0]))) == 64


def test_different_pages_differ() -> None:
    assert normalize_url("https://example.com/a?page=2") != normalize_url("https://example.com/a")
    assert normalize_url("http://example.com/") != normalize_url("https://example.com/")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "not a url",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://example.com/",
        "data:text/html,hi",
        "http://",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://" + "a" * 10_000 + ".com/",
    ],
)
def test_invalid_urls(raw: str) -> None:
    with pytest.raises(InvalidURL):
        normalize_url(raw)


def test_youtube_id() -> None:
    assert youtube_video_id(normalize_url("https://youtu.be/abc")) == "abc"
    assert youtube_video_id("https://example.com/watch?v=abc") is None
