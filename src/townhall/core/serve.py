"""Rolling reload of `townhall serve --workers N`: pid file, `townhall reload`, a clean drain.

uvicorn's supervisor already reloads on SIGHUP the way we need: it starts one new worker on
the shared socket, waits until it has finished startup, then stops one old worker gracefully
(in-flight requests finish, WebSockets get close code 1012), and so on for each worker. This
module finds that supervisor, signals it and watches the workers get replaced; its HTTP
protocol closes the idle connections of a stopping worker without racing a client's request.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PID_FILE_NAME = "townhall.pid"
# A new worker must finish startup within this or uvicorn abandons the reload (its default of
# 5 s is less than importing the app takes on a busy machine). It also bounds a health ping,
# so a hung worker is noticed this late.
WORKER_START_SECONDS = 60
# An old worker lets in-flight requests and streams run this long before cancelling them.
GRACEFUL_SHUTDOWN_SECONDS = 10
# A stopping worker still answers one request on an idle connection for this long.
IDLE_GRACE_SECONDS = 1.0
# One worker's replacement: start, drain, lifespan shutdown (closing pools, stopping jobs).
RELOAD_STEP_SECONDS = WORKER_START_SECONDS + GRACEFUL_SHUTDOWN_SECONDS + 20
PROC = Path("/proc")
# uvicorn starts workers with multiprocessing's spawn: this is in each worker's command line.
WORKER_MARK = b"spawn_main"


class DrainingHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose stopping worker answers a request already sent."""

    draining = False

    def shutdown(self) -> None:
        """Let a request in flight finish, and close an idle connection after a short grace."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        # uvicorn closes an idle connection at once. A request the client has just sent on it
        # (kept alive, or accepted just before the listener closed) would then get a reset;
        # in the grace it is answered, with `Connection: close`. Data cancels the timer.
        self.draining = True
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            IDLE_GRACE_SECONDS, self.timeout_keep_alive_handler
        )

    def on_headers_complete(self) -> None:
        """Start the request; one on a draining connection is its last."""
        super().on_headers_complete()
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False


class ReloadError(Exception):
    """A reload that could not be done; the message is one line for the operator."""


def _cmdline(pid: int) -> bytes | None:
    """The process's command line (Linux), or None when it cannot be read."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None


def _written_pid(path: Path) -> int | None:
    """The pid written in `path`, or None when there is no readable one."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(path: Path) -> int | None:
    """The pid written in `path` when that process is alive and is townhall, else None."""
    pid = _written_pid(path)
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:
        return pid  # alive, another user's: `reload` reports that it may not signal it
    except OSError:
        return None
    if PROC.is_dir() and b"townhall" not in (_cmdline(pid) or b""):
        return None  # a stale file whose pid now belongs to an unrelated process
    return pid


@contextmanager
def supervisor_pid_file(path: Path) -> Iterator[None]:
    """Hold `path` with this process's pid; refuse when a live server already holds it."""
    other = running_pid(path)
    if other is not None:
        raise ReloadError(
            f"another `townhall serve --workers` (pid {other}) holds {path}; stop it, or give "
            "this one its own --pid-file"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        # Only our own pid: a second server may have taken the file over after ours went stale.
        if _written_pid(path) == os.getpid():
            path.unlink(missing_ok=True)


def worker_pids(supervisor: int) -> set[int]:
    """The live uvicorn workers of `supervisor` (empty where /proc does not exist)."""
    found: set[int] = set()
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces and parentheses: split after its ')'.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended while we looked
        pid = int(stat.parent.name)
        ours = fields[0] != "Z" and int(fields[1]) == supervisor
        if ours and WORKER_MARK in (_cmdline(pid) or b""):
            found.add(pid)
    return found


def reload(path: Path, *, step_timeout: float, poll: float = 0.2) -> set[int]:
    """SIGHUP the supervisor in `path`; wait (0: not at all) until every worker is new."""
    # `step_timeout` bounds each old worker's retirement. uvicorn keeps the old workers
    # serving when a new one fails to start, and waits for an old one stuck in shutdown, so
    # a timeout means a stalled reload, not a server that is down.
    supervisor = running_pid(path)
    if supervisor is None:
        raise ReloadError(
            f"no running `townhall serve --workers N` found (pid file {path} is missing or "
            "stale); a single-worker serve cannot reload: restart it"
        )
    old = worker_pids(supervisor)
    try:
        os.kill(supervisor, signal.SIGHUP)
    except PermissionError as exc:
        raise ReloadError(f"not allowed to signal pid {supervisor}: run as its user") from exc
    if not old or step_timeout <= 0:
        return set()
    remaining = len(old)
    deadline = time.monotonic() + step_timeout
    while True:
        if running_pid(path) != supervisor:
            raise ReloadError(f"the server (pid {supervisor}) stopped during the reload")
        current = worker_pids(supervisor)
        left = len(old & current)
        if left == 0 and len(current) >= len(old):
            return current
        if left < remaining:  # one more worker replaced: the next one gets its own time
            remaining, deadline = left, time.monotonic() + step_timeout
        if time.monotonic() > deadline:
            raise ReloadError(_stalled(old, current, step_timeout))
        time.sleep(poll)


def _stalled(old: set[int], current: set[int], step_timeout: float) -> str:
    """Why a reload made no progress for `step_timeout` seconds, for the operator."""
    left = sorted(old & current)
    head = f"{len(left)} of {len(old)} workers not replaced after {step_timeout:g} s"
    if len(current) > len(old):
        # The replacement serves, but uvicorn waits without a bound for the old one to exit.
        return (
            f"{head}: a new worker serves but an old one ({', '.join(map(str, left))}) is stuck "
            "in shutdown; the supervisor waits for it, so `kill -9` it to let the reload go on"
        )
    return f"{head}; the old ones keep serving: the server log says why a new one did not start"
