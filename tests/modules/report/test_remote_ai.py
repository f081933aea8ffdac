"""Analysis through the fake OpenAI-compatible and Roboflow servers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from tests.fixtures.app import make_settings
from tests.fixtures.fake_ai import (  # noqa: F401 (fixtures)
    ROBOFLOW_KEY,
    FakeAI,
    chat_reply,
    detect_reply,
    fake_ai,
    fake_ai_server,
)

from townhall.core.config import Settings

from .conftest import World


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_ai: FakeAI) -> Settings:  # noqa: F811
    return make_settings(
        tmp_path,
        database_url=database_url,
        job_poll_seconds=0.05,
        ai_base_url=fake_ai.openai_base_url,
        ai_api_key="sk-test",
        ai_model="fake-model",
        roboflow_api_key=ROBOFLOW_KEY,
        roboflow_base_url=fake_ai.url,
        roboflow_model="civic/1",
        ai_retry_backoff_seconds=0.01,
    )


async def test_remote_providers_classify_route_and_blur(
    world: World,
    fake_ai: FakeAI,  # noqa: F811
) -> None:
    fake_ai.detect_script.append(
        detect_reply(
            [
                {"x": 16, "y": 12, "width": 20, "height": 16, "confidence": 0.9, "class": "face"},
                {
                    "x": 40,
                    "y": 30,
                    "width": 10,
                    "height": 10,
                    "confidence": 0.8,
                    "class": "pothole",
                },
            ],
            width=64,
            height=48,
        )
    )
    fake_ai.chat_script.append(
        chat_reply(
            json.dumps(
                {
                    "category": "streetlight",
                    "category_confidence": 0.92,
                    "priority": 3,
                    "priority_confidence": 0.8,
                    "summary": "A broken lamp.",
                    "summary_confidence": 0.9,
                    "confidence": 0.9,
                }
            )
        )
    )
    img = io.BytesIO()
    noisy = Image.effect_noise((64, 48), 120).convert("RGB")
    noisy.save(img, "PNG")
    report = await world.file(
        "alice", title="Lamp", description="dark", photos=[("p.png", img.getvalue(), "image/png")]
    )
    analysed = await world.wait_analyzed(report["id"], "admin")
    a = analysed["analysis"]
    assert a["text_model"] == {"provider": "openai", "model": "fake-model", "offline": False}
    assert a["vision_model"]["provider"] == "roboflow"
    assert {d["label"] for d in a["detections"]} == {"face", "pothole"}
    assert "pothole" in fake_ai.chat_requests[0]["messages"][-1]["content"]
    # Roboflow got the upright, EXIF-free public copy, never the original.
    [sent] = fake_ai.detect_requests
    assert sent["image"][:2] == b"\xff\xd8"  # the JPEG copy, not the PNG upload
    assert dict(Image.open(io.BytesIO(sent["image"])).getexif()) == {}
    assert analysed["department_id"] == world.dept["lighting"]
    # The public copy is blurred where the face was (box 6,4 - 26,20), not elsewhere.
    assert analysed["photos"][0]["url"]
    photo = await world.client.get(analysed["photos"][0]["url"])
    public = Image.open(io.BytesIO(photo.content)).convert("L")
    assert dict(public.getexif()) == {}
    assert public.size == (64, 48)
    original = noisy.convert("L")

    def spread(image: Image.Image, box: tuple[int, int, int, int]) -> float:
        values = list(image.crop(box).tobytes())
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / len(values)

    face, elsewhere = (8, 6, 24, 18), (40, 30, 60, 46)
    assert spread(public, face) < spread(original, face) / 4
    assert spread(public, elsewhere) > spread(original, elsewhere) / 4
