"""URL normalisation before hashing, so one page saved twice is one link."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from townhall.core.errors import Unprocessable

MAX_URL_LENGTH = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "si",
        "spm",
        "vero_id",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "_ga",
        "_gl",
        "feature",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "itm_")
_YOUTUBE_HOSTS = frozenset({"youtube.com", "music.youtube.com", "youtube-nocookie.com"})
_HOST_RE = re.compile(r"^[a-z0-9.\-\[\]:]+$")
# Parameters that only mean something to a tracker on these hosts.
_KEEP_ON_YOUTUBE = frozenset({"v", "list", "t", "index"})


class InvalidURL(Unprocessable):
    """The text is not an http(s) URL we can save."""


def _strip_host_prefixes(host: str) -> str:
    for prefix in ("www.", "m.", "mobile."):
        if host.startswith(prefix) and host.count(".") >= 2:
            return host[len(prefix) :]
    return host


def _youtube(
    host: str, path: str, query: list[tuple[str, str]]
) -> tuple[str, str, list[tuple[str, str]]]:
    """youtu.be/X, /shorts/X and /embed/X all become youtube.com/watch?v=X."""
    video: str | None = None
    if host == "youtu.be" and path.strip("/"):
        video = path.strip("/").split("/", 1)[0]
    elif host in _YOUTUBE_HOSTS:
        match = re.match(r"^/(?:shorts|embed|live|v)/([A-Za-z0-9_\-]+)", path)
        if match:
            video = match.group(1)
    if video is None:
        if host in _YOUTUBE_HOSTS:
            return "youtube.com", path, [(k, v) for k, v in query if k in _KEEP_ON_YOUTUBE]
        return host, path, query
    rest = [(k, v) for k, v in query if k in _KEEP_ON_YOUTUBE and k != "v"]
    return "youtube.com", "/watch", [("v", video), *rest]


def normalize_url(raw: str) -> str:
    """Canonical form: lowercase scheme/host, no default port, fragment or tracking params."""
    text = (raw or "").strip()
    if not text:
        raise InvalidURL("url is empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"url is longer than {MAX_URL_LENGTH} characters")
    if "://" not in text and re.match(r"^[\w.-]+\.[a-z]{2,}(/|$)", text, re.I):
        text = "https://" + text  # "example.com/page" pasted without a scheme
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"only http and https URLs can be saved, not {scheme or 'this'!r}")
    host = (parts.hostname or "").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii").lower() if host else ""
    except UnicodeError as exc:
        raise InvalidURL("the host name is not valid") from exc
    if (
        not host
        or not _HOST_RE.match(host)
        or ("." not in host and ":" not in host and host != "localhost")
    ):
        raise InvalidURL("the URL has no valid host")
    host = _strip_host_prefixes(host)
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1:
        path = path.rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    host, path, query = _youtube(host, path, query)
    query.sort()
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def url_hash(normalized: str) -> str:
    """sha256 of the normalised URL (the dedupe key per user)."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def youtube_video_id(normalized: str) -> str | None:
    """The video id when the normalised URL is a YouTube watch page."""
    parts = urlsplit(normalized)
    if parts.hostname == "youtube.com" and parts.path == "/watch":
        for key, value in parse_qsl(parts.query):
            if key == "v":
                return value
    return None
