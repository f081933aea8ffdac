"""The `collab.flush` job's schedule comes from the collab_flush_cron setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from townhall.core.config import Settings

# Imports the task module in a fresh interpreter (settings are read once, at import) and asks
# the scheduler's own due_ticks which minutes of one hour fire.
PROBE = """
import json
from datetime import UTC, datetime
import townhall.collab.tasks
from townhall.core.jobs.registry import get_task
from townhall.core.jobs.runtime import due_ticks
spec = get_task("collab.flush")
minutes = [m for m in range(60) if due_ticks(spec, datetime(2026, 5, 1, 12, m, 30, tzinfo=UTC))]
print(json.dumps({"cron": spec.cron, "minutes": minutes}))
"""


def _probe(tmp_path: Path, cron: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNHALL_")}
    if cron is not None:
        env["TOWNHALL_COLLAB_FLUSH_CRON"] = cron
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_flushes_every_minute(tmp_path: Path) -> None:
    assert Settings(_env_file=None).collab_flush_cron == "* * * * *"
    result = _probe(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["minutes"] == list(range(60))


def test_collab_flush_cron_sets_the_schedule(tmp_path: Path) -> None:
    result = _probe(tmp_path, "*/15 * * * *")
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe == {"cron": "*/15 * * * *", "minutes": [0, 15, 30, 45]}


def test_an_invalid_flush_cron_fails_at_startup(tmp_path: Path) -> None:
    result = _probe(tmp_path, "every minute")
    assert result.returncode != 0
    assert "needs five fields" in result.stderr
