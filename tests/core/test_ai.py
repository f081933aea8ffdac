"""AI providers: the real HTTP client code against a local fake OpenAI/Roboflow server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import BaseModel

from tests.fixtures.app import make_settings
from tests.fixtures.fake_ai import (  # noqa: F401 (fixtures)
    ROBOFLOW_KEY,
    FakeAI,
    Reply,
    chat_reply,
    detect_reply,
    error_reply,
    fake_ai,
    fake_ai_server,
)
from tests.fixtures.services import free_port
from townhall.core.ai import (
    AI,
    OFFLINE_MODEL,
    AIError,
    AIInvalidInput,
    AIInvalidOutput,
    Box,
)
from townhall.core.config import ConfigurationError
from townhall.core.platform import Platform


class Tags(BaseModel):
    tags: list[str]
    confidence: float


def offline_tags(prompt: str) -> Tags:
    """A keyword heuristic: the long words of the prompt."""
    return Tags(tags=[w for w in prompt.split() if len(w) > 6][:3], confidence=0.2)


PROMPT = "Tag this article about municipal infrastructure maintenance budgets"
GOOD = json.dumps({"tags": ["city", "roads"], "confidence": 0.9})


def red_png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (220, 20, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


class NoNetwork(httpx.AsyncBaseTransport):
    """Fails the test if anything tries to send a request."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"offline provider made a request to {request.url}")


@pytest.fixture(scope="session")
def database_url(sqlite_database_url: str) -> str:
    """AI does not touch the database; one backend is enough for the app fixture."""
    return sqlite_database_url


@pytest.fixture
async def make_ai(fake_ai: FakeAI, tmp_path: Path) -> AsyncIterator[Callable[..., AI]]:  # noqa: F811
    """Build AI facades pointed at the fake server; all are closed after the test."""
    made: list[AI] = []

    def make(**overrides: Any) -> AI:
        values: dict[str, Any] = {
            "ai_base_url": fake_ai.openai_base_url,
            "ai_api_key": "sk-test-secret",
            "ai_model": "fake-model",
            "ai_timeout_seconds": 5.0,
            "ai_max_retries": 2,
            "ai_retry_backoff_seconds": 0.01,
            "roboflow_base_url": fake_ai.url,
            "roboflow_api_key": ROBOFLOW_KEY,
            "roboflow_model": "potholes/2",
        }
        values.update(overrides)
        ai = AI(make_settings(tmp_path, **values))
        made.append(ai)
        return ai

    yield make
    for instance in made:
        await instance.close()


@pytest.fixture
async def offline_ai(tmp_path: Path) -> AsyncIterator[AI]:
    """Nothing configured; any network use fails the test."""
    ai = AI(make_settings(tmp_path), transport=NoNetwork())
    yield ai
    await ai.close()


@pytest.fixture
def ai(make_ai: Callable[..., AI]) -> AI:
    return make_ai()


class TestCompleteJson:
    async def test_structured_output_success(self, ai: AI, fake_ai: FakeAI) -> None:  # noqa: F811
        fake_ai.chat_script.append(chat_reply(GOOD, model="fake-model-2026"))
        result = await ai.complete_json(
            PROMPT, Tags, offline=offline_tags, task="link.tag", system="You tag links."
        )
        assert result.value == Tags(tags=["city", "roads"], confidence=0.9)
        assert (result.provider, result.model, result.offline) == (
            "openai",
            "fake-model-2026",
            False,
        )
        assert result.confidence == 0.9
        [request] = fake_ai.chat_requests
        assert request["model"] == "fake-model"
        assert request["response_format"]["type"] == "json_schema"
        assert set(request["response_format"]["json_schema"]["schema"]["properties"]) == {
            "tags",
            "confidence",
        }
        assert request["messages"][0]["role"] == "system"
        assert request["messages"][0]["content"].startswith("You tag links.")
        assert request["messages"][-1] == {"role": "user", "content": PROMPT}
        assert fake_ai.chat_headers[0]["authorization"] == "Bearer sk-test-secret"

    async def test_fenced_json_is_accepted(self, ai: AI, fake_ai: FakeAI) -> None:  # noqa: F811
        fake_ai.chat_script.append(chat_reply(f"```json\n{GOOD}\n```"))
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.value.tags == ["city", "roads"]

    async def test_invalid_json_is_retried_with_feedback(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.chat_script += [chat_reply("Sure! Here are tags: city, roads"), chat_reply(GOOD)]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.provider == "openai"
        assert result.value.tags == ["city", "roads"]
        assert len(fake_ai.chat_requests) == 2
        retry = fake_ai.chat_requests[1]["messages"]
        assert retry[-2] == {"role": "assistant", "content": "Sure! Here are tags: city, roads"}
        assert "not JSON" in retry[-1]["content"]

    async def test_schema_violations_count_as_invalid(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.chat_script += [chat_reply('{"tags": "city"}'), chat_reply(GOOD)]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.value.confidence == 0.9
        assert "validation error" in fake_ai.chat_requests[1]["messages"][-1]["content"]

    async def test_persistent_garbage_is_a_clear_error(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(ai_fallback_offline=False)
        fake_ai.chat_script += [chat_reply("nope"), chat_reply("still nope"), chat_reply(GOOD)]
        with pytest.raises(AIInvalidOutput) as caught:
            await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert "no valid Tags after 2 attempts" in caught.value.message
        assert caught.value.provider == "openai"
        assert len(fake_ai.chat_requests) == 2

    async def test_persistent_garbage_falls_back_to_offline(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.chat_script += [chat_reply("nope"), chat_reply("still nope")]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert (result.provider, result.model, result.offline) == ("offline", OFFLINE_MODEL, True)
        assert result.value == offline_tags(PROMPT)
        assert "no valid Tags" in result.details["fallback_reason"]

    async def test_server_error_then_success(self, ai: AI, fake_ai: FakeAI) -> None:  # noqa: F811
        fake_ai.chat_script += [error_reply(500, "overloaded"), chat_reply(GOOD)]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.provider == "openai"
        assert len(fake_ai.chat_requests) == 2

    async def test_rate_limit_honours_retry_after(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.chat_script += [
            error_reply(429, "slow down", **{"Retry-After": "0"}),
            chat_reply(GOOD),
        ]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.provider == "openai"
        assert len(fake_ai.chat_requests) == 2

    async def test_retries_are_bounded_then_offline(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.chat_script += [error_reply(503, "down")] * 5
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.offline
        assert result.provider == "offline"
        assert len(fake_ai.chat_requests) == 3  # ai_max_retries=2 -> 3 attempts
        assert "HTTP 503" in result.details["fallback_reason"]

    async def test_client_errors_are_not_retried(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(ai_fallback_offline=False)
        fake_ai.chat_script += [error_reply(401, "invalid api key sk-test-secret")]
        with pytest.raises(AIError) as caught:
            await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert caught.value.status == 401
        assert caught.value.status_code == 503
        assert "sk-test-secret" not in caught.value.message
        assert len(fake_ai.chat_requests) == 1

    async def test_json_schema_unsupported_falls_back_to_json_object(
        self,
        ai: AI,
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        fake_ai.reject_json_schema = True
        fake_ai.chat_script += [chat_reply(GOOD), chat_reply(GOOD)]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.provider == "openai"
        formats = [r["response_format"]["type"] for r in fake_ai.chat_requests]
        assert formats == ["json_schema", "json_object"]
        assert '"tags"' in fake_ai.chat_requests[1]["messages"][0]["content"]
        await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert fake_ai.chat_requests[2]["response_format"]["type"] == "json_object"

    async def test_timeout_falls_back_to_offline(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(ai_timeout_seconds=0.2, ai_max_retries=1)
        slow = chat_reply(GOOD)
        slow.delay = 1.0
        fake_ai.chat_script += [slow, slow]
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.offline
        assert "timed out" in result.details["fallback_reason"]

    async def test_unreachable_endpoint_falls_back(
        self,
        make_ai: Callable[..., AI],
    ) -> None:
        ai = make_ai(ai_base_url=f"http://127.0.0.1:{free_port()}/v1", ai_max_retries=0)
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert result.offline
        assert "unreachable" in result.details["fallback_reason"]


class TestRouting:
    async def test_task_routes_pick_provider_and_model(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(ai_routes={"report.*": "offline", "link.tag": "openai:big-model"})
        fake_ai.chat_script.append(chat_reply(GOOD, model="big-model"))
        offline = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="report.classify")
        assert offline.offline
        assert fake_ai.chat_requests == []
        routed = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert (routed.provider, routed.model) == ("openai", "big-model")
        assert fake_ai.chat_requests[0]["model"] == "big-model"

    def test_unknown_provider_is_a_configuration_error(self, make_ai: Callable[..., AI]) -> None:
        with pytest.raises(ConfigurationError, match="gemini"):
            make_ai(ai_routes={"link.tag": "gemini"})

    async def test_nothing_configured_is_offline_without_network(self, offline_ai: AI) -> None:
        ai = offline_ai
        result = await ai.complete_json(PROMPT, Tags, offline=offline_tags, task="link.tag")
        assert (result.provider, result.offline, result.model) == ("offline", True, OFFLINE_MODEL)
        assert result.value.tags == ["article", "municipal", "infrastructure"]
        assert result.confidence == 0.2
        assert result.details == {}
        detected = await ai.detect_objects(red_png((40, 30)))
        assert detected.offline
        [detection] = detected.value
        assert detection.label == "unknown"
        assert detection.confidence < 0.1
        assert detection.box == Box(0, 0, 40, 30)
        assert (detected.details["width"], detected.details["height"]) == (40, 30)
        top = detected.details["dominant_colors"][0]["hex"]
        assert int(top[1:3], 16) > 180 > int(top[3:5], 16)  # red dominates
        assert "offline" in detected.details["note"]

    async def test_offline_rejects_non_images(self, offline_ai: AI) -> None:
        with pytest.raises(AIInvalidInput):
            await offline_ai.detect_objects(b"%PDF-1.4 not an image")

    async def test_platform_has_offline_ai(self, platform: Platform) -> None:
        result = await platform.ai.complete_json(
            PROMPT, Tags, offline=offline_tags, task="link.tag"
        )
        assert result.offline


class TestDetectObjects:
    async def test_roboflow_wire_format(self, ai: AI, fake_ai: FakeAI) -> None:  # noqa: F811
        image = red_png()
        fake_ai.detect_script.append(
            detect_reply(
                [
                    {
                        "x": 50,
                        "y": 40,
                        "width": 20,
                        "height": 10,
                        "confidence": 0.87,
                        "class": "pothole",
                        "class_id": 0,
                        "detection_id": "d1",
                    },
                    {
                        "x": 10,
                        "y": 10,
                        "width": 4,
                        "height": 4,
                        "confidence": 0.4,
                        "class": "crack",
                    },
                ]
            )
        )
        result = await ai.detect_objects(image)
        assert (result.provider, result.model, result.offline) == ("roboflow", "potholes/2", False)
        assert [d.label for d in result.value] == ["pothole", "crack"]
        assert result.value[0].box == Box(x=40, y=35, width=20, height=10)
        assert result.confidence == 0.87
        assert result.details == {"width": 100, "height": 80}
        [request] = fake_ai.detect_requests
        assert request["path"] == "/potholes/2"
        assert request["api_key"] == ROBOFLOW_KEY
        assert request["image"] == image
        assert request["content_type"] == "application/x-www-form-urlencoded"

    async def test_server_error_then_success(self, ai: AI, fake_ai: FakeAI) -> None:  # noqa: F811
        fake_ai.detect_script += [
            Reply(status=502, body={"message": "bad gateway"}),
            detect_reply(
                [{"x": 5, "y": 5, "width": 2, "height": 2, "confidence": 0.6, "class": "a"}]
            ),
        ]
        result = await ai.detect_objects(red_png())
        assert result.provider == "roboflow"
        assert len(fake_ai.detect_requests) == 2

    async def test_bad_key_falls_back_without_leaking_it(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(roboflow_api_key="wrong-key-123")
        result = await ai.detect_objects(red_png())
        assert result.offline
        assert result.value[0].label == "unknown"
        reason = result.details["fallback_reason"]
        assert "HTTP 403" in reason
        assert "wrong-key-123" not in reason
        assert len(fake_ai.detect_requests) == 1

    async def test_malformed_answer_is_a_clear_error(
        self,
        make_ai: Callable[..., AI],
        fake_ai: FakeAI,  # noqa: F811
    ) -> None:
        ai = make_ai(ai_fallback_offline=False)
        fake_ai.detect_script.append(Reply(body={"predictions": [{"x": "left"}]}))
        with pytest.raises(AIInvalidOutput, match="unexpected body"):
            await ai.detect_objects(red_png())
