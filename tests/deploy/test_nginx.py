"""deploy/nginx.conf as shipped, in front of two real `townhall serve` processes on one port."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.collab.test_sockets import edits_meet
from tests.fixtures.app import make_settings, signup
from tests.fixtures.serve import serve_process
from tests.fixtures.services import REDIS_URL, free_port, require
from tests.modules.quiz.helpers import QUESTIONS, signup_and_quiz, stored_game
from tests.modules.quiz.helpers import Client as QuizClient
from tests.modules.report.conftest import build_world, wait_for
from townhall.core.platform import build_platform

# Starting two web processes is the slow part; a loaded CI machine may need minutes.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
API = "/api/v1/sync/collections"
MERGE = {"Content-Type": "application/merge-patch+json"}


def render_nginx_conf(directory: Path, listen_port: int, upstream_ports: list[int]) -> Path:
    """deploy/nginx.conf with only its ports and file paths pointed at `directory`."""
    text = (DEPLOY / "nginx.conf").read_text()
    servers = "".join(
        f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=5s;\n" for port in upstream_ports
    )
    text, upstreams = re.subn(r"(        server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, text)
    assert upstreams == 1, "nginx.conf must list its web processes in one upstream block"
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "pid /run/nginx.pid;": f"pid {directory / 'nginx.pid'};",
        "/var/log/nginx/": f"{directory}/",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    conf = directory / "nginx.conf"
    conf.write_text(text)
    shutil.copy(DEPLOY / "townhall-proxy.conf", directory / "townhall-proxy.conf")
    return conf


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    assert NGINX, "nginx is missing: run scripts/test-deps.sh"
    return subprocess.run(
        [NGINX, "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tls_stanza_is_valid_nginx(tmp_path: Path) -> None:
    conf = render_nginx_conf(tmp_path, free_port(), [free_port()])
    tls = (DEPLOY / "nginx-tls.conf").read_text()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-keyout", str(tmp_path / "privkey.pem"),
         "-out", str(tmp_path / "fullchain.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    tls = tls.replace("/etc/ssl/townhall/", f"{tmp_path}/")
    tls = re.sub(r"listen (\[::\]:)?(80|443)", lambda m: f"listen 127.0.0.1:{free_port()}", tls)
    (tmp_path / "tls.conf").write_text(tls)
    text = conf.read_text().replace("    server {", "    include tls.conf;\n\n    server {", 1)
    conf.write_text(text)
    checked = nginx_test(conf)
    assert checked.returncode == 0, checked.stderr


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The settings every process of the cluster shares (one SQLite file, one Redis)."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    return {
        "TOWNHALL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "TOWNHALL_SECRET_KEY": "cluster-test-secret-with-enough-length-for-hs256",
        "TOWNHALL_REDIS_URL": REDIS_URL,
        "TOWNHALL_PUBSUB_CHANNEL_PREFIX": f"nginx-test-{uuid.uuid4().hex[:8]}",
        "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "1000",  # the Redis counter outlives this test
    }


@pytest.fixture(scope="module")
def cluster(shared_env: dict[str, str]) -> Iterator[str]:
    """Two web processes sharing one database and Redis, behind nginx; yields nginx's URL."""
    require("Redis", REDIS_URL, 6379)
    shared = shared_env
    tmp_path = Path(shared["TOWNHALL_DATABASE_URL"].split(":///", 1)[1]).parent
    ports = []
    with ExitStack() as stack:
        for name in ("web1", "web2"):  # one after the other: the first migrates the database
            (tmp_path / name).mkdir()
            base = stack.enter_context(serve_process(tmp_path / name, **shared))
            ports.append(int(base.rsplit(":", 1)[1]))
        listen = free_port()
        conf = render_nginx_conf(tmp_path, listen, ports)
        checked = nginx_test(conf)
        assert checked.returncode == 0, checked.stderr
        assert NGINX
        nginx = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"])
        stack.callback(nginx.wait, 10)  # callbacks run last first: terminate, then wait
        stack.callback(nginx.terminate)
        url = f"http://127.0.0.1:{listen}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            subprocess.run(["sleep", "0.1"], check=True)
        yield url


async def next_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The data of the next SSE event (comments and heartbeats skipped)."""
    fields: dict[str, str] = {}
    async with asyncio.timeout(15):
        async for line in lines:
            if line == "" and "data" in fields:
                data: dict[str, Any] = json.loads(fields["data"])
                return data
            if line == "":
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.lstrip(" ")
    raise AssertionError("the stream ended")


async def test_sse_streams_unbuffered_across_processes_through_one_port(cluster: str) -> None:
    async with httpx.AsyncClient(base_url=cluster, timeout=20) as http:
        ann = await signup(http, "ann@example.com")
        made = await http.post(API, json={"name": "B", "slug": "board"}, headers=ann["headers"])
        assert made.status_code == 201, made.text
        created = await http.post(
            f"{API}/board/documents", json={"id": "t", "data": {"n": 0}}, headers=ann["headers"]
        )
        assert created.status_code == 201, created.text
        stream_url = f"{API}/board/events?since=1"
        async with http.stream("GET", stream_url, headers=ann["headers"]) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            # least_conn sends these writes to the process that is not holding the stream.
            for n in range(1, 4):
                written = await http.patch(
                    f"{API}/board/documents/t", json={"n": n}, headers={**ann["headers"], **MERGE}
                )
                assert written.status_code == 200, written.text
                event = await next_event(lines)
                assert event["patch"] == {"n": n}


async def test_townhall_limits_answer_before_nginx_cuts_a_large_body(cluster: str) -> None:
    async with httpx.AsyncClient(base_url=cluster, timeout=20) as http:
        ann = await signup(http, "limits@example.com")
        too_big = b"x" * (11 * 1024 * 1024)  # over townhall's 10 MiB, under nginx's limit
        response = await http.post(
            API, content=too_big, headers={**ann["headers"], "Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_yjs_room_spans_the_processes_behind_one_port(cluster: str) -> None:
    async with httpx.AsyncClient(base_url=cluster, timeout=20) as http:
        token = (await signup(http, "yjs@example.com"))["access_token"]
    ws_url = cluster.replace("http://", "ws://") + f"/collab/ws/demo/{uuid.uuid4().hex}"
    # least_conn sends the second WebSocket to the process not holding the first.
    async with (
        websockets.connect(f"{ws_url}?token={token}") as ws_a,
        websockets.connect(f"{ws_url}?token={token}") as ws_b,
    ):
        await edits_meet(ws_a, ws_b, "through nginx;", "and back;")


async def test_a_quiz_game_plays_across_the_processes_behind_one_port(cluster: str) -> None:
    token, quiz_id = await signup_and_quiz(cluster, "quizhost@example.com", QUESTIONS[:1])
    # least_conn spreads the long-lived sockets: host and Bob on one process, Ann on the other.
    host = await QuizClient().connect(cluster, token)
    ann = await QuizClient().connect(cluster)
    bob = await QuizClient().connect(cluster)
    try:
        created = await host.call("host_create", {"quiz_id": quiz_id})
        assert created["ok"], created
        pin = created["pin"]
        for player, name in ((ann, "Ann"), (bob, "Bob")):
            assert (await player.call("join", {"pin": pin, "nickname": name}))["ok"]
        assert (await host.call("next"))["ok"]
        await ann.wait("question")
        await bob.wait("question")
        right = await ann.call("answer", {"index": 0, "answer": 1})
        wrong = await bob.call("answer", {"index": 0, "answer": 0})
        assert right["points"] > 0, right
        assert wrong["points"] == 0, wrong
        for player in (ann, bob):  # both answered: the question closes early, on one process
            results = await player.wait("question_results", timeout=15)
            assert results["index"] == 0
            assert results["distribution"]["answered"] == 2
            assert results["top"][0]["nickname"] == "Ann"
        assert (await host.call("finish"))["ok"]
        podium = (await bob.wait("game_over"))["podium"]
        assert [p["nickname"] for p in podium][:2] == ["Ann", "Bob"]
        assert podium[0]["score"] == right["points"] + right["bonus"]
        async with httpx.AsyncClient(base_url=cluster, timeout=20) as http:
            http.headers["Authorization"] = f"Bearer {token}"
            stored = await stored_game(http, created["game_id"])
        assert {p["nickname"]: p["score"] for p in stored["players"]} == {
            "Ann": right["points"] + right["bonus"],
            "Bob": 0,
        }
    finally:
        for client in (host, ann, bob):
            await client.close()


async def test_report_notifications_reach_an_officer_on_the_other_process(
    cluster: str, shared_env: dict[str, str], tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=shared_env["TOWNHALL_DATABASE_URL"],
        secret_key=shared_env["TOWNHALL_SECRET_KEY"],
        redis_url=REDIS_URL,
        pubsub_channel_prefix=shared_env["TOWNHALL_PUBSUB_CHANNEL_PREFIX"],
    )
    async with (
        build_platform(settings) as platform,  # only to seed staff and departments
        httpx.AsyncClient(base_url=cluster, timeout=30) as http,
    ):
        world = await build_world(http, platform)
        token = world.users["roads_officer"]["access_token"]
        ws_url = cluster.replace("http://", "ws://") + f"/api/v1/reports/ws?token={token}"
        async with websockets.connect(ws_url) as officer:
            hello = json.loads(await asyncio.wait_for(officer.recv(), 10))
            assert hello["type"] == "ready"
            # least_conn sends the citizen's POST to the process not holding the officer.
            report = await world.file("alice", title="Pothole on Paldal-ro")
            note = await wait_for(officer, "report.routed")
            assert note["report_id"] == report["id"]
            assert "Pothole" in note["title"]
