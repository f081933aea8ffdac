"""Storage contract suite over local files and a real S3-compatible server, plus /files."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlparse, urlunparse

import httpx
import pytest
from asgi_lifespan import LifespanManager
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from PIL import Image

from tests.fixtures.app import make_settings
from tests.fixtures.s3 import (  # noqa: F401 (the fixture)
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    s3_server,
)
from townhall.core.errors import PayloadTooLarge, Unprocessable
from townhall.core.platform import Platform
from townhall.core.storage import (
    BlobNotFound,
    InvalidKey,
    Storage,
    StorageUnavailable,
    UnsupportedMediaType,
    build_storage,
    resolve_content_type,
    sniff,
)
from townhall.main import create_app


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'


async def chunked(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="session")
def database_url(sqlite_database_url: str) -> str:
    """Storage does not touch the database; one backend is enough for the app fixture."""
    return sqlite_database_url


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """The same contract over LocalStore and S3Store (against moto's HTTP server)."""
    if request.param == "file":
        return build_storage(make_settings(tmp_path))
    server: S3Server = request.getfixturevalue("s3_server")
    return build_storage(
        make_settings(tmp_path, **server.settings_overrides(server.create_bucket()))
    )


class TestPutGet:
    async def test_round_trip_keeps_bytes_and_type(self, storage: Storage) -> None:
        info = await storage.put("photos/2026/a.png", PNG, "image/png")
        assert info.size == len(PNG)
        assert await storage.get("photos/2026/a.png") == PNG
        blob = await storage.get_blob("photos/2026/a.png")
        assert (blob.data, blob.content_type) == (PNG, "image/png")

    async def test_put_replaces(self, storage: Storage) -> None:
        await storage.put("doc.txt", b"old", "text/plain")
        await storage.put("doc.txt", b"new!", "text/markdown")
        blob = await storage.get_blob("doc.txt")
        assert (blob.data, blob.content_type) == (b"new!", "text/markdown")

    async def test_unicode_and_spaces_in_keys(self, storage: Storage) -> None:
        await storage.put("reports/사진 1.jpg", JPEG, "image/jpeg")
        assert await storage.get("reports/사진 1.jpg") == JPEG

    async def test_missing_key_is_not_found(self, storage: Storage) -> None:
        with pytest.raises(BlobNotFound) as caught:
            await storage.get("nope/missing.bin")
        assert caught.value.status_code == 404

    async def test_exists_and_delete(self, storage: Storage) -> None:
        assert not await storage.exists("x/y.bin")
        await storage.put("x/y.bin", b"\x00\x01")
        assert await storage.exists("x/y.bin")
        await storage.delete("x/y.bin")
        assert not await storage.exists("x/y.bin")
        await storage.delete("x/y.bin")  # deleting twice is fine

    async def test_stat_and_open(self, storage: Storage) -> None:
        data = bytes(range(256)) * 1000
        await storage.put("big.bin", data, "application/octet-stream")
        info = await storage.stat("big.bin")
        assert (info.size, info.content_type) == (len(data), "application/octet-stream")
        opened, chunks = await storage.open("big.bin")
        assert opened.size == len(data)
        assert b"".join([chunk async for chunk in chunks]) == data

    async def test_list_keys_by_prefix(self, storage: Storage) -> None:
        for key in ("r/1/a.png", "r/1/b.png", "r/10/c.png", "s/d.png"):
            await storage.put(key, PNG, "image/png")
        assert sorted([k async for k in storage.list_keys("r/1")]) == ["r/1/a.png", "r/1/b.png"]
        assert [k async for k in storage.list_keys("nothing")] == []

    async def test_ping(self, storage: Storage) -> None:
        await storage.ping()

    @pytest.mark.parametrize(
        "key",
        ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "./a", ".meta/a", "a\\b", "a\x00"],
    )
    async def test_unsafe_keys_are_rejected(self, storage: Storage, key: str) -> None:
        with pytest.raises(InvalidKey):
            await storage.put(key, b"x")
        with pytest.raises(InvalidKey):
            await storage.get(key)
        with pytest.raises(InvalidKey):
            await storage.signed_url(key)


class TestPutStream:
    async def test_valid_upload_is_stored_with_declared_type(self, storage: Storage) -> None:
        info = await storage.put_stream(
            "up/a.jpg", chunked(JPEG, 100), max_bytes=1_000_000, declared_type="image/jpg"
        )
        assert (info.size, info.content_type) == (len(JPEG), "image/jpeg")
        blob = await storage.get_blob("up/a.jpg")
        assert (blob.data, blob.content_type) == (JPEG, "image/jpeg")

    async def test_type_is_sniffed_when_not_declared(self, storage: Storage) -> None:
        info = await storage.put_stream(
            "up/a", chunked(PNG), max_bytes=1_000_000, allowed_types=["image/*"]
        )
        assert info.content_type == "image/png"

    async def test_oversize_is_rejected_and_nothing_stored(self, storage: Storage) -> None:
        data = b"a" * 50_000
        with pytest.raises(PayloadTooLarge) as caught:
            await storage.put_stream("up/big.txt", chunked(data), max_bytes=10_000)
        assert caught.value.status_code == 413
        assert "10000" in caught.value.message
        assert not await storage.exists("up/big.txt")

    async def test_pdf_declared_as_jpeg_is_rejected(self, storage: Storage) -> None:
        with pytest.raises(Unprocessable) as caught:
            await storage.put_stream(
                "up/fake.jpg", chunked(PDF), max_bytes=1_000_000, declared_type="image/jpeg"
            )
        assert caught.value.status_code == 422
        assert "image/jpeg" in caught.value.message
        assert "application/pdf" in caught.value.message
        assert not await storage.exists("up/fake.jpg")

    async def test_type_outside_allowed_is_415(self, storage: Storage) -> None:
        with pytest.raises(UnsupportedMediaType) as caught:
            await storage.put_stream(
                "up/doc", chunked(PDF), max_bytes=1_000_000, allowed_types=["image/*"]
            )
        assert caught.value.status_code == 415
        with pytest.raises(UnsupportedMediaType):
            await storage.put_stream(
                "up/doc",
                chunked(PDF),
                max_bytes=1_000_000,
                declared_type="application/pdf",
                allowed_types=["image/png", "image/jpeg"],
            )
        assert not await storage.exists("up/doc")

    async def test_broken_stream_stores_nothing(self, storage: Storage) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield PNG[:50]
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await storage.put_stream("up/broken.png", broken(), max_bytes=1_000_000)
        assert not await storage.exists("up/broken.png")

    async def test_upload_larger_than_the_spool(self, storage: Storage) -> None:
        data = b"\x00\x17" * (5 * 1024 * 1024)  # 10 MiB: written to disk, then sent in parts
        info = await storage.put_stream(
            "up/large.bin", chunked(data, 1024 * 1024), max_bytes=len(data)
        )
        assert info.size == len(data)
        assert await storage.get("up/large.bin") == data


class TestSniffing:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (PNG, "image/png"),
            (JPEG, "image/jpeg"),
            (image_bytes("GIF"), "image/gif"),
            (image_bytes("WEBP"), "image/webp"),
            (PDF, "application/pdf"),
            (HTML, "text/html"),
            (SVG, "image/svg+xml"),
            ("héllo, wörld".encode(), "text/plain"),
            (b"\x00\x01\x02\x03binary", None),
        ],
    )
    def test_sniff(self, data: bytes, expected: str | None) -> None:
        assert sniff(data) == expected

    @pytest.mark.parametrize(
        ("data", "declared"),
        [
            (HTML, "image/png"),
            (SVG, "image/png"),
            (b"just text", "image/svg+xml"),
            (PNG, "text/plain"),
            (b"\x00\x01", "text/csv"),
        ],
    )
    def test_mismatches_are_422(self, data: bytes, declared: str) -> None:
        with pytest.raises(Unprocessable):
            resolve_content_type(data, declared)

    @pytest.mark.parametrize(
        ("data", "declared", "stored"),
        [
            (b"a,b\n1,2\n", "text/csv; charset=utf-8", "text/csv"),
            (b'{"a": 1}', "application/json", "application/json"),
            (
                b"PK\x03\x04rest",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (b"\x00\x01\x02", "application/x-custom", "application/x-custom"),
            (PDF, "application/octet-stream", "application/pdf"),
        ],
    )
    def test_matches(self, data: bytes, declared: str, stored: str) -> None:
        assert resolve_content_type(data, declared) == stored


class TestS3SignedUrls:
    async def test_presigned_get_and_put(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.create_bucket()
        storage = build_storage(make_settings(tmp_path, **server.settings_overrides(bucket)))
        await storage.put("s/a.png", PNG, "image/png")
        url = await storage.signed_url("s/a.png", timedelta(minutes=5))
        assert url.startswith(server.endpoint)
        assert "X-Amz-Signature=" in url
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
            assert response.status_code == 200
            assert response.content == PNG
            upload = await storage.signed_url("s/direct.bin", method="PUT")
            # moto stores an empty body for form content types; real S3 does not care.
            put = await http.put(
                upload,
                content=b"direct bytes",
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 200
        assert await storage.get("s/direct.bin") == b"direct bytes"

    @pytest.mark.parametrize("method", ["GET", "PUT"])
    async def test_presigned_url_carries_a_valid_sigv4_signature(
        self, request: pytest.FixtureRequest, tmp_path: Path, method: Literal["GET", "PUT"]
    ) -> None:
        """moto does not check signatures: botocore's signer recomputes ours instead."""
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.create_bucket()
        storage = build_storage(make_settings(tmp_path, **server.settings_overrides(bucket)))
        before = datetime.now(UTC).replace(microsecond=0)
        url = await storage.signed_url("s/photo 1.png", timedelta(minutes=5), method=method)
        after = datetime.now(UTC)
        query = dict(parse_qsl(urlparse(url).query))
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Expires"] == "300"
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert before <= signed_at <= after
        day = signed_at.strftime("%Y%m%d")
        assert query["X-Amz-Credential"] == f"{ACCESS_KEY}/{day}/{REGION}/s3/aws4_request"
        assert query["X-Amz-SignedHeaders"] == "host"
        assert urlparse(url).path == f"/{bucket}/s/photo%201.png"
        assert sigv4_signature(url, method) == query["X-Amz-Signature"]
        # The check can fail: another key, method or expiry does not carry this signature.
        other = url.replace("photo%201", "photo%202")
        assert sigv4_signature(other, method) != query["X-Amz-Signature"]
        assert sigv4_signature(url, "DELETE") != query["X-Amz-Signature"]
        longer = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3600")
        assert sigv4_signature(longer, method) != query["X-Amz-Signature"]

    async def test_expiry_is_bounded(self, storage: Storage) -> None:
        with pytest.raises(ValueError, match="expiry"):
            await storage.signed_url("a", timedelta(days=8))


def sigv4_signature(url: str, method: str) -> str:
    """The SigV4 query signature botocore computes for `url` (minus its own signature)."""
    parsed = urlparse(url)
    pairs = parse_qsl(parsed.query, keep_blank_values=True)
    query = dict(pairs)
    unsigned = urlencode([(k, v) for k, v in pairs if k != "X-Amz-Signature"])
    signing = AWSRequest(method=method, url=urlunparse(parsed._replace(query=unsigned)))
    signing.context["timestamp"] = query["X-Amz-Date"]
    auth = S3SigV4QueryAuth(
        Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION, expires=int(query["X-Amz-Expires"])
    )
    string_to_sign = auth.string_to_sign(signing, auth.canonical_request(signing))
    signature: str = auth.signature(string_to_sign, signing)
    return signature


def _relative(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def _with_query(url: str, **changes: str) -> str:
    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()} | changes
    return f"{parsed.path}?{urlencode(query)}"


class TestLocalSignedUrls:
    async def test_valid_url_serves_the_file(
        self, platform: Platform, client: httpx.AsyncClient
    ) -> None:
        await platform.storage.put("r/photo 1.png", PNG, "image/png")
        url = await platform.storage.signed_url("r/photo 1.png")
        assert url.startswith(f"{platform.settings.base_url}/files/r/photo%201.png?exp=")
        response = await client.get(url)
        assert response.status_code == 200
        assert response.content == PNG
        assert response.headers["content-type"] == "image/png"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-disposition"].startswith("inline;")
        assert "sandbox" in response.headers["content-security-policy"]

    async def test_tampered_signature_is_403(
        self, platform: Platform, client: httpx.AsyncClient
    ) -> None:
        await platform.storage.put("r/a.png", PNG, "image/png")
        url = await platform.storage.signed_url("r/a.png")
        sig = parse_qs(urlparse(url).query)["sig"][0]
        forged = sig[:-1] + ("A" if sig[-1] != "A" else "B")
        for bad in (
            _with_query(url, sig=forged),
            _with_query(url, exp=str(int(time.time()) + 999_999)),
            _relative(url).replace("r/a.png", "r/b.png"),
            urlparse(url).path,
        ):
            response = await client.get(bad)
            assert response.status_code == 403, bad
            assert response.headers["content-type"] == "application/problem+json"
            assert PNG not in response.content

    async def test_other_key_cannot_reuse_a_signature(
        self, platform: Platform, client: httpx.AsyncClient
    ) -> None:
        await platform.storage.put("r/secret.png", PNG, "image/png")
        url = await platform.storage.signed_url("r/public.png")
        response = await client.get(_relative(url).replace("public", "secret"))
        assert response.status_code == 403

    async def test_expired_url_is_403(self, platform: Platform, client: httpx.AsyncClient) -> None:
        await platform.storage.put("r/a.png", PNG, "image/png")
        past = int(time.time()) - 10
        sig = platform.storage.signer.signature("GET", "r/a.png", past)
        response = await client.get(f"/files/r/a.png?{urlencode({'exp': past, 'sig': sig})}")
        assert response.status_code == 403
        assert "expired" in response.json()["detail"]

    async def test_missing_file_is_404(self, platform: Platform, client: httpx.AsyncClient) -> None:
        url = await platform.storage.signed_url("r/gone.png")
        response = await client.get(url)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        ("data", "content_type"), [(HTML, "text/html"), (SVG, "image/svg+xml")]
    )
    async def test_active_content_cannot_run(
        self, platform: Platform, client: httpx.AsyncClient, data: bytes, content_type: str
    ) -> None:
        await platform.storage.put("u/page", data, content_type)
        response = await client.get(await platform.storage.signed_url("u/page"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_signed_put_uploads_checked_content(
        self, platform: Platform, client: httpx.AsyncClient
    ) -> None:
        url = await platform.storage.signed_url("d/up.jpg", method="PUT")
        response = await client.put(url, content=JPEG, headers={"Content-Type": "image/jpeg"})
        assert response.status_code == 201, response.text
        assert response.json() == {
            "key": "d/up.jpg",
            "size": len(JPEG),
            "content_type": "image/jpeg",
        }
        assert await platform.storage.get("d/up.jpg") == JPEG

        wrong = await client.put(url, content=PDF, headers={"Content-Type": "image/jpeg"})
        assert wrong.status_code == 422
        get_url = await platform.storage.signed_url("d/other.jpg")
        forbidden = await client.put(get_url, content=JPEG, headers={"Content-Type": "image/jpeg"})
        assert forbidden.status_code == 403
        assert not await platform.storage.exists("d/other.jpg")

    async def test_readiness_reports_storage(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz")
        assert response.json()["checks"]["storage"] == "ok"


class TestReadiness:
    async def test_missing_bucket_fails_ping(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        server: S3Server = request.getfixturevalue("s3_server")
        storage = build_storage(
            make_settings(tmp_path, **server.settings_overrides("no-such-bucket"))
        )
        with pytest.raises(StorageUnavailable, match="object storage failed"):
            await storage.ping()

    async def test_readyz_names_storage_when_the_bucket_is_missing(
        self, request: pytest.FixtureRequest, tmp_path: Path, database_url: str
    ) -> None:
        server: S3Server = request.getfixturevalue("s3_server")
        settings = make_settings(
            tmp_path, database_url=database_url, **server.settings_overrides("no-such-bucket")
        )
        app = create_app(settings)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            response = await c.get("/readyz")
        assert response.status_code == 503
        assert "storage" in response.json()["failed"]
