"""The offline provider: app heuristics for text, Pillow for images; never touches the network."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any, TypeVar

from PIL import Image, ImageStat, UnidentifiedImageError
from pydantic import BaseModel

from townhall.core.ai._types import AIInvalidInput, Box, Detection

M = TypeVar("M", bound=BaseModel)

OFFLINE_MODEL = "offline-heuristic"
# Refuse decompression bombs before decoding: 50 megapixels is a large phone photo x 4.
MAX_PIXELS = 50_000_000
UNKNOWN_CONFIDENCE = 0.05


class Offline:
    """Deterministic local answers, flagged offline in every result."""

    name = "offline"
    model = OFFLINE_MODEL

    def complete_json(
        self, prompt: str, schema: type[M], heuristic: Callable[[str], BaseModel]
    ) -> M:
        """Run the app-supplied heuristic and make sure it produced the schema."""
        value = heuristic(prompt)
        if isinstance(value, schema):
            return value
        return schema.model_validate(value.model_dump())

    async def detect(self, image: bytes) -> tuple[list[Detection], dict[str, Any]]:
        """A whole-image 'unknown' detection plus size and dominant colours."""
        return await asyncio.to_thread(_analyse, image)


def _analyse(data: bytes) -> tuple[list[Detection], dict[str, Any]]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise AIInvalidInput(f"image is {width}x{height}; the limit is {MAX_PIXELS} pixels")
            image_format = image.format
            mode = image.mode
            image.draft("RGB", (256, 256))  # JPEG: decode at a reduced scale
            rgb = image.convert("RGB")
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise AIInvalidInput("the data is not an image that can be decoded") from exc
    rgb.thumbnail((64, 64))
    brightness = sum(ImageStat.Stat(rgb.convert("L")).mean) / 255
    quantized = rgb.quantize(colors=6)
    palette = quantized.getpalette() or []
    counts = sorted(quantized.getcolors() or [], reverse=True)
    total = sum(count for count, _ in counts) or 1
    dominant = []
    for count, index in counts[:3]:
        if not isinstance(index, int):
            continue
        r, g, b = palette[index * 3 : index * 3 + 3]
        dominant.append({"hex": f"#{r:02x}{g:02x}{b:02x}", "share": round(count / total, 3)})
    details = {
        "width": width,
        "height": height,
        "format": image_format,
        "mode": mode,
        "brightness": round(brightness, 3),
        "dominant_colors": dominant,
        "note": "offline analysis: no object detector is configured, objects are not recognised",
    }
    whole = Box(x=0, y=0, width=width, height=height)
    return [Detection(label="unknown", confidence=UNKNOWN_CONFIDENCE, box=whole)], details
