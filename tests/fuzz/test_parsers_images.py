"""Uploaded images: content sniffing (415/422), thumbnails (ImageRejected), report photos (422)."""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.fuzz.strategies import damaged, fuzz
from townhall.core.errors import AppError
from townhall.core.storage._sniff import resolve_content_type
from townhall.modules.link.images import ImageRejected, make_thumbnails
from townhall.modules.quiz.service import IMAGE_TYPES
from townhall.modules.report.photos import ALLOWED_TYPES, public_copy

MAX_PIXELS = 4_000_000
FORMATS = {"PNG": ("RGBA", "P", "L", "1", "LA"), "JPEG": ("RGB", "L", "CMYK"), "GIF": ("P",)}
FORMATS |= {"WEBP": ("RGB", "RGBA"), "BMP": ("RGB",), "TIFF": ("RGB", "I;16"), "ICO": ("RGBA",)}


def _image(fmt: str, mode: str, size: tuple[int, int], orientation: int | None) -> bytes:
    image = Image.new(mode, size)
    out = io.BytesIO()
    extra = {}
    if orientation is not None and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = orientation  # EXIF Orientation: 1-8 are valid, the rest are not
        extra["exif"] = exif.tobytes()
    image.save(out, fmt, **extra)
    return out.getvalue()


# Built once: Pillow's encoders are the slow part, damage is cheap.
BASES = [
    _image(fmt, mode, size, orientation)
    for fmt, modes in FORMATS.items()
    for mode in modes
    for size, orientation in (((1, 1), None), ((7, 3), 6), ((40, 25), 9))
]


def _png_claiming(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header (CRC fixed up) claims another size: a bomb or a liar."""
    data = bytearray(_image("PNG", "RGB", (1, 1), None))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


images = (
    st.sampled_from(BASES)
    | damaged(st.sampled_from(BASES))
    | st.builds(_png_claiming, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
    | st.binary(max_size=64)
)
declared = (
    st.sampled_from([*IMAGE_TYPES, *ALLOWED_TYPES, "image/jpg", "IMAGE/PNG; q=1", "text/html"])
    | st.sampled_from(["application/octet-stream", "", ";", "image/svg+xml", "image/*"])
    | st.none()
    | st.text(max_size=20)
)


@given(
    images | st.binary(max_size=64), declared, st.sampled_from([IMAGE_TYPES, ALLOWED_TYPES, None])
)
@fuzz
def test_resolve_content_type(
    data: bytes, declared_type: str | None, allowed: tuple[str, ...] | None
) -> None:
    try:
        resolve_content_type(data[:4096], declared_type, allowed)
    except AppError as exc:
        status = exc.status_code
    else:
        return
    assert status in (415, 422)


@given(images)
@fuzz
def test_make_thumbnails(data: bytes) -> None:
    try:
        thumbs = make_thumbnails(data, max_pixels=MAX_PIXELS)
    except ImageRejected:
        return
    assert [t.size_name for t in thumbs] == ["small", "medium", "large"]


boxes = st.lists(st.tuples(*[st.floats(-100, 100, allow_nan=False)] * 4), max_size=3)


@given(images, boxes)
@fuzz
def test_public_copy(data: bytes, regions: list[tuple[float, float, float, float]]) -> None:
    try:
        public_copy(data, MAX_PIXELS, regions)
    except AppError as exc:
        status = exc.status_code
    else:
        return
    assert status == 422
