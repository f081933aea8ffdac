"""A local townhall cluster: N `townhall serve` + M `townhall worker` behind nginx on one port.

    uv run python bench/cluster.py [--web 2] [--workers 1]

Prints nginx's URL and runs until Ctrl-C. The processes share a scratch PostgreSQL database
(`townhall_bench_cluster_<random>`, migrated once before they start, dropped on exit), the
machine's Redis and RabbitMQ, and random key, channel and queue prefixes so runs never collide.
Other bench scripts use it as `async with cluster(web=2, workers=1) as c: ... c.url ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from common import BROKER_URL, REDIS_URL, ROOT, delete_keys, free_port, scratch_database, wait_ready

# The same rendering of deploy/nginx.conf the deployment test runs in front of its processes.
from tests.deploy.test_nginx import NGINX, nginx_test, render_nginx_conf

CLI = [sys.executable, "-m", "townhall.cli"]


@dataclass
class Process:
    """One child of the cluster: what it is, its Popen and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class Cluster:
    """A running cluster: nginx's URL, the web and worker processes, their shared settings."""

    url: str
    env: dict[str, str]
    web: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)

    @property
    def townhall(self) -> list[Process]:
        """Every `townhall serve` and `townhall worker` process (for memory sampling)."""
        return [*self.web, *self.workers]


def cluster_env(directory: Path, database_url: str, base_url: str) -> dict[str, str]:
    """The settings every process of one cluster shares; prefixes unique to this run."""
    run = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNHALL_")}
    env.update(
        TOWNHALL_ENV="test",
        TOWNHALL_VAR_DIR=str(directory / "var"),
        TOWNHALL_BASE_URL=base_url,
        TOWNHALL_SECRET_KEY=f"bench-cluster-{run}-secret-with-enough-length-for-hs256",
        TOWNHALL_LOG_LEVEL="WARNING",
        TOWNHALL_DATABASE_URL=database_url,
        TOWNHALL_REDIS_URL=REDIS_URL,
        TOWNHALL_BROKER_URL=BROKER_URL,
        TOWNHALL_WORKER_IN_PROCESS="false",
        TOWNHALL_JOB_QUEUE_PREFIX=f"bench-{run}.",
        TOWNHALL_PUBSUB_CHANNEL_PREFIX=f"bench-{run}:",
        TOWNHALL_COLLAB_KEY_PREFIX=f"bench-{run}:collab:",
        TOWNHALL_QUIZ_KEY_PREFIX=f"bench-{run}:quiz:",
        # The load comes from one IP; the per-IP counters live in the shared Redis.
        TOWNHALL_SIGNUP_PER_IP_PER_HOUR="100000",
        TOWNHALL_LOGIN_ATTEMPTS_PER_IP="100000",
        # Links saved by bench/load.py point at a fixture site on loopback.
        TOWNHALL_OUTBOUND_ALLOWLIST=json.dumps(["127.0.0.1/32"]),
    )
    return env


def spawn(name: str, args: list[str], env: dict[str, str], directory: Path) -> Process:
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def stop(processes: list[Process], sig: int, timeout: float = 30) -> None:
    """Signal every process, then wait for each (killed if it overstays)."""
    for proc in processes:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(sig)
    for proc in processes:
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


async def clean_redis_and_broker(env: dict[str, str]) -> None:
    """Delete this run's Redis keys and RabbitMQ queues (the database is dropped separately)."""
    from tests.fixtures.jobs import cleanup_broker

    from townhall.core.config import Settings
    from townhall.modules.registry import load_apps

    await delete_keys(env["TOWNHALL_COLLAB_KEY_PREFIX"], env["TOWNHALL_QUIZ_KEY_PREFIX"])
    # cleanup_broker deletes the queues of the registered tasks: register them first.
    for module in ["townhall.core.jobs.service", *(m for a in load_apps() for m in a.task_modules)]:
        importlib.import_module(module)
    settings = Settings(
        _env_file=None,
        broker_url=env["TOWNHALL_BROKER_URL"],
        job_queue_prefix=env["TOWNHALL_JOB_QUEUE_PREFIX"],
    )
    await cleanup_broker(settings)


@contextlib.asynccontextmanager
async def cluster(
    web: int = 2, workers: int = 1, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Cluster]:
    """Start the cluster, yield it once nginx answers /readyz; stop everything on exit."""
    if not NGINX:
        raise SystemExit("nginx is missing (apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="townhall-cluster-") as tmp:
        directory = Path(tmp)
        listen = free_port()
        url = f"http://127.0.0.1:{listen}"
        async with scratch_database("cluster") as database_url:
            env = {**cluster_env(directory, database_url, url), **(extra_env or {})}
            migrate = await asyncio.to_thread(
                subprocess.run, [*CLI, "migrate"], env=env, cwd=ROOT, capture_output=True
            )
            if migrate.returncode:
                raise SystemExit(f"migrate failed:\n{migrate.stdout.decode()[-2000:]}")
            running = Cluster(url=url, env=env)
            nginx: Process | None = None
            try:
                ports = [free_port() for _ in range(web)]
                for i, port in enumerate(ports, 1):
                    args = [*CLI, "serve", "--port", str(port), "--no-migrate"]
                    running.web.append(spawn(f"web{i}", args, env, directory))
                    running.web_urls.append(f"http://127.0.0.1:{port}")
                for i in range(1, workers + 1):
                    args = [*CLI, "worker", "--no-migrate"]
                    # One worker runs the cron schedules (collab flush, sweepers); more would too.
                    running.workers.append(spawn(f"worker{i}", args, env, directory))
                for proc, base in zip(running.web, running.web_urls, strict=True):
                    await wait_ready(base, proc.popen)
                conf = render_nginx_conf(directory, listen, ports)
                checked = nginx_test(conf)
                if checked.returncode:
                    raise SystemExit(f"nginx -t failed: {checked.stderr}")
                nginx = spawn(
                    "nginx", [NGINX, "-c", str(conf), "-g", "daemon off;"], env, directory
                )
                await wait_ready(url, nginx.popen)
                for proc in running.workers:
                    if proc.popen.poll() is not None:
                        raise SystemExit(f"{proc.name} exited:\n{proc.tail()}")
                yield running
            finally:
                if nginx is not None:
                    stop([nginx], signal.SIGTERM, 15)
                stop(running.web, signal.SIGINT)
                stop(running.workers, signal.SIGTERM)
                for proc in running.townhall:
                    if proc.popen.returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
                        print(f"{proc.name} exited {proc.popen.returncode}:\n{proc.tail()}")
                if os.environ.get("TOWNHALL_BENCH_KEEP_LOGS"):
                    keep = Path(os.environ["TOWNHALL_BENCH_KEEP_LOGS"])
                    keep.mkdir(parents=True, exist_ok=True)
                    for log in directory.glob("*.log"):
                        shutil.copy(log, keep / log.name)
                try:
                    await clean_redis_and_broker(env)
                except Exception as exc:  # leftovers are named, the database still gets dropped
                    print(f"cleanup of Redis keys / RabbitMQ queues failed: {exc!r}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--web", type=int, default=2, help="townhall serve processes")
    parser.add_argument("--workers", type=int, default=1, help="townhall worker processes")
    args = parser.parse_args()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    async with cluster(args.web, args.workers) as running:
        pids = ", ".join(f"{p.name} {p.popen.pid}" for p in running.townhall)
        print(f"{running.url}  ({pids}; database {running.env['TOWNHALL_DATABASE_URL']})")
        print("Ctrl-C stops the cluster and drops its database", flush=True)
        await stopping.wait()
    print("stopped")


if __name__ == "__main__":
    asyncio.run(main())
