"""Object storage on obstore: file:// (default, HMAC-signed URLs) or s3:// (presigned URLs)."""

from townhall.core.storage._keys import InvalidKey, validate_key
from townhall.core.storage._signing import UrlSigner
from townhall.core.storage._sniff import UnsupportedMediaType, resolve_content_type, sniff
from townhall.core.storage._store import (
    Blob,
    BlobInfo,
    BlobNotFound,
    Storage,
    StorageUnavailable,
    build_storage,
)

__all__ = [
    "Blob",
    "BlobInfo",
    "BlobNotFound",
    "InvalidKey",
    "Storage",
    "StorageUnavailable",
    "UnsupportedMediaType",
    "UrlSigner",
    "build_storage",
    "resolve_content_type",
    "sniff",
    "validate_key",
]
