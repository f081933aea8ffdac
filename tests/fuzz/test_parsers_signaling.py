"""y-webrtc signaling: topics and messages are parsed or ignored, never raise, never leak."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import fuzz, json_values, run, texts
from townhall.collab.hooks import Role, ServiceHooks, register_service, unregister_service
from townhall.collab.realtime import _handle_signal
from townhall.collab.signaling import SignalingConn, SignalingHub, parse_message, parse_topic

if TYPE_CHECKING:
    from townhall.collab.engine import CollabEngine

SERVICE = "fuzzsig"
MAX_TOPICS = 4


async def _authorize(principal: Any, service: str, doc_id: str, session: Any) -> Role | None:
    """Documents "e..." are editable, "v..." read-only, the rest invisible."""
    return {"e": "editor", "v": "viewer"}.get(doc_id[:1])  # type: ignore[return-value]


@pytest.fixture(autouse=True, scope="module")
def _service() -> Iterator[None]:
    register_service(ServiceHooks(SERVICE, _authorize))
    yield
    unregister_service(SERVICE)


topics = (
    st.builds(
        "townhall:{}:{}".format,
        st.sampled_from([SERVICE, "doc", "", "FUZZ", "a:b"]) | texts,
        st.sampled_from(["e1", "e2", "v1", "x", "", "e" * 65, "e:1", "e/../1"]) | texts,
    )
    | st.sampled_from(["townhall:", "townhall::", "townhall:x", "other:doc:1"])
    | json_values
)
messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["ping", "subscribe", "unsubscribe", "publish", "auth"])
        | json_values
    },
    optional={
        "topics": st.lists(topics, max_size=6) | json_values,
        "topic": topics,
        "data": json_values,
        "clients": json_values,
    },
)
raw_messages = (
    messages.map(json.dumps)
    | json_values.map(json.dumps)
    | st.integers(1, 30_000).map(lambda n: "[" * n)
    | st.integers(1, 10_000).map(lambda n: '{"a":' * n)
    | texts
)


@given(topics)
@fuzz
def test_parse_topic(topic: Any) -> None:
    parsed = parse_topic(topic)
    if parsed is not None:
        service, doc_id = parsed
        assert topic == f"townhall:{service}:{doc_id}"
        assert service
        assert doc_id


@given(raw_messages)
@fuzz
def test_parse_message(raw: str) -> None:
    message = parse_message(raw)
    assert message is None or isinstance(message, dict)


@contextlib.asynccontextmanager
async def _no_session() -> AsyncIterator[None]:
    yield None


async def _handle(raws: list[str]) -> tuple[SignalingHub, list[dict[str, Any]]]:
    hub = SignalingHub(pubsub=None)
    engine = SimpleNamespace(
        signaling=hub,
        settings=SimpleNamespace(collab_signaling_max_topics=MAX_TOPICS),
        platform=SimpleNamespace(db=SimpleNamespace(sessionmaker=_no_session)),
    )
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(json.loads(json.dumps(message)))  # what goes out is JSON

    conn = SignalingConn(send)
    for raw in raws:
        # What /collab/signaling does with each text frame.
        message = parse_message(raw)
        if message is not None:
            await _handle_signal(cast("CollabEngine", engine), conn, None, message)
    assert len(conn.topics) <= MAX_TOPICS
    for topic in conn.topics:  # subscribed only where the hook said "editor"
        parsed = parse_topic(topic)
        assert parsed is not None
        assert parsed[1].startswith("e")
    await hub.remove(conn)
    assert not hub.topics  # nothing left behind once the socket is gone
    return hub, sent


@given(st.lists(raw_messages | messages.map(json.dumps), min_size=1, max_size=6))
@fuzz
def test_handle_messages(raws: list[str]) -> None:
    run(_handle(raws))
