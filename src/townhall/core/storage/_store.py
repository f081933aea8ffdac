"""Storage: one async API over obstore's LocalStore (file://) and S3Store (s3://)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, urlencode, urlparse

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, S3Store

from townhall.core.config import ConfigurationError, Settings
from townhall.core.errors import NotFound, PayloadTooLarge, ServiceUnavailable
from townhall.core.storage._keys import RESERVED_PREFIX, validate_key
from townhall.core.storage._signing import UrlSigner
from townhall.core.storage._sniff import OCTET_STREAM, SNIFF_BYTES, resolve_content_type

if TYPE_CHECKING:
    from obstore import GetResult

T = TypeVar("T")
Method = Literal["GET", "PUT"]
# Content types of local blobs live beside them: LocalStore cannot store attributes.
_META_PREFIX = ".meta/"
# Uploads are spooled to disk past this size, then handed to the store in parts of this size.
_SPOOL_BYTES = 8 * 1024 * 1024
# S3 refuses presigned URLs that live longer than 7 days.
MAX_SIGNED_EXPIRY = timedelta(days=7)


class BlobNotFound(NotFound):
    """No object under this key."""


class StorageUnavailable(ServiceUnavailable):
    """The object store did not answer or refused the request."""


@dataclass(frozen=True)
class BlobInfo:
    """What is stored under a key."""

    key: str
    size: int
    content_type: str
    last_modified: datetime | None = None
    etag: str | None = None


@dataclass(frozen=True)
class Blob:
    """A whole object read into memory."""

    key: str
    data: bytes
    content_type: str


class Storage:
    """Blob storage: put/get/delete/exists, validated streaming uploads and signed URLs."""

    def __init__(
        self,
        store: LocalStore | S3Store,
        *,
        signer: UrlSigner,
        base_url: str,
        description: str,
    ) -> None:
        self._store = store
        self._signer = signer
        self._base_url = base_url.rstrip("/")
        self.description = description

    @property
    def backend(self) -> Literal["file", "s3"]:
        return "s3" if isinstance(self._store, S3Store) else "file"

    @property
    def signer(self) -> UrlSigner:
        return self._signer

    async def put(self, key: str, data: bytes, content_type: str = OCTET_STREAM) -> BlobInfo:
        """Store bytes under key (trusted content: no sniffing), replacing any old object."""
        validate_key(key)
        await self._write(key, data, content_type)
        return BlobInfo(key=key, size=len(data), content_type=content_type)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        max_bytes: int,
        declared_type: str | None = None,
        allowed_types: Iterable[str] | None = None,
    ) -> BlobInfo:
        """Store an untrusted upload: size-limited (413), type-checked (415/422), all or nothing."""
        validate_key(key)
        # Spool first: a rejected or broken upload must leave nothing behind in the store.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            head = bytearray()
            content_type: str | None = None
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"upload is larger than the limit of {max_bytes} bytes")
                if content_type is None:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES:
                        # Reject a wrong type before reading the rest.
                        content_type = resolve_content_type(
                            bytes(head), declared_type, allowed_types
                        )
                spool.write(chunk)
            if content_type is None:
                content_type = resolve_content_type(bytes(head), declared_type, allowed_types)
            spool.seek(0)
            if size <= _SPOOL_BYTES:
                await self._write(key, spool.read(), content_type)
            else:
                await self._write(key, _read_parts(spool), content_type)
        return BlobInfo(key=key, size=size, content_type=content_type)

    async def get(self, key: str) -> bytes:
        """The object's bytes; BlobNotFound when missing."""
        return (await self.get_blob(key)).data

    async def get_blob(self, key: str) -> Blob:
        """The object's bytes and content type."""
        validate_key(key)
        result = await _call(obstore.get_async(self._store, key), key)
        data = bytes(await _call(result.bytes_async(), key))
        content_type = result.attributes.get("Content-Type")
        if not isinstance(content_type, str):
            content_type = await self._local_type(key)
        return Blob(key=key, data=data, content_type=content_type)

    async def open(self, key: str) -> tuple[BlobInfo, AsyncIterator[bytes]]:
        """Info and a chunk iterator for serving large objects without reading them whole."""
        validate_key(key)
        result = await _call(obstore.get_async(self._store, key), key)
        info = await self._info(key, result)

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=64 * 1024):
                yield bytes(chunk)

        return info, chunks()

    async def stat(self, key: str) -> BlobInfo:
        """Size and type of an object without reading it."""
        validate_key(key)
        result = await _call(obstore.get_async(self._store, key, options={"head": True}), key)
        return await self._info(key, result)

    async def list_keys(self, prefix: str) -> AsyncIterator[str]:
        """Keys under a '/'-segment prefix such as "report/12" (sidecars are never listed)."""
        validate_key(prefix)
        async for key in self._list(prefix):
            yield key

    async def list_all(self) -> AsyncIterator[str]:
        """Every key in the store, in no particular order (sidecars are never listed)."""
        async for key in self._list(None):
            yield key

    async def _list(self, prefix: str | None) -> AsyncIterator[str]:
        stream = obstore.list(self._store, prefix=prefix, chunk_size=500)
        while (batch := await _call(anext(stream, None), prefix or "")) is not None:
            for meta in batch:
                # Reserved segments (".meta/" sidecars of local blobs) are never object keys.
                if not meta["path"].startswith(RESERVED_PREFIX):
                    yield meta["path"]

    async def exists(self, key: str) -> bool:
        """True when an object is stored under key."""
        validate_key(key)
        try:
            await _call(obstore.head_async(self._store, key), key)
        except BlobNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        validate_key(key)
        for path in (key, _META_PREFIX + key) if self.backend == "file" else (key,):
            with contextlib.suppress(BlobNotFound):
                await _call(obstore.delete_async(self._store, path), path)

    async def signed_url(
        self,
        key: str,
        expires: timedelta = timedelta(hours=1),
        method: Method = "GET",
    ) -> str:
        """A URL that lets anyone holding it GET (or PUT) this key until it expires."""
        validate_key(key)
        if expires <= timedelta(0) or expires > MAX_SIGNED_EXPIRY:
            raise ValueError(f"expiry must be between 0 and {MAX_SIGNED_EXPIRY}")
        if isinstance(self._store, S3Store):
            url: str = await _call(obstore.sign_async(self._store, method, key, expires), key)
            return url
        expires_at = int(time.time() + expires.total_seconds())
        query = urlencode(
            {"exp": expires_at, "sig": self._signer.signature(method, key, expires_at)}
        )
        return f"{self._base_url}/files/{quote(key)}?{query}"

    async def ping(self) -> None:
        """Raise unless the store answers (bucket exists, credentials accepted)."""
        stream = obstore.list(self._store, prefix=_META_PREFIX + "ping", chunk_size=1)
        await _call(anext(stream, None), "")

    async def _write(self, key: str, data: bytes | AsyncIterator[bytes], content_type: str) -> None:
        if isinstance(self._store, S3Store):
            await _call(
                obstore.put_async(
                    self._store, key, data, attributes={"Content-Type": content_type}
                ),
                key,
            )
            return
        await _call(obstore.put_async(self._store, key, data), key)
        meta = json.dumps({"content_type": content_type}).encode()
        await _call(obstore.put_async(self._store, _META_PREFIX + key, meta), key)

    async def _local_type(self, key: str) -> str:
        try:
            result = await obstore.get_async(self._store, _META_PREFIX + key)
            meta = json.loads(bytes(await result.bytes_async()))
        except (FileNotFoundError, ValueError):
            return OCTET_STREAM
        content_type = meta.get("content_type") if isinstance(meta, dict) else None
        return content_type if isinstance(content_type, str) else OCTET_STREAM

    async def _info(self, key: str, result: GetResult) -> BlobInfo:
        content_type = result.attributes.get("Content-Type")
        if not isinstance(content_type, str):
            content_type = await self._local_type(key)
        meta = result.meta
        return BlobInfo(
            key=key,
            size=meta["size"],
            content_type=content_type,
            last_modified=meta["last_modified"],
            etag=meta.get("e_tag"),
        )


async def _call(awaitable: Awaitable[T], key: str) -> T:
    """Await an obstore call, mapping its errors to AppErrors."""
    try:
        return await awaitable
    except (FileNotFoundError, NotFoundError) as exc:
        raise BlobNotFound(f"no object is stored under {key!r}") from exc
    except (ObstoreError, OSError) as exc:
        raise StorageUnavailable(
            f"object storage failed: {type(exc).__name__}: {exc}"[:300]
        ) from exc


async def _read_parts(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while part := await asyncio.to_thread(spool.read, _SPOOL_BYTES):
        yield part


def build_storage(settings: Settings) -> Storage:
    """The store named by TOWNHALL_STORAGE_URL: file:///path (default) or s3://bucket[/prefix]."""
    url = str(settings.storage_url)
    parsed = urlparse(url)
    signer = UrlSigner(settings.secret())
    if parsed.scheme == "file":
        root = Path(parsed.netloc + parsed.path) if parsed.netloc else Path(parsed.path)
        root.mkdir(parents=True, exist_ok=True)
        local = LocalStore(root.resolve(), mkdir=True)
        return Storage(
            local, signer=signer, base_url=settings.base_url, description=f"file://{root}"
        )
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigurationError(f"storage URL {url!r} names no bucket (s3://bucket)")
        options: dict[str, Any] = {"region": settings.s3_region}
        if settings.s3_access_key_id is not None:
            options["access_key_id"] = settings.s3_access_key_id
        if settings.s3_secret_access_key is not None:
            options["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
        client_options: dict[str, Any] = {"timeout": "30s", "connect_timeout": "5s"}
        if settings.s3_endpoint:
            # MinIO and other S3-compatible servers: path-style requests, maybe plain HTTP.
            options["endpoint"] = settings.s3_endpoint
            options["virtual_hosted_style_request"] = False
            client_options["allow_http"] = settings.s3_endpoint.startswith("http://")
        s3 = S3Store(
            parsed.netloc,
            prefix=parsed.path.strip("/") or None,
            client_options=client_options,  # type: ignore[arg-type]
            **options,
        )
        return Storage(s3, signer=signer, base_url=settings.base_url, description=url)
    raise ConfigurationError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket")
