"""Load tests: an automatic quiz ramp, and a mixed open-loop load through a local cluster.

    uv run python bench/load.py ramp [--steps 200,400,800,1200,1600,2000,2400,3200]
        [--configs townhall:1,townhall:2,node:1,node:2] [--time-limit 2400]
    uv run python bench/load.py mixed [--duration 300] [--save-rate 2] [--search-rate 4]
        [--edit-rate 8] [--sync-rate 6]
    uv run python bench/load.py plot

ramp: bench/quiz.py's games (50 players each, everyone answers at once) on fresh servers per
step, more players each step until the answer-ack p99 passes 1 s; townhall on 1 and 2
processes and the Node socket.io peer in the same run. mixed: bench/cluster.py (2 web + 1
worker + nginx) under a fixed-rate open-loop load of link saves, link searches, Yjs doc edits
and Sync API writes; latency per endpoint, errors, RSS of every process every 10 s. Each writes
a PNG to docs/img/ and its raw figures as JSON to var/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pycrdt
import websockets
from cluster import Cluster, cluster
from common import ROOT, pct, rss_kb
from links import fixture_site
from quiz import Plan, bench_node, bench_townhall
from tests.collab.test_sockets import YClient

from townhall.collab import protocol as yp

IMG = ROOT / "docs" / "img"
OUT = ROOT / "var" / "bench"
LIMIT_MS = 1000.0
PLAYERS_PER_GAME = 50
SEED = {"one process": 1_000, "cluster": 10_000}
QUERIES = ["react hooks", "postgresql index", "tutorial caching", "deep dive", "hooks indexes"]
MERGE = {"Content-Type": "application/merge-patch+json"}


def raise_fd_limit() -> None:
    """Thousands of client sockets live in this process: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- ramp ----------------------------------------------------------------------------------


async def ramp_step(system: str, procs: int, players: int, rounds: int) -> dict[str, Any]:
    """One step on fresh servers; a failed step (timeout, refused join) is reported as such."""
    games = max(1, math.ceil(players / PLAYERS_PER_GAME))
    plan = Plan(games=games, players=players // games, workers=procs, rounds=rounds)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    row: dict[str, Any] = {"system": system, "procs": procs, "players": games * plan.players}
    try:
        if system == "townhall":
            with tempfile.TemporaryDirectory() as tmp:
                result = await bench_townhall(plan, Path(tmp))
        else:
            peer = await bench_node(plan)
            if peer is None:
                raise RuntimeError("node/npm missing")
            result = peer
        row.update(result)
        row["failed"] = None
    except Exception as exc:  # an overloaded step times out: that is its result
        row.update(ack_p99=float("inf"), failed=f"{type(exc).__name__}: {exc}"[:200])
    row["seconds"] = time.perf_counter() - started
    row["load_before"] = load_before
    row["load_after"] = os.getloadavg()[0]
    return row


async def run_ramp(args: argparse.Namespace) -> None:
    raise_fd_limit()
    steps = [int(s) for s in args.steps.split(",") if int(s) <= args.max]
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    deadline = time.monotonic() + args.time_limit
    rows: list[dict[str, Any]] = []
    held: dict[str, dict[str, Any]] = {}
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores")
    for system, procs in configs:
        label = f"{system} x{procs}"
        best, worst = 0, 0
        verdict = f"held every step up to {steps[-1]}"
        queue = list(steps)
        refined = 0
        while queue:
            players = queue.pop(0)
            if time.monotonic() > deadline:
                verdict = f"time limit reached before {players}"
                break
            row = await ramp_step(system, procs, players, args.rounds)
            row["label"] = label
            rows.append(row)
            print(
                f"{label}: {row['players']} players, ack p50 {row.get('ack_p50', float('nan')):.0f}"
                f" ms, p99 {row['ack_p99']:.0f} ms, winners {row.get('first_correct_winners')}/"
                f"{row.get('expected_winners')}, load {row['load_before']:.1f}->"
                f"{row['load_after']:.1f}, {row['seconds']:.0f} s"
                + (f", FAILED {row['failed']}" if row["failed"] else ""),
                flush=True,
            )
            if row["failed"] or row["ack_p99"] > LIMIT_MS:
                worst = row["players"]
                queue = []
            else:
                best = max(best, row["players"])
            # Coarse steps overshoot: bisect between the last held and the first failed step.
            middle = (best + worst) // 2 // PLAYERS_PER_GAME * PLAYERS_PER_GAME
            if worst and not queue and refined < args.refine and best < middle < worst:
                queue, refined = [middle], refined + 1
        if worst:
            verdict = f"p99 > 1 s at {worst}"
        held[label] = {"held": best, "per_process": best / procs, "verdict": verdict}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load-ramp.json").write_text(json.dumps({"rows": rows, "held": held}, indent=1))
    print("\n| players | " + " | ".join(held) + " |")
    print("|---" * (len(held) + 1) + "|")
    for players in sorted({r["players"] for r in rows}):
        cells = []
        for label in held:
            match = [r for r in rows if r["label"] == label and r["players"] == players]
            cells.append(
                "-"
                if not match
                else ("failed" if match[0]["failed"] else f"{match[0]['ack_p99']:.0f}")
            )
        print(f"| {players:,} | " + " | ".join(cells) + " |")
    print("\nplayers held with ack p99 <= 1 s:")
    for label, h in held.items():
        print(f"  {label}: {h['held']:,} ({h['per_process']:,.0f} per process; {h['verdict']})")
    for label, h in held.items():
        if label.startswith("townhall"):
            seed = SEED["one process" if label.endswith("x1") else "cluster"]
            print(f"  {label} / seed's {seed:,}: {h['held'] / seed:.2f}")
    plot_ramp(rows, args.plot)


def plot_ramp(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label in dict.fromkeys(r["label"] for r in rows):
        points = sorted((r["players"], r["ack_p99"]) for r in rows if r["label"] == label)
        done = [(p, v) for p, v in points if math.isfinite(v)]
        (line,) = ax.plot([p for p, _ in done], [v for _, v in done], marker="o", label=label)
        for p, v in points:
            if not math.isfinite(v):
                ax.axvline(p, color=line.get_color(), linestyle=":", alpha=0.6)
    ax.axhline(LIMIT_MS, color="red", linestyle="--", linewidth=1, label="1 s")
    ax.set_xlabel("players (50 per game, all answering at once)")
    ax.set_ylabel("answer ack p99 (ms)")
    ax.set_yscale("log")
    ax.set_title("Quiz ramp: answer-ack p99 vs players (2 shared cores)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


# -- mixed ---------------------------------------------------------------------------------


@dataclass
class Record:
    """What the open-loop load measured: one row per request, RSS samples, errors."""

    requests: list[tuple[str, float, float, bool]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    rss: list[tuple[float, dict[str, int]]] = field(default_factory=list)


class Editor:
    """A Yjs page edited on one WebSocket and watched on another (nginx spreads the two)."""

    def __init__(self, page: str, editor: YClient, watcher: YClient) -> None:
        self.page, self.editor, self.watcher = page, editor, watcher
        self.pending: dict[str, asyncio.Future[float]] = {}
        self.count = 0
        self.tasks = [
            asyncio.create_task(self._pump(editor, check=False)),
            asyncio.create_task(self._pump(watcher, check=True)),
        ]

    async def _pump(self, client: YClient, *, check: bool) -> None:
        async for frame in client.ws:
            await client.handle(frame)
            if check and self.pending:
                text = str(client.doc.get("default", type=pycrdt.XmlFragment))
                for marker in [m for m in self.pending if m in text]:
                    future = self.pending.pop(marker)
                    if not future.done():
                        future.set_result(time.perf_counter())

    async def edit(self) -> None:
        """Append a marker on the editor; done when the watcher's copy shows it."""
        self.count += 1
        marker = f"[{self.count}]"
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.pending[marker] = future
        doc = self.editor.doc
        before = doc.get_state()
        body = doc.get("default", type=pycrdt.XmlFragment)
        if len(body.children) == 0:
            body.children.append(pycrdt.XmlText())
        text = body.children[0]
        text.insert(len(text), marker)
        await self.editor.ws.send(yp.sync_update(doc.get_update(before)))
        try:
            await asyncio.wait_for(future, 15)
        finally:
            self.pending.pop(marker, None)

    async def close(self) -> None:
        for client in (self.editor, self.watcher):
            with contextlib.suppress(Exception):
                await client.ws.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise RuntimeError(f"{response.status_code} {response.text[:160]}")
    return response


async def open_editors(c: Cluster, http: httpx.AsyncClient, token: str, pages: int) -> list[Editor]:
    workspace = check(await http.post("/api/v1/doc/workspaces", json={"name": "Load"}), 201)
    ws_id = workspace.json()["id"]
    editors = []
    base = c.url.replace("http://", "ws://")
    for i in range(pages):
        page = check(
            await http.post(f"/api/v1/doc/workspaces/{ws_id}/pages", json={"title": f"P{i}"}), 201
        )
        doc_id = uuid.UUID(page.json()["id"]).hex
        url = f"{base}/collab/ws/doc/{doc_id}?token={token}"
        clients = [YClient(await websockets.connect(url)) for _ in range(2)]
        for client in clients:
            await client.handshake()
        editors.append(Editor(doc_id, *clients))
    return editors


class SyncDocs:
    """Sync API documents: a pool written with If-Match (one writer each at a time), one hot."""

    def __init__(self, http: httpx.AsyncClient, pool: int) -> None:
        self.http = http
        self.pool = pool
        self.free: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.n = 0

    async def setup(self) -> None:
        check(
            await self.http.post("/api/v1/sync/collections", json={"name": "L", "slug": "load"}),
            201,
        )
        for i in range(self.pool):
            made = check(
                await self.http.post(
                    "/api/v1/sync/collections/load/documents",
                    json={"id": f"d{i}", "data": {"n": 0, "title": "x" * 200}},
                ),
                201,
            )
            self.free.put_nowait((f"d{i}", made.headers["ETag"]))
        check(
            await self.http.post(
                "/api/v1/sync/collections/load/documents", json={"id": "hot", "data": {"n": 0}}
            ),
            201,
        )

    async def write(self) -> None:
        """Alternately: a conditional patch of a pooled document, an unconditional one of `hot`."""
        self.n += 1
        n = self.n
        if n % 2:
            doc, tag = await self.free.get()
            try:
                r = check(
                    await self.http.patch(
                        f"/api/v1/sync/collections/load/documents/{doc}",
                        json={"n": n},
                        headers={**MERGE, "If-Match": tag},
                    ),
                    200,
                )
                tag = r.headers["ETag"]
            finally:
                self.free.put_nowait((doc, tag))
        else:
            check(
                await self.http.patch(
                    "/api/v1/sync/collections/load/documents/hot", json={"n": n}, headers=MERGE
                ),
                200,
            )


async def open_loop(
    name: str,
    rate: float,
    t0: float,
    duration: float,
    fire: Any,
    record: Record,
    running: set[asyncio.Task[None]],
) -> None:
    """Start `fire()` every 1/rate s from t0, never waiting for one to finish (open loop)."""
    if rate <= 0:
        return

    async def measured(due: float) -> None:
        ok = True
        try:
            await fire()
        except Exception as exc:
            ok = False
            record.errors[name].append(f"{type(exc).__name__}: {exc}"[:200])
        # From the scheduled start, so a late start counts (no coordinated omission).
        record.requests.append((name, due - t0, (time.perf_counter() - due) * 1000, ok))

    i = 0
    while (due := t0 + i / rate) < t0 + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(measured(due))
        running.add(task)
        task.add_done_callback(running.discard)
        i += 1


async def sample_rss(c: Cluster, t0: float, record: Record, stop: asyncio.Event) -> None:
    """RSS of every townhall process every 10 s, and once more when the load stops."""
    while True:
        record.rss.append(
            (time.perf_counter() - t0, {p.name: rss_kb(p.popen.pid) for p in c.townhall})
        )
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 10)


async def link_statuses(database_url: str) -> dict[str, int]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM links GROUP BY status")
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}


async def run_mixed(args: argparse.Namespace) -> None:
    raise_fd_limit()
    record = Record()
    runner, site = await fixture_site()
    extra = {"TOWNHALL_ACCESS_TOKEN_MINUTES": str(max(15, int(args.duration / 60) + 30))}
    try:
        async with cluster(web=args.web, workers=args.workers, extra_env=extra) as c:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            async with httpx.AsyncClient(base_url=c.url, timeout=30, limits=limits) as http:
                signed = check(
                    await http.post(
                        "/api/v1/auth/signup",
                        json={
                            "email": "load@example.com",
                            "password": "password123",
                            "display_name": "Load",
                        },
                    ),
                    201,
                )
                token = signed.json()["access_token"]
                http.headers["Authorization"] = f"Bearer {token}"
                for n in range(args.seed_links):  # something to search from the start
                    body = {"url": f"{site}/a/seed-{n}", "source": "load-seed"}
                    check(await http.post("/api/v1/links", json=body), 200, 201)
                sync = SyncDocs(http, pool=20)
                await sync.setup()
                editors = await open_editors(c, http, token, args.pages)
                saves = iter(range(10**9))
                rng = random.Random(3)
                edit_turn = iter(range(10**9))

                async def save() -> None:
                    body = {"url": f"{site}/a/load-{next(saves)}", "source": "load"}
                    check(await http.post("/api/v1/links", json=body), 200, 201)

                async def search() -> None:
                    params = {"q": rng.choice(QUERIES)}
                    check(await http.get("/api/v1/search", params=params), 200)

                async def edit() -> None:
                    await editors[next(edit_turn) % len(editors)].edit()

                print(
                    f"cluster {c.url}: {args.web} web + {args.workers} worker; load for "
                    f"{args.duration:.0f} s; load average {os.getloadavg()}",
                    flush=True,
                )
                running: set[asyncio.Task[None]] = set()
                stop = asyncio.Event()
                t0 = time.perf_counter()
                sampler = asyncio.create_task(sample_rss(c, t0, record, stop))
                loads = [
                    ("link save", args.save_rate, save),
                    ("link search", args.search_rate, search),
                    ("doc edit", args.edit_rate, edit),
                    ("sync write", args.sync_rate, sync.write),
                ]
                await asyncio.gather(
                    *(
                        open_loop(name, rate, t0, args.duration, fire, record, running)
                        for name, rate, fire in loads
                    )
                )
                if running:
                    await asyncio.wait(list(running), timeout=60)
                elapsed = time.perf_counter() - t0
                stop.set()
                await sampler
                load_end = os.getloadavg()
                for editor in editors:
                    await editor.close()
                statuses = await link_statuses(c.env["TOWNHALL_DATABASE_URL"])
    finally:
        await runner.cleanup()
    report_mixed(args, record, elapsed, load_end, statuses)


def report_mixed(
    args: argparse.Namespace,
    record: Record,
    elapsed: float,
    load_end: tuple[float, float, float],
    statuses: dict[str, int],
) -> None:
    by: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for name, t, latency, ok in record.requests:
        by[name].append((t, latency, ok))
    print(f"\n{elapsed:.0f} s, load average at the end {load_end}")
    print("| endpoint | target /s | done /s | requests | p50 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    rates = {
        "link save": args.save_rate,
        "link search": args.search_rate,
        "doc edit": args.edit_rate,
        "sync write": args.sync_rate,
    }
    summary = {}
    for name, rows in by.items():
        ms = [m for _, m, ok in rows if ok]
        errors = sum(not ok for _, _, ok in rows)
        summary[name] = {
            "n": len(rows),
            "p50": pct(ms, 0.5),
            "p99": pct(ms, 0.99),
            "errors": errors,
        }
        print(
            f"| {name} | {rates[name]:g} | {len(ms) / args.duration:.2f} | {len(rows)} | "
            f"{pct(ms, 0.5):.1f} | {pct(ms, 0.99):.1f} | {max(ms, default=float('nan')):.1f} | "
            f"{errors} |"
        )
    for name, messages in record.errors.items():
        print(f"errors of {name}: {len(messages)}; first: {messages[:3]}")
    print(f"links by status at the end: {statuses}")
    print("\n| process | RSS first minute MB | RSS last minute MB | growth MB |")
    print("|---|---|---|---|")
    memory = {}
    for proc in record.rss[0][1] if record.rss else {}:
        first = [s[proc] for t, s in record.rss if t < 60]
        last = [s[proc] for t, s in record.rss if t >= elapsed - 60]
        a, b = sum(first) / len(first) / 1024, sum(last) / len(last) / 1024
        memory[proc] = {"first_mb": a, "last_mb": b}
        print(f"| {proc} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load-mixed.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "memory": memory,
                "rss": record.rss,
                "requests": record.requests,
                "errors": record.errors,
                "links": statuses,
            }
        )
    )
    plot_mixed(record, args.plot)


def plot_mixed(record: Record, path: Path, bucket: float = 10.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, mem) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    names = list(dict.fromkeys(name for name, *_ in record.requests))
    for name in names:
        buckets: dict[int, list[float]] = defaultdict(list)
        for n, t, ms, ok in record.requests:
            if n == name and ok:
                buckets[int(t // bucket)].append(ms)
        xs = sorted(buckets)
        (line,) = lat.plot(
            [(x + 0.5) * bucket for x in xs],
            [pct(buckets[x], 0.99) for x in xs],
            label=f"{name} p99",
        )
        lat.plot(
            [(x + 0.5) * bucket for x in xs],
            [pct(buckets[x], 0.5) for x in xs],
            color=line.get_color(),
            linestyle=":",
            label=f"{name} p50",
        )
    lat.set_ylabel(f"latency per {bucket:.0f} s (ms)")
    lat.set_yscale("log")
    lat.grid(True, alpha=0.3)
    lat.legend(fontsize=7, ncol=2)
    lat.set_title("Mixed open-loop load through nginx (2 web + 1 worker, 2 shared cores)")
    for proc in record.rss[0][1] if record.rss else {}:
        mem.plot([t for t, _ in record.rss], [s[proc] / 1024 for _, s in record.rss], label=proc)
    mem.set_ylabel("RSS (MB)")
    mem.set_xlabel("seconds since the load started")
    mem.grid(True, alpha=0.3)
    mem.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ramp = sub.add_parser("ramp", help="quiz players until answer-ack p99 > 1 s")
    ramp.add_argument("--steps", default="200,400,800,1200,1600,2000,2400,3200")
    ramp.add_argument("--max", type=int, default=3200, help="largest step")
    ramp.add_argument("--configs", default="townhall:1,townhall:2,node:1,node:2")
    ramp.add_argument("--rounds", type=int, default=2)
    ramp.add_argument("--refine", type=int, default=2, help="bisection steps after a failure")
    ramp.add_argument("--time-limit", type=float, default=2400, help="seconds for all steps")
    ramp.add_argument("--plot", type=Path, default=IMG / "load-ramp.png")
    mixed = sub.add_parser("mixed", help="fixed-rate mixed load through bench/cluster.py")
    mixed.add_argument("--duration", type=float, default=300)
    mixed.add_argument("--save-rate", type=float, default=2, help="link saves per second")
    mixed.add_argument("--search-rate", type=float, default=4, help="link searches per second")
    mixed.add_argument("--edit-rate", type=float, default=8, help="Yjs doc edits per second")
    mixed.add_argument("--sync-rate", type=float, default=6, help="Sync API writes per second")
    mixed.add_argument("--pages", type=int, default=10, help="doc pages edited")
    mixed.add_argument("--seed-links", type=int, default=20)
    mixed.add_argument("--web", type=int, default=2)
    mixed.add_argument("--workers", type=int, default=1)
    mixed.add_argument("--plot", type=Path, default=IMG / "load-mixed.png")
    plot = sub.add_parser("plot", help="redraw both PNGs from the JSON of the last runs")
    plot.add_argument("--ramp", type=Path, default=IMG / "load-ramp.png")
    plot.add_argument("--mixed", type=Path, default=IMG / "load-mixed.png")
    args = parser.parse_args()
    if args.command == "plot":
        replot(args.ramp, args.mixed)
        return
    asyncio.run(run_ramp(args) if args.command == "ramp" else run_mixed(args))


def replot(ramp: Path, mixed: Path) -> None:
    """Both figures again from var/bench/load-*.json (a run's raw output)."""
    if (OUT / "load-ramp.json").exists():
        plot_ramp(json.loads((OUT / "load-ramp.json").read_text())["rows"], ramp)
    if (OUT / "load-mixed.json").exists():
        saved = json.loads((OUT / "load-mixed.json").read_text())
        record = Record(
            requests=[tuple(r) for r in saved["requests"]],
            rss=[(t, s) for t, s in saved["rss"]],
        )
        plot_mixed(record, mixed)


if __name__ == "__main__":
    main()
