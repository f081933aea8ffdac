"""Sync API over HTTP: collections, members, documents with ETags, patches, bad input."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sync.conftest import API

DOCS = f"{API}/board/documents"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}


async def create(
    client: httpx.AsyncClient, who: dict[str, Any], doc_id: str, data: Any
) -> httpx.Response:
    return await client.post(DOCS, json={"id": doc_id, "data": data}, headers=who["headers"])


class TestDocuments:
    async def test_create_get_etag(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        created = await create(client, ann, "t1", {"title": "a", "tags": ["x"]})
        assert created.status_code == 201
        assert created.headers["etag"] == '"1"'
        assert created.headers["location"].endswith("/board/documents/t1")
        got = await client.get(f"{DOCS}/t1", headers=ann["headers"])
        assert got.json()["data"] == {"title": "a", "tags": ["x"]}
        assert got.headers["etag"] == '"1"'
        cached = await client.get(f"{DOCS}/t1", headers={**ann["headers"], "If-None-Match": '"1"'})
        assert cached.status_code == 304

    async def test_generated_id_and_duplicate(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        made = await client.post(DOCS, json={"data": {}}, headers=ann["headers"])
        assert made.status_code == 201
        assert len(made.json()["id"]) == 32
        again = await client.post(
            DOCS, json={"id": made.json()["id"], "data": {}}, headers=ann["headers"]
        )
        assert again.status_code == 409
        assert again.json()["current_version"] == 1

    async def test_merge_patch(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"a": {"b": 1, "c": 2}, "d": 3})
        patched = await client.patch(
            f"{DOCS}/t1",
            content=b'{"a": {"b": null, "e": 5}, "d": [1]}',
            headers={**ann["headers"], **MERGE, "If-Match": '"1"'},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["data"] == {"a": {"c": 2, "e": 5}, "d": [1]}
        assert patched.headers["etag"] == '"2"'

    async def test_json_patch_and_test_failure(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"items": [1, 2]})
        ops = [
            {"op": "add", "path": "/items/-", "value": 3},
            {"op": "replace", "path": "/n", "value": 1},
        ]
        bad = await client.patch(f"{DOCS}/t1", json=ops, headers={**ann["headers"], **JSONP})
        assert bad.status_code == 422  # replace of a missing member
        ops = [{"op": "add", "path": "/items/-", "value": 3}]
        good = await client.patch(f"{DOCS}/t1", json=ops, headers={**ann["headers"], **JSONP})
        assert good.json()["data"] == {"items": [1, 2, 3]}
        failed = await client.patch(
            f"{DOCS}/t1",
            json=[{"op": "test", "path": "/items/0", "value": 9}],
            headers={**ann["headers"], **JSONP},
        )
        assert failed.status_code == 409
        assert "test" in failed.json()["detail"]
        garbage = await client.patch(
            f"{DOCS}/t1", json=[{"op": "explode"}], headers={**ann["headers"], **JSONP}
        )
        assert garbage.status_code == 422
        not_list = await client.patch(
            f"{DOCS}/t1", json={"op": "add"}, headers={**ann["headers"], **JSONP}
        )
        assert not_list.status_code == 422
        unchanged = await client.get(f"{DOCS}/t1", headers=ann["headers"])
        assert unchanged.json()["version"] == 2

    async def test_put_if_match_conflict(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"v": 1})
        ok = await client.put(
            f"{DOCS}/t1", json={"v": 2}, headers={**ann["headers"], "If-Match": '"1"'}
        )
        assert ok.status_code == 200
        assert ok.json()["version"] == 2
        stale = await client.put(
            f"{DOCS}/t1", json={"v": 3}, headers={**ann["headers"], "If-Match": '"1"'}
        )
        assert stale.status_code == 409
        assert stale.json()["current_version"] == 2
        assert stale.headers["etag"] == '"2"'
        weird = await client.put(
            f"{DOCS}/t1", json={"v": 3}, headers={**ann["headers"], "If-Match": "banana"}
        )
        assert weird.status_code == 400

    async def test_delete_is_tombstone(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"v": 1})
        gone = await client.delete(f"{DOCS}/t1", headers=ann["headers"])
        assert gone.status_code == 204
        assert gone.headers["etag"] == '"2"'
        assert (await client.get(f"{DOCS}/t1", headers=ann["headers"])).status_code == 404
        assert (await client.delete(f"{DOCS}/t1", headers=ann["headers"])).status_code == 404
        changes = (await client.get(f"{API}/board/changes?since=0", headers=ann["headers"])).json()
        assert [e["op"] for e in changes["events"]] == ["create", "delete"]
        revived = await create(client, ann, "t1", {"v": 9})
        assert revived.status_code == 201
        assert revived.json()["version"] == 3

    async def test_list_paginates(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        for i in range(5):
            await create(client, ann, f"d{i}", {"i": i})
        page = (await client.get(f"{DOCS}?limit=2", headers=ann["headers"])).json()
        assert [d["id"] for d in page["items"]] == ["d0", "d1"]
        assert page["next"] == "d1"
        rest = (await client.get(f"{DOCS}?limit=10&after=d1", headers=ann["headers"])).json()
        assert [d["id"] for d in rest["items"]] == ["d2", "d3", "d4"]
        assert rest["next"] is None


class TestBadInput:
    async def test_malformed_and_invalid_json(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        h = {**ann["headers"], "Content-Type": "application/json"}
        assert (await client.post(DOCS, content=b"{nope", headers=h)).status_code == 400
        assert (await client.post(DOCS, content=b'{"data": NaN}', headers=h)).status_code == 400
        assert (
            await client.post(DOCS, content=b'{"data": {"a": "\\u0000"}}', headers=h)
        ).status_code == 400
        assert (
            await client.post(DOCS, content=b"[" * 5000 + b"]" * 5000, headers=h)
        ).status_code == 400
        assert (
            await client.post(DOCS, json={"data": [1]}, headers=ann["headers"])
        ).status_code == 422
        assert (
            await client.post(DOCS, json={"data": {}, "x": 1}, headers=ann["headers"])
        ).status_code == 422
        assert (
            await client.post(DOCS, json={"id": "a/b", "data": {}}, headers=ann["headers"])
        ).status_code == 422
        assert (
            await client.post(DOCS, json={"id": 5, "data": {}}, headers=ann["headers"])
        ).status_code == 422
        await create(client, ann, "t1", {})
        wrong_type = await client.patch(
            f"{DOCS}/t1", content=b"{}", headers={**ann["headers"], "Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        not_object = await client.patch(
            f"{DOCS}/t1", content=b"[1]", headers={**ann["headers"], **MERGE}
        )
        assert not_object.status_code == 422
        to_array = await client.patch(
            f"{DOCS}/t1",
            json=[{"op": "replace", "path": "", "value": [1]}],
            headers={**ann["headers"], **JSONP},
        )
        assert to_array.status_code == 422

    async def test_oversized_document_is_413(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        big = {"blob": "x" * (1024 * 1024)}
        assert (await create(client, ann, "big", big)).status_code == 413
        await create(client, ann, "t1", {"a": 1})
        grow = await client.patch(f"{DOCS}/t1", json=big, headers={**ann["headers"], **MERGE})
        assert grow.status_code == 413
        assert (await client.get(f"{DOCS}/t1", headers=ann["headers"])).json()["version"] == 1

    async def test_unknown_collection_and_document(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        assert (
            await client.get(f"{API}/nope/documents/x", headers=ann["headers"])
        ).status_code == 404
        assert (await client.get(f"{DOCS}/missing", headers=ann["headers"])).status_code == 404
        missing = await client.patch(
            f"{DOCS}/missing", json={"a": 1}, headers={**ann["headers"], **MERGE}
        )
        assert missing.status_code == 404

    async def test_changes_bad_since(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        assert (
            await client.get(f"{API}/board/changes?since=-1", headers=ann["headers"])
        ).status_code == 422
        assert (
            await client.get(f"{API}/board/changes?since=abc", headers=ann["headers"])
        ).status_code == 422

    async def test_collection_slug_rules(
        self, client: httpx.AsyncClient, ann: dict[str, Any], board: str
    ) -> None:
        assert (
            await client.post(API, json={"name": "X", "slug": "board"}, headers=ann["headers"])
        ).status_code == 409
        assert (
            await client.post(API, json={"name": "X", "slug": "Bad Slug"}, headers=ann["headers"])
        ).status_code == 422
        auto = await client.post(API, json={"name": "My List!"}, headers=ann["headers"])
        assert auto.status_code == 201
        assert auto.json()["slug"].startswith("my-list-")


class TestAuthorization:
    async def test_non_members_cannot_read_or_write(
        self, client: httpx.AsyncClient, ann: dict[str, Any], bob: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"secret": True})
        for method, url, kwargs in [
            ("GET", f"{API}/board", {}),
            ("GET", DOCS, {}),
            ("GET", f"{DOCS}/t1", {}),
            ("GET", f"{API}/board/changes", {}),
            ("POST", DOCS, {"json": {"data": {}}}),
            ("PUT", f"{DOCS}/t1", {"json": {}}),
            ("PATCH", f"{DOCS}/t1", {"json": {"a": 1}, "headers": MERGE}),
            ("DELETE", f"{DOCS}/t1", {}),
            ("POST", f"{API}/board/snapshots", {}),
            ("GET", f"{API}/board/members", {}),
        ]:
            headers = {**bob["headers"], **kwargs.pop("headers", {})}
            response = await client.request(method, url, headers=headers, **kwargs)
            assert response.status_code == 404, (method, url, response.text)
        assert (await client.get(DOCS)).status_code == 401
        listed = await client.get(API, headers=bob["headers"])
        assert listed.json() == []

    async def test_reader_reads_writer_writes_owner_manages(
        self, client: httpx.AsyncClient, ann: dict[str, Any], bob: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"n": 0})
        added = await client.post(
            f"{API}/board/members",
            json={"email": "bob@example.com", "role": "read"},
            headers=ann["headers"],
        )
        assert added.status_code == 201
        assert (await client.get(f"{DOCS}/t1", headers=bob["headers"])).status_code == 200
        denied = await client.patch(
            f"{DOCS}/t1", json={"n": 1}, headers={**bob["headers"], **MERGE}
        )
        assert denied.status_code == 403
        assert (
            await client.post(
                f"{API}/board/members",
                json={"email": "ann@example.com", "role": "write"},
                headers=bob["headers"],
            )
        ).status_code == 403
        await client.post(
            f"{API}/board/members",
            json={"email": "bob@example.com", "role": "write"},
            headers=ann["headers"],
        )
        allowed = await client.patch(
            f"{DOCS}/t1", json={"n": 1}, headers={**bob["headers"], **MERGE}
        )
        assert allowed.status_code == 200
        changes = (await client.get(f"{API}/board/changes", headers=ann["headers"])).json()
        assert changes["events"][-1]["actor"] == bob_id(
            bob, (await client.get(f"{API}/board/members", headers=ann["headers"])).json()
        )
        member = (await client.get(f"{API}/board/members", headers=ann["headers"])).json()[0]
        assert (
            await client.delete(f"{API}/board/members/{member['user_id']}", headers=ann["headers"])
        ).status_code == 204
        assert (await client.get(f"{DOCS}/t1", headers=bob["headers"])).status_code == 404

    async def test_client_positions_are_for_the_owner_only(
        self, client: httpx.AsyncClient, ann: dict[str, Any], bob: dict[str, Any], board: str
    ) -> None:
        await create(client, ann, "t1", {"n": 0})
        clients = f"{API}/board/clients"
        assert (await client.get(clients, headers=bob["headers"])).status_code == 404
        for role in ("read", "write"):
            await client.post(
                f"{API}/board/members",
                json={"email": "bob@example.com", "role": role},
                headers=ann["headers"],
            )
            acked = await client.post(
                f"{API}/board/ack",
                json={"client_id": "bob-phone", "streams": {"board": 1}},
                headers=bob["headers"],
            )
            assert acked.json() == {"board": 1}
            assert (await client.get(clients, headers=bob["headers"])).status_code == 403
        await create(client, ann, "t2", {"n": 0})
        listed = (await client.get(clients, headers=ann["headers"])).json()
        assert [(c["client_id"], c["email"], c["seq"], c["behind"]) for c in listed] == [
            ("bob-phone", "bob@example.com", 1, 1)
        ]


def bob_id(bob: dict[str, Any], members: list[dict[str, Any]]) -> str:
    return next(m["user_id"] for m in members if m["email"] == "bob@example.com")
