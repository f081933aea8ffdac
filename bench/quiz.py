"""Live quiz games: answer-ack latency, results broadcast delay and memory per connection.

Side by side in one run: townhall (N `townhall serve` processes + Redis, Socket.IO over
WebSocket) and a minimal Node socket.io server (npm `socket.io` + `@socket.io/redis-adapter`,
N processes) doing the same pattern: join a room with an ack, a room broadcast per question, one
Redis round trip per answer (SET NX first-correct + ZINCRBY) acked, a room broadcast of results.
Clients are raw Socket.IO-over-WebSocket clients in this process (they share the 2 cores).

    uv run python bench/quiz.py [--games 20] [--players 50] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import REDIS_URL, delete_keys, free_port, pct, rss_kb, wait_ready
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "var" / "bench" / "quiz-peer"
NS = "/quiz"

PEER_JS = r"""
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const [port, redisUrl, prefix] = process.argv.slice(2);
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const io = new Server(createServer().listen(Number(port)), {
  transports: ["websocket"],
  adapter: createAdapter(pub, sub, { key: `${prefix}socket.io` }),
});
const quiz = io.of("/quiz");
quiz.on("connection", (socket) => {
  const room = () => `game:${socket.data.pin}`;
  socket.on("join", (data, ack) => {
    socket.data.pin = data.pin;
    socket.data.nick = data.nickname;
    socket.join(room());
    ack({ ok: true });
  });
  socket.on("host", (data, ack) => {
    socket.data.pin = data.pin;
    socket.join(room());
    ack({ ok: true });
  });
  socket.on("next", (data, ack) => {
    const q = { index: data.index, text: "Pick B", options: ["A", "B", "C", "D"] };
    quiz.to(room()).emit("question", { ...q, remaining_ms: 20000 });
    ack({ ok: true });
  });
  socket.on("answer", async (data, ack) => {
    const key = `${prefix}g:${socket.data.pin}:${data.index}`;
    const nick = socket.data.nick;
    const first = await pub.set(`${key}:first`, nick, { NX: true, PX: 600000 });
    const score = await pub.zIncrBy(`${key}:lb`, 1000, nick);
    ack({ ok: true, first: first === "OK", score });
  });
  socket.on("skip", async (data, ack) => {
    const key = `${prefix}g:${socket.data.pin}:${data.index}:lb`;
    const top = await pub.zRangeWithScores(key, 0, 4, { REV: true });
    quiz.to(room()).emit("question_results", { index: data.index, top });
    ack({ ok: true });
  });
});
console.log("ready");
"""


@dataclass(frozen=True)
class Plan:
    """One measured run: `games` games of `players` players on `workers` server processes."""

    games: int
    players: int
    workers: int
    rounds: int


class Player:
    """A raw Socket.IO client: one WebSocket, acks by id, events timestamped on arrival."""

    def __init__(self) -> None:
        self.ws: Any = None
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.seen: dict[str, list[float]] = defaultdict(list)
        self.next = 0
        self.ready = asyncio.Event()

    async def connect(self, base: str, auth: dict[str, str] | None = None) -> Player:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await connect(url, open_timeout=60, max_size=2**24)
        asyncio.get_running_loop().create_task(self._read())
        await self.ws.send(f"40{NS}," + (json.dumps(auth) if auth else ""))
        await asyncio.wait_for(self.ready.wait(), 60)
        return self

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                if frame == "2":
                    await self.ws.send("3")
                elif frame.startswith("40" + NS):
                    self.ready.set()
                elif frame.startswith("42" + NS + ","):
                    event = frame[len(NS) + 5 : frame.index('"', len(NS) + 5)]
                    self.seen[event].append(time.perf_counter())
                elif frame.startswith("43" + NS + ","):
                    body = frame[len(NS) + 3 :]
                    split = body.index("[")
                    future = self.acks.pop(int(body[:split]), None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(body[split:])[0])

    async def call(self, event: str, data: Any) -> Any:
        self.next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[self.next] = future
        await self.ws.send(f"42{NS},{self.next}" + json.dumps([event, data]))
        return await asyncio.wait_for(future, 120)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


async def run_games(
    name: str, urls: list[str], games: list[tuple[Player, str]], players: int, rounds: int
) -> dict[str, Any]:
    """Join every player, then `rounds` questions per game: broadcast, answers, results."""
    gate = asyncio.Semaphore(100)
    crowd: dict[str, list[Player]] = {}

    async def join(pin: str, i: int) -> Player:
        async with gate:
            p = await Player().connect(urls[i % len(urls)])
            ack = await p.call("join", {"pin": pin, "nickname": f"p{i}"})
            assert ack.get("ok"), ack
            return p

    started = time.perf_counter()
    for _, pin in games:
        crowd[pin] = list(await asyncio.gather(*[join(pin, i) for i in range(players)]))
    join_s = time.perf_counter() - started
    ack_ms: list[float] = []
    question_ms: list[float] = []
    results_ms: list[float] = []
    firsts = 0

    sent: dict[str, float] = {}

    async def answer(p: Player, pin: str, index: int) -> None:
        nonlocal firsts
        t0 = time.perf_counter()
        sent[pin] = max(sent.get(pin, 0.0), t0)
        ack = await p.call("answer", {"index": index, "answer": 1})
        ack_ms.append((time.perf_counter() - t0) * 1000)
        firsts += bool(ack.get("first"))

    async def one_game(host: Player, pin: str) -> None:
        for index in range(rounds):
            members = crowd[pin]
            t0 = time.perf_counter()
            await host.call("next", {"index": index})
            while any(len(p.seen["question"]) <= index for p in members):
                await asyncio.sleep(0.005)
            question_ms.extend((p.seen["question"][index] - t0) * 1000 for p in members)
            await asyncio.gather(*[answer(p, pin, index) for p in members])
            # townhall closes when the last player answers; the peer closes on the host's skip.
            t1 = sent[pin] if name == "townhall" else time.perf_counter()
            if name != "townhall":
                await host.call("skip", {"index": index})
            while any(len(p.seen["question_results"]) <= index for p in members):
                await asyncio.sleep(0.005)
            results_ms.extend((p.seen["question_results"][index] - t1) * 1000 for p in members)

    await asyncio.gather(*[one_game(h, pin) for h, pin in games])
    for members in crowd.values():
        await asyncio.gather(*[p.close() for p in members])
    return {
        "name": name,
        "connections": len(games) * players,
        "join_s": join_s,
        "ack_p50": pct(ack_ms, 0.5),
        "ack_p99": pct(ack_ms, 0.99),
        "question_p99": pct(question_ms, 0.99),
        "results_p99": pct(results_ms, 0.99),
        "first_correct_winners": firsts,
        "expected_winners": len(games) * rounds,
    }


async def bench_townhall(plan: Plan, tmp: Path) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:6]}:"
    db = tmp / "bench.db"
    env = {
        **os.environ,
        "TOWNHALL_ENV": "test",
        "TOWNHALL_VAR_DIR": str(tmp / "var"),
        "TOWNHALL_SECRET_KEY": "bench-secret-key-with-enough-length-for-hs256",
        "TOWNHALL_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "TOWNHALL_REDIS_URL": REDIS_URL,
        "TOWNHALL_QUIZ_KEY_PREFIX": prefix,
        "TOWNHALL_SIGNUP_PER_IP_PER_HOUR": "100000",
        "TOWNHALL_LOG_LEVEL": "WARNING",
        "TOWNHALL_QUIZ_EVENTS_PER_SECOND": "1000",
    }
    subprocess.run(
        [sys.executable, "-m", "townhall.cli", "migrate"], env=env, check=True, capture_output=True
    )
    ports = [free_port() for _ in range(plan.workers)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "townhall.cli", "serve", "--port", str(p), "--no-migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            await wait_ready(url, proc, "/healthz")
        async with httpx.AsyncClient(base_url=urls[0]) as http:
            signed = await http.post(
                "/api/v1/auth/signup",
                json={"email": "b@example.com", "password": "password123", "display_name": "B"},
            )
            token = signed.json()["access_token"]
            question = {
                "type": "single",
                "text": "Pick B",
                "time_limit": 240,
                "options": [{"text": t, "correct": t == "B"} for t in "ABCD"],
            }
            quiz = await http.post(
                "/api/v1/quizzes",
                json={"title": "Bench", "questions": [question] * plan.rounds},
                headers={"Authorization": f"Bearer {token}"},
            )
            quiz_id = quiz.json()["id"]
        idle = sum(rss_kb(p.pid) for p in procs)
        games = []
        for g in range(plan.games):
            host = await Player().connect(urls[g % len(urls)], {"token": token})
            created = await host.call("host_create", {"quiz_id": quiz_id})
            games.append((host, created["pin"]))
        result = await run_measured(plan, "townhall", urls, games, procs, idle)
        for host, _ in games:
            await host.close()
        return result
    finally:
        stop_all(procs)
        await delete_keys(prefix)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each server's process group, then wait for it."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(15)


async def run_measured(
    plan: Plan,
    name: str,
    urls: list[str],
    games: list[tuple[Player, str]],
    procs: list[subprocess.Popen[bytes]],
    idle_kb: int,
) -> dict[str, Any]:
    peak = {"kb": idle_kb}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            peak["kb"] = max(peak["kb"], sum(rss_kb(p.pid) for p in procs))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    try:
        result = await run_games(name, urls, games, plan.players, plan.rounds)
    finally:
        stop.set()
        await sampler
    result["kb_per_connection"] = (peak["kb"] - idle_kb) / max(result["connections"], 1)
    result["idle_mb"] = idle_kb / 1024
    return result


async def bench_node(plan: Plan) -> dict[str, Any] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        print("node/npm missing: Node peer skipped")
        return None
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    (PEER_DIR / "server.mjs").write_text(PEER_JS)
    (PEER_DIR / "package.json").write_text(
        json.dumps({"name": "quiz-peer", "private": True, "type": "module"})
    )
    if not (PEER_DIR / "node_modules" / "@socket.io" / "redis-adapter").is_dir():
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "socket.io@4.8.1",
                "@socket.io/redis-adapter@8",
                "redis@4",
            ],
            cwd=PEER_DIR,
            check=True,
        )
    prefix = f"bench-node-{uuid.uuid4().hex[:6]}:"
    ports = [free_port() for _ in range(plan.workers)]
    procs = [
        subprocess.Popen(
            [node, "server.mjs", str(p), REDIS_URL, prefix],
            cwd=PEER_DIR,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            await wait_ready(url, proc, "/socket.io/?EIO=4&transport=polling")
        idle = sum(rss_kb(p.pid) for p in procs)
        games = []
        for g in range(plan.games):
            host = await Player().connect(urls[g % len(urls)])
            pin = f"{g:06d}"
            await host.call("host", {"pin": pin})
            games.append((host, pin))
        result = await run_measured(plan, "node socket.io", urls, games, procs, idle)
        for host, _ in games:
            await host.close()
        return result
    finally:
        stop_all(procs)
        await delete_keys(prefix)


def show(rows: list[dict[str, Any]]) -> None:
    cols = [
        ("connections", "{:.0f}"),
        ("join_s", "{:.1f}"),
        ("ack_p50", "{:.1f}"),
        ("ack_p99", "{:.1f}"),
        ("question_p99", "{:.1f}"),
        ("results_p99", "{:.1f}"),
        ("kb_per_connection", "{:.0f}"),
        ("first_correct_winners", "{:.0f}"),
        ("expected_winners", "{:.0f}"),
    ]
    print("| system | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for row in rows:
        print(f"| {row['name']} | " + " | ".join(f.format(row[c]) for c, f in cols) + " |")
    if len(rows) == 2:
        ours, peer = rows
        for key in ("ack_p99", "question_p99", "results_p99", "kb_per_connection"):
            print(f"{key}: townhall / node = {ours[key] / max(peer[key], 1e-9):.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--players", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = Plan(**vars(parser.parse_args()))
    print(
        f"{args.games} games x {args.players} players, {args.workers} workers, "
        f"{args.rounds} questions"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = [await bench_townhall(args, Path(tmp))]
    peer = await bench_node(args)
    if peer is not None:
        rows.append(peer)
    show(rows)


if __name__ == "__main__":
    asyncio.run(main())
