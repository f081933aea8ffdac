"""Photo uploads: validated originals (private) and EXIF-free public copies, blurred on demand."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from fastapi import UploadFile
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from townhall.core.errors import Unprocessable
from townhall.core.platform import Platform

ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif")
PUBLIC_MAX_SIDE = 2048
# detector labels whose boxes are blurred in the public copy
BLUR_LABELS = {"face", "person", "license plate", "license_plate", "licence plate", "plate"}


@dataclass(frozen=True)
class StoredPhoto:
    original_key: str
    public_key: str
    content_type: str
    width: int
    height: int


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(64 * 1024):
        yield chunk


def public_copy(
    data: bytes, max_pixels: int, boxes: Sequence[tuple[float, float, float, float]] = ()
) -> tuple[bytes, int, int]:
    """Re-encode as JPEG without metadata (EXIF/GPS gone), upright, bounded, boxes blurred."""
    Image.MAX_IMAGE_PIXELS = None  # checked ourselves below, as a clean 422
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > max_pixels:
                raise Unprocessable(f"photo is larger than {max_pixels} pixels")
            image = ImageOps.exif_transpose(probe)
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Unprocessable("photo cannot be decoded as an image") from exc
    image = image.convert("RGB")
    for x, y, w, h in boxes:
        region = (
            int(max(0, x)),
            int(max(0, y)),
            int(min(image.width, x + w)),
            int(min(image.height, y + h)),
        )
        if region[2] > region[0] and region[3] > region[1]:
            crop = image.crop(region).filter(
                ImageFilter.GaussianBlur(radius=max(8, (region[2] - region[0]) // 6))
            )
            image.paste(crop, region)
    image.thumbnail((PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)  # no exif= argument: nothing carried over
    return out.getvalue(), image.width, image.height


async def store_photos(
    platform: Platform, report_id: uuid.UUID, uploads: Sequence[UploadFile]
) -> list[StoredPhoto]:
    """Validate and store every photo; on any failure the ones already stored are removed."""
    settings = platform.settings
    stored: list[StoredPhoto] = []
    keys: list[str] = []
    try:
        for n, upload in enumerate(uploads):
            base = f"reports/{report_id}/{n}-{uuid.uuid4().hex[:8]}"
            original_key = f"{base}/original"
            info = await platform.storage.put_stream(
                original_key,
                _chunks(upload),
                max_bytes=settings.report_max_photo_bytes,
                declared_type=upload.content_type or None,
                allowed_types=ALLOWED_TYPES,
            )
            keys.append(original_key)
            data = await platform.storage.get(original_key)
            copy, width, height = public_copy(data, settings.report_max_photo_pixels)
            public_key = f"{base}/public.jpg"
            await platform.storage.put(public_key, copy, "image/jpeg")
            keys.append(public_key)
            stored.append(StoredPhoto(original_key, public_key, info.content_type, width, height))
    except BaseException:
        for key in keys:
            await platform.storage.delete(key)
        raise
    return stored
