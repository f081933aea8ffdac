"""Save API, flusher, versions and authorization in the embedded mode (database buffer)."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pycrdt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Scope
from tests.collab.helpers import b64, text_of, text_update
from tests.fixtures.app import signup

from townhall.collab.engine import CollabEngine
from townhall.collab.hooks import Role, ServiceHooks, register_service, unregister_service
from townhall.collab.protocol import decode_state_vector
from townhall.collab.repository import CollabRepository
from townhall.core.config import Environment
from townhall.core.deps import Principal

# doc id -> {email: role}; the "acl" test service asks this table.
ACL: dict[str, dict[str, Role]] = {}


async def _acl_authorize(
    principal: Principal | None, service: str, doc_id: str, session: AsyncSession
) -> Role | None:
    if principal is None:
        return None
    return ACL.get(doc_id, {}).get(principal.user.email)


@pytest.fixture(autouse=True)
def acl_service() -> Iterator[None]:
    register_service(ServiceHooks("acl", _acl_authorize, roots={"text": pycrdt.Text}))
    yield
    unregister_service("acl")
    ACL.clear()


async def _flush(app: FastAPI) -> Any:
    return await app.state.collab.flush()


async def test_binary_save_is_buffered_then_flushed(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    update = text_update("hello")
    response = await client.post(
        f"/api/v1/collab/demo/save?id={doc_id}",
        content=update,
        headers={**user["headers"], "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["buffered"] == 1
    assert base64.b64decode(body["state_vector"]) == pycrdt.get_state(update)
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    assert text_of(base64.b64decode(state.json()["state"])) == "hello"

    report = await _flush(app)
    assert (report.documents, report.updates, report.changed) == (1, 1, 1)
    assert (await _flush(app)).documents == 0  # nothing dirty any more
    versions = await client.get(f"/api/v1/collab/demo/{doc_id}/versions", headers=user["headers"])
    assert [v["number"] for v in versions.json()] == [1]


async def test_two_leaders_posting_different_snapshots_merge(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    base: pycrdt.Doc[Any] = pycrdt.Doc()
    first = text_update("shared ", doc=base)
    left: pycrdt.Doc[Any] = pycrdt.Doc()
    left.apply_update(first)
    right: pycrdt.Doc[Any] = pycrdt.Doc()
    right.apply_update(first)
    text_update("left", doc=left)
    text_update("right", doc=right)
    for snapshot in (left.get_update(), right.get_update()):
        response = await client.post(
            "/api/v1/collab/demo/save",
            json={"id": doc_id, "update": b64(snapshot)},
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
    await _flush(app)
    state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
    merged = text_of(base64.b64decode(state.json()["state"]))
    assert merged.startswith("shared ")
    assert "left" in merged
    assert "right" in merged


async def test_garbage_and_truncated_updates_are_400_and_nothing_is_buffered(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    good = text_update("hello world")
    for bad in (b"garbage", good[:-4], b"\xff" * 30):
        response = await client.post(
            f"/api/v1/collab/demo/save?id={doc_id}", content=bad, headers=user["headers"]
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    for body in ({"id": doc_id, "update": "%%%"}, {"id": doc_id}, {"id": doc_id, "x": 1}):
        response = await client.post("/api/v1/collab/demo/save", json=body, headers=user["headers"])
        assert response.status_code in (400, 422), response.text
    response = await client.post(
        "/api/v1/collab/demo/save",
        content=b"{not json",
        headers={**user["headers"], "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert (await _flush(app)).documents == 0


async def _post_then_disconnect(
    app: FastAPI, path: str, doc_id: str, token: str, body: bytes
) -> list[Message]:
    """Drive the ASGI app directly: half the declared body arrives, then the client is gone."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": f"id={doc_id}".encode(),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    incoming: list[Message] = [
        {"type": "http.request", "body": body[: len(body) // 2], "more_body": True}
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    "path", ["/api/v1/doc/save", "/api/v1/sheet/save", "/api/v1/collab/demo/save"]
)
async def test_a_client_gone_mid_upload_is_400_and_nothing_is_buffered(
    client: httpx.AsyncClient,
    app: FastAPI,
    doc_id: str,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await signup(client, "ann@example.com")
    sent = await _post_then_disconnect(
        app, path, doc_id, user["access_token"], text_update("x" * 2000)
    )
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    assert (b"content-type", b"application/problem+json") in start["headers"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["detail"] == "request body incomplete"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with app.state.platform.db.sessionmaker() as session:
        assert await CollabRepository(session).pending_count(path.split("/")[-2], doc_id) == 0
    assert (await _flush(app)).documents == 0


async def test_bad_document_ids_and_unknown_services(
    client: httpx.AsyncClient, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    update = text_update("x")
    response = await client.post(
        "/api/v1/collab/demo/save?id=../etc", content=update, headers=user["headers"]
    )
    assert response.status_code == 400
    response = await client.post(
        "/api/v1/collab/demo/save", content=update, headers=user["headers"]
    )
    assert response.status_code == 400  # binary body without ?id=
    response = await client.post(
        f"/api/v1/collab/nope/save?id={doc_id}", content=update, headers=user["headers"]
    )
    assert response.status_code == 404


async def test_oversized_update_is_413(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    app.state.collab.settings.collab_max_update_bytes = 1000
    try:
        big = text_update("x" * 5000)
        response = await client.post(
            f"/api/v1/collab/demo/save?id={doc_id}", content=big, headers=user["headers"]
        )
        assert response.status_code == 413
    finally:
        app.state.collab.settings.collab_max_update_bytes = 1024 * 1024


async def test_oversized_document_is_413(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    settings = app.state.collab.settings
    settings.collab_max_document_bytes = 3000
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        statuses = []
        for _ in range(3):
            update = text_update("y" * 1200, doc=doc)
            response = await client.post(
                f"/api/v1/collab/demo/save?id={doc_id}", content=update, headers=user["headers"]
            )
            statuses.append(response.status_code)
        assert statuses == [200, 200, 413]
    finally:
        settings.collab_max_document_bytes = 8 * 1024 * 1024


async def test_authorization_on_save_state_and_versions(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    owner = await signup(client, "owner@example.com")
    viewer = await signup(client, "viewer@example.com")
    stranger = await signup(client, "stranger@example.com")
    ACL[doc_id] = {"owner@example.com": "editor", "viewer@example.com": "viewer"}
    update = text_update("secret")
    url = f"/api/v1/collab/acl/save?id={doc_id}"
    assert (await client.post(url, content=update)).status_code == 401
    assert (await client.post(url, content=update, headers=stranger["headers"])).status_code == 403
    assert (await client.post(url, content=update, headers=viewer["headers"])).status_code == 403
    assert (await client.post(url, content=update, headers=owner["headers"])).status_code == 200
    state_url = f"/api/v1/collab/acl/{doc_id}/state"
    assert (await client.get(state_url, headers=stranger["headers"])).status_code == 403
    seen = await client.get(state_url, headers=viewer["headers"])
    assert seen.status_code == 200
    assert seen.json()["role"] == "viewer"
    await _flush(app)
    versions_url = f"/api/v1/collab/acl/{doc_id}/versions"
    assert (await client.get(versions_url, headers=stranger["headers"])).status_code == 403
    assert (await client.get(versions_url, headers=viewer["headers"])).status_code == 200
    restore = f"/api/v1/collab/acl/{doc_id}/versions/1/restore"
    assert (await client.post(restore, headers=viewer["headers"])).status_code == 403


async def test_doc_and_sheet_endpoints_deny_until_their_apps_register(
    client: httpx.AsyncClient, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    for path in ("/api/v1/doc/save", "/api/v1/sheet/save"):
        response = await client.post(
            f"{path}?id={doc_id}", content=text_update("x"), headers=user["headers"]
        )
        assert response.status_code == 403


async def test_seed_endpoints_use_the_registered_owner_hooks(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")

    async def allow(
        principal: Principal | None, service: str, doc: str, session: AsyncSession
    ) -> Role | None:
        return "editor" if principal is not None else None

    stored: list[tuple[str, str, bytes]] = []

    async def on_store(service: str, doc: str, state: bytes, session: AsyncSession) -> None:
        stored.append((service, doc, state))

    register_service(ServiceHooks("sheet", allow, on_store=on_store))
    try:
        response = await client.post(
            "/api/v1/sheet/save",
            json={"id": doc_id, "update": b64(text_update("cells"))},
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
        await _flush(app)
        assert [(s, d, text_of(st)) for s, d, st in stored] == [("sheet", doc_id, "cells")]
    finally:
        unregister_service("sheet")
        from townhall.collab.hooks import _deny_all

        register_service(ServiceHooks("sheet", _deny_all))


async def test_versions_bounded_view_and_restore(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    app.state.collab.settings.collab_versions_kept = 3
    try:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for word in ("one ", "two ", "three ", "four "):
            update = text_update(word, doc=doc)
            response = await client.post(
                f"/api/v1/collab/demo/save?id={doc_id}", content=update, headers=user["headers"]
            )
            assert response.status_code == 200
            await _flush(app)
        # Flushing again without changes takes no version.
        await _flush(app)
        versions = (
            await client.get(f"/api/v1/collab/demo/{doc_id}/versions", headers=user["headers"])
        ).json()
        assert [v["number"] for v in versions] == [4, 3, 2]
        second = (
            await client.get(f"/api/v1/collab/demo/{doc_id}/versions/2", headers=user["headers"])
        ).json()
        assert second["content"]["text"] == "one two "
        missing = await client.get(
            f"/api/v1/collab/demo/{doc_id}/versions/1", headers=user["headers"]
        )
        assert missing.status_code == 404

        restored = await client.post(
            f"/api/v1/collab/demo/{doc_id}/versions/2/restore", headers=user["headers"]
        )
        assert restored.status_code == 200, restored.text
        # A collaborator holding the latest state converges on the restored content.
        doc.apply_update(base64.b64decode(restored.json()["update"]))
        assert str(doc.get("text", type=pycrdt.Text)) == "one two "
        await _flush(app)
        state = await client.get(f"/api/v1/collab/demo/{doc_id}/state", headers=user["headers"])
        assert text_of(base64.b64decode(state.json()["state"])) == "one two "
    finally:
        app.state.collab.settings.collab_versions_kept = 50


async def test_flush_endpoint_needs_admin(client: httpx.AsyncClient) -> None:
    user = await signup(client, "ann@example.com")
    assert (await client.post("/api/v1/collab/flush", headers=user["headers"])).status_code == 403


async def test_collab_flush_cron_job_writes_the_buffer(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    from townhall.collab import tasks
    from townhall.core.jobs import JobContext
    from townhall.core.jobs.registry import TASKS

    assert TASKS["collab.flush"].cron == "* * * * *"
    user = await signup(client, "ann@example.com")
    response = await client.post(
        f"/api/v1/collab/demo/save?id={doc_id}",
        content=text_update("cron"),
        headers=user["headers"],
    )
    assert response.status_code == 200
    platform = app.state.platform
    await tasks.flush(JobContext(platform, "collab.flush", "job-1", "default", 1, 1))
    versions = await client.get(f"/api/v1/collab/demo/{doc_id}/versions", headers=user["headers"])
    assert len(versions.json()) == 1


async def test_leader_module_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/collab/static/leader.js")
    assert response.status_code == 200
    assert "export class LeaderSaver" in response.text


async def test_on_load_template_is_stored_once_so_edits_merge_onto_it(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    loads = 0

    async def allow(
        principal: Principal | None, service: str, doc: str, session: AsyncSession
    ) -> Role | None:
        return "editor" if principal is not None else None

    async def fresh_template(service: str, doc: str, session: AsyncSession) -> bytes | None:
        nonlocal loads
        loads += 1
        return text_update("template;")  # a new Doc, so a new client id, on every call

    register_service(
        ServiceHooks("tmpl", allow, on_load=fresh_template, roots={"text": pycrdt.Text})
    )
    try:
        url = f"/api/v1/collab/tmpl/{doc_id}/state"

        async def read() -> str:
            response = await client.get(url, headers=user["headers"])
            assert response.status_code == 200, response.text
            return str(response.json()["state"])

        editor: pycrdt.Doc[Any] = pycrdt.Doc()
        editor.apply_update(base64.b64decode(await read()))
        response = await client.post(
            f"/api/v1/collab/tmpl/save?id={doc_id}",
            content=text_update("edit;", doc=editor),
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
        assert text_of(base64.b64decode(await read())) == "template;edit;"
        await _flush(app)
        assert text_of(base64.b64decode(await read())) == "template;edit;"
        assert loads == 1
    finally:
        unregister_service("tmpl")


async def test_demo_service_is_not_served_in_production(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"/api/v1/collab/demo/save?id={doc_id}"
    platform = app.state.platform
    production = platform.settings.model_copy(update={"env": Environment.production})
    CollabEngine(dataclasses.replace(platform, settings=production))
    try:
        response = await client.post(url, content=text_update("x"), headers=user["headers"])
        assert response.status_code == 404
    finally:
        CollabEngine(platform)  # the test app's own (non-production) registration
    response = await client.post(url, content=text_update("x"), headers=user["headers"])
    assert response.status_code == 200


async def test_save_answers_with_the_state_vector_of_all_the_server_holds(
    client: httpx.AsyncClient, app: FastAPI, doc_id: str
) -> None:
    user = await signup(client, "ann@example.com")
    url = f"/api/v1/collab/demo/save?id={doc_id}"

    async def save(update: bytes) -> dict[int, int]:
        response = await client.post(url, content=update, headers=user["headers"])
        assert response.status_code == 200, response.text
        return decode_state_vector(base64.b64decode(response.json()["state_vector"]))

    left: pycrdt.Doc[Any] = pycrdt.Doc()
    right: pycrdt.Doc[Any] = pycrdt.Doc()
    assert await save(text_update("ab", doc=left)) == {left.client_id: 2}
    # Another leader's save: the answer covers both (database + buffer merged).
    assert await save(text_update("xyz", doc=right)) == {left.client_id: 2, right.client_id: 3}
    await _flush(app)
    clocks = await save(text_update("c", doc=left))  # a diff on top of the flushed state
    assert clocks[right.client_id] == 3
    assert clocks[left.client_id] >= 2
