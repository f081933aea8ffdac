"""The deploy/ files name only settings, commands and options that townhall really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from townhall.cli import app
from townhall.core.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SETTING_NAMES = {f"TOWNHALL_{name.upper()}" for name in Settings.model_fields}


def deploy_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in DEPLOY.rglob("*") if p.is_file()}


def test_every_townhall_variable_is_a_setting() -> None:
    used = {
        (name, variable)
        for name, text in deploy_texts().items()
        for variable in re.findall(r"\bTOWNHALL_[A-Z0-9_]+", text)
    }
    assert used, "deploy/ names no settings at all"
    assert {(n, v) for n, v in used if v not in SETTING_NAMES} == set()


def test_the_example_environment_is_a_valid_production_configuration() -> None:
    values = dict(
        line.split("=", 1)
        for line in (DEPLOY / "townhall.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    fields: dict[str, Any] = {k.removeprefix("TOWNHALL_").lower(): v for k, v in values.items()}
    settings = Settings(_env_file=None, **fields)
    settings.check_production()  # raises on an embedded default that loses data


def townhall_commands() -> list[list[str]]:
    """Every `townhall ...` command line in the compose file and the systemd units."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    commands = [
        service["command"]
        for service in compose["services"].values()
        if isinstance(service.get("command"), list) and service["command"][0] == "townhall"
    ]
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.removeprefix("ExecStart="))
                commands.append(["townhall", *words[1:]])
    return commands


def test_every_command_line_parses() -> None:
    commands = townhall_commands()
    assert {c[1] for c in commands} >= {"serve", "worker", "migrate"}
    runner = CliRunner()
    for command in commands:
        # --help after the options: typer parses (and rejects unknown) options, then prints help.
        result = runner.invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_compose_runs_the_production_topology() -> None:
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    assert {"nginx", "web", "worker", "postgres", "redis", "rabbitmq", "minio"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]  # the write-back buffer needs AOF
    assert services["web"]["deploy"]["replicas"] >= 2
    schedulers = [
        name
        for name, service in services.items()
        if service.get("command", [None])[:2] == ["townhall", "worker"]
        and "--no-schedules" not in service["command"]
    ]
    assert schedulers == ["scheduler"]  # cron jobs run in exactly one process
