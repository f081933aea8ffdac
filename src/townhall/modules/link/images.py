"""Thumbnails with Pillow: verified, bomb-guarded, EXIF-stripped, cropped squares as JPEG."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

SIZES: dict[str, int] = {"small": 150, "medium": 300, "large": 600}
PALETTE = (
    (99, 102, 241),
    (14, 165, 233),
    (16, 185, 129),
    (245, 158, 11),
    (239, 68, 68),
    (168, 85, 247),
)


class ImageRejected(ValueError):
    """The bytes are not an image we will process."""


@dataclass(frozen=True)
class Thumbnail:
    size_name: str
    data: bytes
    width: int
    height: int


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            width, height = probe.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                raise ImageRejected(
                    f"image of {width}x{height} pixels exceeds the limit of {max_pixels}"
                )
            probe.verify()  # structural check; the image must be reopened after verify()
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (1200, 1200))  # JPEG: decode at reduced scale, cheaper
            image.load()
    except ImageRejected:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ImageRejected(f"not a usable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"broken image: {exc}") from exc
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # No exif= argument: the saved JPEG carries no camera/location metadata.
    image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue()


def make_thumbnails(data: bytes, *, max_pixels: int) -> list[Thumbnail]:
    """Three square JPEGs (center crop; small images are padded, never upscaled past 2x)."""
    image = _open_checked(data, max_pixels)
    try:
        source = _to_rgb(image)  # reads the EXIF orientation, which can be broken on its own
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"broken image: {exc}") from exc
    result = []
    for name, size in SIZES.items():
        if min(source.size) >= size // 2:
            thumb = ImageOps.fit(source, (size, size), Image.Resampling.LANCZOS)
        else:
            thumb = ImageOps.pad(
                source, (size, size), Image.Resampling.LANCZOS, color=(245, 245, 245)
            )
        result.append(Thumbnail(name, _jpeg(thumb), size, size))
    return result


def placeholder(seed: str, label: str) -> list[Thumbnail]:
    """Generated thumbnails for links without an image: a colour from the URL and an initial."""
    digest = hashlib.sha256(seed.encode()).digest()
    colour = PALETTE[digest[0] % len(PALETTE)]
    letter = (label.strip()[:1] or "?").upper()
    result = []
    for name, size in SIZES.items():
        image = Image.new("RGB", (size, size), colour)
        draw = ImageDraw.Draw(image)
        font_size = size // 2
        try:
            from PIL import ImageFont

            font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.load_default(font_size)
        except (OSError, TypeError):
            font = ImageFont.load_default()
        draw.text((size / 2, size / 2), letter, fill=(255, 255, 255), font=font, anchor="mm")
        result.append(Thumbnail(name, _jpeg(image), size, size))
    return result


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
