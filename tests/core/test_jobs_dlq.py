"""Dead-letter store: admin API and `townhall jobs dlq` list, show, retry and discard letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.app import invoke_cli, signup
from tests.fixtures.database import empty_tables
from tests.fixtures.jobs import job_settings, read, running_worker, wait_until
from tests.fixtures.redis_server import RedisServer, redis_server  # noqa: F401
from townhall.core.auth.rbac import grant_role
from townhall.core.config import Settings
from townhall.core.jobs import service
from townhall.core.jobs.repository import DeadLetterRepository
from townhall.core.platform import Platform, build_platform

API = "/api/v1/admin/jobs/dead-letters"


async def admin_headers(client: httpx.AsyncClient, platform: Platform) -> dict[str, str]:
    tokens = await signup(client, f"admin-{uuid.uuid4().hex[:6]}@example.com")
    headers: dict[str, str] = tokens["headers"]
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    async with platform.db.session() as session:
        await grant_role(session, uuid.UUID(me["id"]), "admin")
    return headers


async def add_letters(
    platform: Platform, count: int, task: str = "testjobs.record", path: str = "/nonexistent"
) -> list[str]:
    ids = []
    async with platform.db.session() as session:
        for n in range(count):
            letter = await DeadLetterRepository(session).add(
                task_id=uuid.uuid4().hex,
                task=task,
                queue="testjobs",
                kwargs={"path": path, "key": f"k{n}"},
                error=f"Traceback ...\nRuntimeError: failure {n}",
                attempts=4,
            )
            ids.append(str(letter.id))
    return ids


async def dead_letter_from_a_real_failure(platform: Platform, log: str) -> None:
    await platform.jobs.enqueue("testjobs.doomed", path=log, key="d")
    await wait_until(lambda: sum(r.get("event") == "dead" for r in read(log)) == 1)


class TestAdminApi:
    async def test_needs_an_admin(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(API)).status_code == 401
        user = await signup(client, "plain@example.com")
        response = await client.get(API, headers=user["headers"])
        assert response.status_code == 403
        retry = await client.post(f"{API}/{uuid.uuid4()}/retry", headers=user["headers"])
        assert retry.status_code == 403

    async def test_lists_and_shows_a_real_dead_letter(
        self, client: httpx.AsyncClient, platform: Platform, tmp_path: Path
    ) -> None:
        headers = await admin_headers(client, platform)
        log = str(tmp_path / "runs.jsonl")
        await dead_letter_from_a_real_failure(platform, log)
        page = (await client.get(API, headers=headers)).json()
        assert page["total"] == 1
        item = page["items"][0]
        assert (item["task"], item["attempts"], item["status"]) == ("testjobs.doomed", 3, "dead")
        assert item["arguments"] == {"path": log, "key": "d"}
        one = await client.get(f"{API}/{item['id']}", headers=headers)
        assert one.status_code == 200
        assert "ValueError: always broken" in one.json()["error"]

    async def test_paginates(self, client: httpx.AsyncClient, platform: Platform) -> None:
        headers = await admin_headers(client, platform)
        ids = await add_letters(platform, 3)
        first = (await client.get(API, params={"limit": 2}, headers=headers)).json()
        second = (await client.get(API, params={"limit": 2, "offset": 2}, headers=headers)).json()
        assert first["total"] == second["total"] == 3
        assert len(first["items"]) == 2
        assert len(second["items"]) == 1
        seen = {i["id"] for i in first["items"] + second["items"]}
        assert seen == set(ids)
        bad = await client.get(API, params={"limit": 0, "status": "x"}, headers=headers)
        assert bad.status_code == 422
        assert {e["field"] for e in bad.json()["errors"]} == {"limit", "status"}

    async def test_retry_runs_the_job_again(
        self, client: httpx.AsyncClient, platform: Platform, tmp_path: Path
    ) -> None:
        headers = await admin_headers(client, platform)
        log = str(tmp_path / "runs.jsonl")
        await dead_letter_from_a_real_failure(platform, log)
        letter_id = (await client.get(API, headers=headers)).json()["items"][0]["id"]
        retried = await client.post(f"{API}/{letter_id}/retry", headers=headers)
        assert retried.status_code == 202, retried.text
        # 'retrying' until the job is sent, which happens once the request committed.
        assert retried.json()["status"] == "retrying"
        job_id = retried.json()["retried_job_id"]
        assert job_id
        shown = (await client.get(f"{API}/{letter_id}", headers=headers)).json()
        assert (shown["status"], shown["retried_job_id"]) == ("retried", job_id)
        # Fresh attempts: three more runs, then a second dead letter.
        await wait_until(lambda: sum(r.get("event") == "dead" for r in read(log)) == 2)
        assert [r.get("attempt") for r in read(log) if "event" not in r] == [1, 2, 3, 1, 2, 3]
        page = (await client.get(API, params={"status": "all"}, headers=headers)).json()
        assert sorted(i["status"] for i in page["items"]) == ["dead", "retried"]
        again = await client.post(f"{API}/{letter_id}/retry", headers=headers)
        assert again.status_code == 409
        assert "already retried" in again.json()["detail"]

    async def test_discard(self, client: httpx.AsyncClient, platform: Platform) -> None:
        headers = await admin_headers(client, platform)
        [letter_id] = await add_letters(platform, 1)
        gone = await client.delete(f"{API}/{letter_id}", headers=headers)
        assert gone.status_code == 204
        assert (await client.get(API, headers=headers)).json()["total"] == 0
        kept = (await client.get(f"{API}/{letter_id}", headers=headers)).json()
        assert kept["status"] == "discarded"
        assert (await client.delete(f"{API}/{letter_id}", headers=headers)).status_code == 409
        assert (await client.post(f"{API}/{letter_id}/retry", headers=headers)).status_code == 409

    async def test_unknown_and_malformed_ids(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        headers = await admin_headers(client, platform)
        assert (await client.get(f"{API}/{uuid.uuid4()}", headers=headers)).status_code == 404
        assert (await client.delete(f"{API}/{uuid.uuid4()}", headers=headers)).status_code == 404
        assert (await client.get(f"{API}/not-a-uuid", headers=headers)).status_code == 422

    async def test_retry_of_an_undeclared_task_is_a_conflict(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        headers = await admin_headers(client, platform)
        [letter_id] = await add_letters(platform, 1, task="gone.away")
        response = await client.post(f"{API}/{letter_id}/retry", headers=headers)
        assert response.status_code == 409
        assert "no longer declared" in response.json()["detail"]
        assert (await client.get(f"{API}/{letter_id}", headers=headers)).json()["status"] == "dead"


@pytest.mark.redis
async def test_a_retry_while_the_broker_is_down_is_sent_once_it_is_back(
    redis_server: RedisServer,  # noqa: F811
    sqlite_database_url: str,
    tmp_path: Path,
) -> None:
    settings = job_settings(tmp_path, sqlite_database_url, redis_server.url)
    log = str(tmp_path / "runs.jsonl")
    try:
        async with build_platform(settings) as platform:
            [letter_id] = await add_letters(platform, 1, path=log)
            await asyncio.to_thread(redis_server.stop)
            async with platform.db.session() as session:
                _letter, job_id = await service.retry_dead_letter(
                    session, platform.jobs, uuid.UUID(letter_id)
                )
            # The send after the commit failed: the letter says so instead of 'retried'.
            assert await letter_status(platform, letter_id) == "retrying"
            assert await service.resend_retrying(platform, older_than=timedelta(0)) == 0
            assert await letter_status(platform, letter_id) == "retrying"

            await asyncio.to_thread(redis_server.start)
            assert await service.resend_retrying(platform, older_than=timedelta(0)) == 1
            assert await letter_status(platform, letter_id) == "retried"
            assert await service.resend_retrying(platform, older_than=timedelta(0)) == 0
            async with running_worker(platform):
                await wait_until(lambda: len(read(log)) == 1, message="the retried job")
            assert [(r["key"], r["job_id"]) for r in read(log)] == [("k0", job_id)]
    finally:
        await empty_tables(sqlite_database_url)


async def letter_status(platform: Platform, letter_id: str) -> str:
    async with platform.db.session() as session:
        return (await service.get_dead_letter(session, uuid.UUID(letter_id))).status


class TestCli:
    @pytest.fixture
    def cli(self, settings: Settings) -> Any:
        async def invoke(*args: str) -> tuple[int, str]:
            return await invoke_cli(settings, *args)

        return invoke

    async def test_list_show_retry_discard(
        self, cli: Any, platform: Platform, tmp_path: Path
    ) -> None:
        log = str(tmp_path / "runs.jsonl")
        await dead_letter_from_a_real_failure(platform, log)
        [other] = await add_letters(platform, 1)

        code, out = await cli("jobs", "dlq", "list")
        assert code == 0, out
        assert "testjobs.doomed" in out
        assert "2 of 2 dead letters" in out

        async with platform.db.session() as session:
            letters, _ = await DeadLetterRepository(session).list(
                status="dead", task="testjobs.doomed", limit=1, offset=0
            )
        doomed = str(letters[0].id)
        code, out = await cli("jobs", "dlq", "show", doomed)
        assert code == 0, out
        shown = json.loads(out)
        assert shown["arguments"] == {"path": log, "key": "d"}
        assert "always broken" in shown["error"]

        code, out = await cli("jobs", "dlq", "retry", doomed)
        assert code == 0, out
        assert f"retried {doomed} as job" in out
        await wait_until(lambda: sum(r.get("event") == "dead" for r in read(log)) == 2)

        code, out = await cli("jobs", "dlq", "discard", other)
        assert code == 0, out
        code, out = await cli("jobs", "dlq", "list", "--status", "discarded")
        assert "1 of 1 dead letters" in out
        assert other in out

    async def test_errors_are_clear(self, cli: Any, platform: Platform) -> None:
        code, out = await cli("jobs", "dlq", "show", str(uuid.uuid4()))
        assert code == 1
        assert "not found" in out
        code, out = await cli("jobs", "dlq", "retry", "nonsense")
        assert code == 2
        assert "is not a dead-letter id" in out
        [letter] = await add_letters(platform, 1)
        assert (await cli("jobs", "dlq", "discard", letter))[0] == 0
        code, out = await cli("jobs", "dlq", "discard", letter)
        assert code == 1
        assert "already discarded" in out


class TestObservability:
    async def test_readiness_and_metrics_report_jobs(
        self, client: httpx.AsyncClient, platform: Platform, tmp_path: Path
    ) -> None:
        ready = await client.get("/readyz")
        assert ready.json()["checks"]["jobs"] == "ok"
        log = str(tmp_path / "runs.jsonl")
        await dead_letter_from_a_real_failure(platform, log)
        metrics = (await client.get("/metrics")).text
        for event in ("queued", "started", "retried", "dead"):
            line = f'townhall_jobs_total{{event="{event}",task="testjobs.doomed"}}'
            assert line in metrics, event
        assert "townhall_jobs_running" in metrics
