"""The quiz REST API: editor, library, import/export, community, moderation, pages."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from openpyxl import load_workbook
from tests.fixtures.app import make_settings, signup
from tests.fixtures.database import empty_tables
from tests.fixtures.s3 import S3Server, s3_server  # noqa: F401 (the fixture)
from tests.modules.quiz.helpers import PNG, QUESTIONS

from townhall.core.auth.service import AuthService
from townhall.core.platform import Platform
from townhall.main import create_app
from townhall.modules.quiz import service
from townhall.modules.quiz.demo import DEMO_TITLE, load_demo
from townhall.modules.quiz.repository import QuizRepository

Q = "/api/v1/quizzes"


async def _quiz(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> Any:
    body = {"title": "Maths", "tags": ["Math", "school"], "questions": QUESTIONS, **extra}
    response = await client.post(Q, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _admin(client: httpx.AsyncClient, platform: Platform) -> dict[str, str]:
    async with platform.db.session() as session:
        await AuthService(platform.settings, platform.cache).create_user(
            session,
            email="mod@example.com",
            display_name="Mod",
            password="password123",
            roles=("user", "admin"),
        )
    response = await client.post(
        "/api/v1/auth/login", json={"email": "mod@example.com", "password": "password123"}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_create_every_type_and_read_back(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    quiz = await _quiz(client, ann["headers"])
    assert [q["type"] for q in quiz["questions"]] == [q["type"] for q in QUESTIONS]
    assert quiz["tags"] == ["math", "school"]
    assert quiz["question_count"] == len(QUESTIONS)
    slider = quiz["questions"][4]
    assert (slider["min"], slider["max"], slider["correct"]) == (0, 180, 90)
    assert quiz["questions"][6]["points"] == 0  # polls never score
    # Private: others do not see it.
    bob = await signup(client, "bob@example.com")
    assert (await client.get(f"{Q}/{quiz['id']}", headers=bob["headers"])).status_code == 404
    assert (
        await client.put(f"{Q}/{quiz['id']}", json={"title": "x"}, headers=bob["headers"])
    ).status_code == 404


async def test_validation_per_type(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    bad = [
        {"type": "single", "text": "x", "options": [{"text": "a"}, {"text": "b"}]},
        {"type": "single", "text": "x", "options": [{"text": "a", "correct": True}]},
        {"type": "true_false", "text": "x", "options": [{"text": "T", "correct": True}] * 3},
        {"type": "multiple", "text": "x", "options": [{"text": "a"}, {"text": "b"}]},
        {"type": "type_answer", "text": "x", "accepted": []},
        {"type": "slider", "text": "x", "min": 10, "max": 0, "step": 1, "correct": 5},
        {"type": "ordering", "text": "x", "items": ["one"]},
        {
            "type": "single",
            "text": "x",
            "points": 500,
            "options": [{"text": "a", "correct": True}, {"text": "b"}],
        },
        {"type": "essay", "text": "x"},
    ]
    for question in bad:
        response = await client.post(
            Q, json={"title": "t", "questions": [question]}, headers=ann["headers"]
        )
        assert response.status_code == 422, (question, response.text)
    extra = await client.post(Q, json={"title": "t", "hack": 1}, headers=ann["headers"])
    assert extra.status_code == 422
    assert (await client.post(Q, json={"title": "t"})).status_code == 401


async def test_edit_reorder_duplicate_delete(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    quiz = await _quiz(client, ann["headers"])
    ids = [q["id"] for q in quiz["questions"]]
    order = list(reversed(ids))
    reordered = await client.post(
        f"{Q}/{quiz['id']}/reorder", json={"order": order}, headers=ann["headers"]
    )
    assert [q["id"] for q in reordered.json()["questions"]] == order
    missing = await client.post(
        f"{Q}/{quiz['id']}/reorder", json={"order": order[:-1]}, headers=ann["headers"]
    )
    assert missing.status_code == 400
    dup = await client.post(
        f"{Q}/{quiz['id']}/questions/{ids[0]}/duplicate", headers=ann["headers"]
    )
    questions = dup.json()["questions"]
    assert len(questions) == len(ids) + 1
    assert questions[-1]["text"] == questions[-2]["text"] == "2 + 2?"
    copy = await client.post(f"{Q}/{quiz['id']}/duplicate", headers=ann["headers"])
    assert copy.status_code == 201
    assert copy.json()["title"] == "Maths (copy)"
    assert copy.json()["is_public"] is False
    saved = await client.put(
        f"{Q}/{quiz['id']}",
        json={"title": "Renamed", "questions": QUESTIONS[:2]},
        headers=ann["headers"],
    )
    assert saved.json()["title"] == "Renamed"
    assert saved.json()["question_count"] == 2
    assert (await client.delete(f"{Q}/{quiz['id']}", headers=ann["headers"])).status_code == 204
    assert (await client.get(f"{Q}/{quiz['id']}", headers=ann["headers"])).status_code == 404


async def test_library_search_tags_and_mine(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    await _quiz(client, ann["headers"], title="Public maths", is_public=True)
    await _quiz(client, ann["headers"], title="Secret maths")
    await _quiz(client, ann["headers"], title="Birds", is_public=True, tags=["nature"])
    public = (await client.get(Q, params={"scope": "public"})).json()
    assert {q["title"] for q in public["items"]} == {"Public maths", "Birds"}
    found = (await client.get(Q, params={"q": "MATHS"})).json()
    assert [q["title"] for q in found["items"]] == ["Public maths"]
    tagged = (await client.get(Q, params={"tag": "nature"})).json()
    assert [q["title"] for q in tagged["items"]] == ["Birds"]
    mine = (await client.get(Q, params={"scope": "mine"}, headers=ann["headers"])).json()
    assert mine["total"] == 3
    assert (await client.get(Q, params={"scope": "mine"})).status_code == 400
    assert (await client.get(Q, params={"limit": 1000})).status_code == 422


async def test_json_and_spreadsheet_round_trips(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    quiz = await _quiz(client, ann["headers"])
    exported = await client.get(f"{Q}/{quiz['id']}/export.json", headers=ann["headers"])
    assert exported.json()["format"] == "townhall-quiz/1"
    imported = await client.post(f"{Q}/import", json=exported.json(), headers=ann["headers"])
    assert imported.status_code == 201
    assert [q["text"] for q in imported.json()["questions"]] == [q["text"] for q in QUESTIONS]

    for fmt in ("csv", "xlsx"):
        sheet = await client.get(f"{Q}/{quiz['id']}/export.{fmt}", headers=ann["headers"])
        assert sheet.status_code == 200
        back = await client.post(
            f"{Q}/import/spreadsheet",
            files={"file": (f"quiz.{fmt}", sheet.content)},
            data={"title": f"From {fmt}"},
            headers=ann["headers"],
        )
        assert back.status_code == 201, back.text
        types = [q["type"] for q in back.json()["questions"]]
        assert types == [q["type"] for q in QUESTIONS]
        assert back.json()["questions"][1]["options"][2] == {"text": "8", "correct": True}

    template = await client.get(f"{Q}/template.xlsx")
    rows = list(load_workbook(io.BytesIO(template.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "type"
    assert len(rows) == 8  # header + one example of each of the 7 types
    broken = "type,question,answers,correct\nsingle,Pick,A|B,7\n"
    response = await client.post(
        f"{Q}/import/spreadsheet",
        files={"file": ("bad.csv", broken.encode())},
        headers=ann["headers"],
    )
    assert response.status_code == 422
    assert "row 2" in response.json()["detail"]


async def test_comments_likes_reports_and_moderation(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    ann = await signup(client)
    bob = await signup(client, "bob@example.com", display_name="Bob")
    quiz = await _quiz(client, ann["headers"], is_public=True)
    url = f"{Q}/{quiz['id']}"
    top = (
        await client.post(f"{url}/comments", json={"body": "Nice!"}, headers=bob["headers"])
    ).json()
    reply = await client.post(
        f"{url}/comments", json={"body": "Thanks", "parent_id": top["id"]}, headers=ann["headers"]
    )
    assert reply.status_code == 201
    deeper = await client.post(
        f"{url}/comments",
        json={"body": "x", "parent_id": reply.json()["id"]},
        headers=bob["headers"],
    )
    assert deeper.status_code == 400  # one level of replies
    thread = (await client.get(f"{url}/comments")).json()
    assert len(thread) == 1
    assert thread[0]["replies"][0]["body"] == "Thanks"
    not_mine = await client.patch(
        f"{Q}/comments/{top['id']}", json={"body": "hacked"}, headers=ann["headers"]
    )
    assert not_mine.status_code == 403
    edited = await client.patch(
        f"{Q}/comments/{top['id']}", json={"body": "Great!"}, headers=bob["headers"]
    )
    assert edited.json()["edited"] is True

    assert (await client.put(f"{url}/like", headers=bob["headers"])).json() == {
        "liked": True,
        "like_count": 1,
    }
    assert (await client.put(f"{url}/like", headers=bob["headers"])).json()["like_count"] == 1
    assert (await client.get(url, headers=bob["headers"])).json()["liked"] is True
    assert (await client.delete(f"{url}/like", headers=bob["headers"])).json()["like_count"] == 0

    report = await client.post(
        f"{url}/reports",
        json={"reason": "spam link", "comment_id": top["id"]},
        headers=ann["headers"],
    )
    assert report.status_code == 201
    assert (await client.get(f"{Q}/reports", headers=ann["headers"])).status_code == 403
    admin = await _admin(client, platform)
    queue = (await client.get(f"{Q}/reports", headers=admin)).json()
    assert [r["comment_body"] for r in queue] == ["Great!"]
    done = await client.post(
        f"{Q}/reports/{queue[0]['id']}/resolve", json={"action": "delete_comment"}, headers=admin
    )
    assert done.json()["status"] == "resolved"
    assert (await client.get(f"{url}/comments")).json()[0]["is_deleted"] is True
    quiz_report = await client.post(
        f"{url}/reports", json={"reason": "offensive"}, headers=bob["headers"]
    )
    await client.post(
        f"{Q}/reports/{quiz_report.json()['id']}/resolve",
        json={"action": "hide_quiz"},
        headers=admin,
    )
    assert (await client.get(url)).status_code == 404  # hidden from the public
    assert (await client.get(url, headers=ann["headers"])).status_code == 200  # not from its owner
    assert (await client.get(Q)).json()["total"] == 0


async def test_pages_and_demo(client: httpx.AsyncClient, platform: Platform) -> None:
    assert (await client.get("/quiz")).status_code == 200
    play = await client.get("/quiz/play?pin=123456")
    assert "socket.io.esm.min.js" in play.text
    assert 'value="123456"' in play.text
    assert (await client.get("/quiz/new")).status_code == 303
    vendor = await client.get("/static/vendor/socket.io.esm.min.js")
    assert vendor.status_code == 200
    assert "Socket.IO v4" in vendor.text[:200]

    ann = await signup(client, "alice@example.com")
    async with platform.db.session() as session:
        from townhall.core.auth.repository import UserRepository

        alice = await UserRepository(session).get_by_email("alice@example.com")
        assert alice is not None
        await load_demo(platform, session, {"alice@example.com": alice})
        await load_demo(platform, session, {"alice@example.com": alice})  # idempotent
    public = (await client.get(Q)).json()["items"]
    assert [q["title"] for q in public] == [DEMO_TITLE]
    demo = (await client.get(f"{Q}/{public[0]['id']}")).json()
    assert {q["type"] for q in demo["questions"]} == {
        "single",
        "multiple",
        "true_false",
        "type_answer",
        "slider",
        "poll",
        "ordering",
    }
    client.cookies.set("th_access", ann["access_token"])
    for path in ("", "/edit", "/host"):
        page = await client.get(f"/quiz/{demo['id']}{path}")
        assert page.status_code == 200, (path, page.text[:200])
        if path == "/edit":
            assert "const DIRECT_UPLOAD = false;" in page.text  # local files: through the app
    assert (await client.get("/quiz/new")).status_code == 200


async def test_question_images(client: httpx.AsyncClient) -> None:
    ann = await signup(client)
    quiz = await _quiz(client, ann["headers"])
    url = f"{Q}/{quiz['id']}/images"
    uploaded = await client.post(
        url, files={"file": ("a.png", PNG, "image/png")}, headers=ann["headers"]
    )
    assert uploaded.status_code == 201, uploaded.text
    key = uploaded.json()["key"]
    assert key.startswith(f"quiz/{quiz['id']}/")
    body = {"title": "With image", "questions": [dict(QUESTIONS[0], image_key=key)]}
    saved = (await client.put(f"{Q}/{quiz['id']}", json=body, headers=ann["headers"])).json()
    assert saved["questions"][0]["image_url"]
    fetched = await client.get(saved["questions"][0]["image_url"])
    assert fetched.status_code == 200
    assert fetched.content == PNG
    text = await client.post(
        url, files={"file": ("a.txt", b"hello", "text/plain")}, headers=ann["headers"]
    )
    assert text.status_code in (415, 422)
    huge = PNG + b"\0" * (5 * 1024 * 1024)
    too_big = await client.post(
        url, files={"file": ("b.png", huge, "image/png")}, headers=ann["headers"]
    )
    assert too_big.status_code == 413
    bob = await signup(client, "bob@example.com")
    other = await client.post(
        url, files={"file": ("a.png", PNG, "image/png")}, headers=bob["headers"]
    )
    assert other.status_code == 404


async def test_image_keys_only_name_quiz_images(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """A key from elsewhere in the store is refused, so the API never signs another app's blob."""
    await platform.storage.put("report/private/photo.png", PNG, "image/png")
    ann = await signup(client)
    bob = await signup(client, "bob@example.com", display_name="Bob")
    for key in ("report/private/photo.png", "quiz/../report/private/photo.png"):
        body = {"title": "Sneaky", "questions": [dict(QUESTIONS[0], image_key=key)]}
        refused = await client.post(Q, json=body, headers=ann["headers"])
        assert refused.status_code == 422, refused.text
        assert (
            await client.post(
                Q, json={"title": "C", "cover_image_key": key}, headers=ann["headers"]
            )
        ).status_code == 422

    # Bob's private quiz with an image: Ann cannot borrow its key; once public, a copy may.
    bob_quiz = await _quiz(client, bob["headers"])
    uploaded = await client.post(
        f"{Q}/{bob_quiz['id']}/images",
        files={"file": ("a.png", PNG, "image/png")},
        headers=bob["headers"],
    )
    key = uploaded.json()["key"]
    with_image = {"title": "Pic", "questions": [dict(QUESTIONS[0], image_key=key)]}
    saved = await client.put(f"{Q}/{bob_quiz['id']}", json=with_image, headers=bob["headers"])
    assert saved.status_code == 200, saved.text
    borrowed = await client.post(Q, json=with_image, headers=ann["headers"])
    assert borrowed.status_code == 400, borrowed.text
    ann_quiz = await _quiz(client, ann["headers"])
    assert (
        await client.put(f"{Q}/{ann_quiz['id']}", json=with_image, headers=ann["headers"])
    ).status_code == 400
    public = dict(with_image, is_public=True)
    assert (
        await client.put(f"{Q}/{bob_quiz['id']}", json=public, headers=bob["headers"])
    ).status_code == 200
    copy = await client.post(f"{Q}/{bob_quiz['id']}/duplicate", headers=ann["headers"])
    assert copy.status_code == 201, copy.text
    image_url = copy.json()["questions"][0]["image_url"]
    assert (await client.get(image_url)).content == PNG
    # The copy stays editable even after Bob makes his quiz private again.
    assert (
        await client.put(f"{Q}/{bob_quiz['id']}", json=with_image, headers=bob["headers"])
    ).status_code == 200
    resave = {"title": "Mine now", "questions": [dict(QUESTIONS[0], image_key=key)]}
    assert (
        await client.put(f"{Q}/{copy.json()['id']}", json=resave, headers=ann["headers"])
    ).status_code == 200


async def test_direct_upload_with_a_presigned_put(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    ann = await signup(client)
    quiz = await _quiz(client, ann["headers"])
    url = f"{Q}/{quiz['id']}/images/upload-url"

    async def presigned(content_type: str = "image/png") -> Any:
        response = await client.post(
            url, json={"content_type": content_type}, headers=ann["headers"]
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def save_with(key: str) -> httpx.Response:
        body = {"title": "Direct", "questions": [dict(QUESTIONS[0], image_key=key)]}
        return await client.put(f"{Q}/{quiz['id']}", json=body, headers=ann["headers"])

    bob = await signup(client, "bob@example.com", display_name="Bob")
    not_owner = await client.post(url, json={"content_type": "image/png"}, headers=bob["headers"])
    assert not_owner.status_code == 404
    assert (
        await client.post(url, json={"content_type": "text/html"}, headers=ann["headers"])
    ).status_code == 422

    good = await presigned()
    assert good["method"] == "PUT"
    assert good["key"].startswith(f"quiz/{quiz['id']}/")
    put = await client.put(good["url"], content=PNG, headers=good["headers"])
    assert put.status_code == 201, put.text
    saved = await save_with(good["key"])
    assert saved.status_code == 200, saved.text
    assert (await client.get(saved.json()["questions"][0]["image_url"])).content == PNG

    # Nothing was uploaded under this key.
    assert (await save_with((await presigned())["key"])).status_code == 400

    # The PUT itself cannot enforce the quiz's limits: saving does, and drops the blob.
    big = await presigned()
    huge = PNG + b"\0" * platform.settings.quiz_max_image_bytes
    assert (await client.put(big["url"], content=huge, headers=big["headers"])).status_code == 201
    assert (await save_with(big["key"])).status_code == 413
    assert not await platform.storage.exists(big["key"])
    text = await presigned()
    sent = await client.put(
        text["url"], content=b"just text", headers={"Content-Type": "text/plain"}
    )
    assert sent.status_code == 201
    assert (await save_with(text["key"])).status_code == 415
    assert not await platform.storage.exists(text["key"])


async def test_presigned_put_straight_to_s3(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> None:
    """With S3 storage the upload URL is an S3 presigned PUT; saving checks what arrived."""
    server: S3Server = request.getfixturevalue("s3_server")
    overrides = server.settings_overrides(server.create_bucket())
    app = create_app(make_settings(tmp_path, database_url=database_url, **overrides))
    try:
        async with (
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as client,
            httpx.AsyncClient() as s3,
        ):
            ann = await signup(client)
            quiz = await _quiz(client, ann["headers"])
            url = f"{Q}/{quiz['id']}/images/upload-url"
            keys = []
            for body in (PNG, b"GIF89a" + b"\0" * 64):  # the second lies about its type
                upload = await client.post(
                    url, json={"content_type": "image/png"}, headers=ann["headers"]
                )
                assert upload.status_code == 201, upload.text
                target = upload.json()
                assert target["url"].startswith(server.endpoint)
                assert "X-Amz-Signature=" in target["url"]
                sent = await s3.put(target["url"], content=body, headers=target["headers"])
                assert sent.status_code == 200
                keys.append(target["key"])
            good = {"title": "S3", "questions": [dict(QUESTIONS[0], image_key=keys[0])]}
            saved = await client.put(f"{Q}/{quiz['id']}", json=good, headers=ann["headers"])
            assert saved.status_code == 200, saved.text
            fetched = await s3.get(saved.json()["questions"][0]["image_url"])
            assert fetched.content == PNG
            bad = {"title": "S3", "questions": [dict(QUESTIONS[0], image_key=keys[1])]}
            refused = await client.put(f"{Q}/{quiz['id']}", json=bad, headers=ann["headers"])
            assert refused.status_code == 422, refused.text
            platform: Platform = app.state.platform
            assert not await platform.storage.exists(keys[1])
            await _presign_limits_and_confirm(client, s3, ann["headers"], quiz["id"], platform)
            client.cookies.set("th_access", ann["access_token"])
            editor = await client.get(f"/quiz/{quiz['id']}/edit")
            assert "const DIRECT_UPLOAD = true;" in editor.text  # the editor PUTs to S3
    finally:
        await empty_tables(database_url)


async def _presign_limits_and_confirm(
    client: httpx.AsyncClient,
    s3: httpx.AsyncClient,
    headers: dict[str, str],
    quiz_id: str,
    platform: Platform,
) -> None:
    """The editor's direct upload: presign (type and size checked), PUT, then confirm the key."""
    base = f"{Q}/{quiz_id}/images"
    limit = platform.settings.quiz_max_image_bytes

    async def presign(**body: Any) -> httpx.Response:
        return await client.post(f"{base}/upload-url", json=body, headers=headers)

    async def confirm(key: str) -> httpx.Response:
        return await client.post(f"{base}/confirm", json={"key": key}, headers=headers)

    assert (await presign(content_type="image/svg+xml", size=10)).status_code == 422
    too_big = await presign(content_type="image/png", size=limit + 1)
    assert too_big.status_code == 413, too_big.text
    assert too_big.headers["content-type"].startswith("application/problem+json")
    assert (await presign(content_type="image/png", size=0)).status_code == 422
    targets = []
    for body in (PNG, b"<html>not an image</html>"):
        target = (await presign(content_type="image/png", size=len(body))).json()
        assert target["max_bytes"] == limit
        sent = await s3.put(target["url"], content=body, headers=target["headers"])
        assert sent.status_code == 200
        targets.append(target)
    good = await confirm(targets[0]["key"])
    assert good.status_code == 200, good.text
    assert good.json()["key"] == targets[0]["key"]
    assert (await s3.get(good.json()["url"])).content == PNG
    liar = await confirm(targets[1]["key"])
    assert liar.status_code in (415, 422), liar.text
    assert not await platform.storage.exists(targets[1]["key"])  # a rejected upload is dropped
    never = (await presign(content_type="image/png")).json()
    assert (await confirm(never["key"])).status_code == 400  # nothing was PUT there
    other = f"quiz/{'0' * 8}-0000-0000-0000-{'0' * 12}/{'a' * 32}"
    assert (await confirm(other)).status_code == 400
    assert (await confirm("../etc/passwd")).status_code == 422


async def test_results_are_written_once_by_concurrent_writers(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """Two workers storing the same game at once: one writes, the others find it ended."""
    ann = await signup(client)
    quiz_out = await _quiz(client, ann["headers"])
    quiz_id, game_id = uuid.UUID(quiz_out["id"]), uuid.uuid4()
    async with platform.db.session() as session:
        quiz = await QuizRepository(session).get(quiz_id)
        assert quiz is not None
        await service.start_game(session, quiz.owner_id, quiz, "123456", game_id)
    player = {"number": 1, "nickname": "Ann", "user_id": None, "score": 5, "rank": 1}
    answer = {
        "player_number": 1,
        "question_index": 0,
        "question_id": uuid.UUID(quiz_out["questions"][0]["id"]),
        "answer": 1,
        "outcome": "correct",
        "points": 5,
        "bonus": 0,
        "elapsed_ms": 9,
    }

    async def store() -> bool:
        async with platform.db.session() as session:
            return await service.store_results(
                session, game_id, [dict(player, correct_count=1, kicked=False)], [answer]
            )

    assert sorted(await asyncio.gather(store(), store(), store())) == [False, False, True]
    stored = (await client.get(f"{Q}/games/{game_id}", headers=ann["headers"])).json()
    assert stored["status"] == "ended"
    assert [p["nickname"] for p in stored["players"]] == ["Ann"]
    report = await client.get(f"{Q}/games/{game_id}/results.csv", headers=ann["headers"])
    assert len(report.text.strip().splitlines()) == 2  # the header and one answer
    assert (await client.get(f"{Q}/{quiz_id}", headers=ann["headers"])).json()["play_count"] == 1
