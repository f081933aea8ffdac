"""Schemathesis over every operation of the OpenAPI schema, as a user and as an admin.

A real `townhall serve` process on the embedded defaults answers; no response may be a 5xx or
break the schema it declares. `FUZZ_API_EXAMPLES` sets examples per operation (`make fuzz`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.fixtures.app import make_settings
from tests.fixtures.serve import TOWNHALL, serve_process, townhall_env
from townhall.main import create_app

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "3"))
PASSWORD = "fuzz-password-123"

# Calls that would end the fuzzing session, reconfigure the whole server or never end.
SELF_DEFEATING = [
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("PUT", "/api/v1/admin/settings/{key}"),
    ("DELETE", "/api/v1/admin/settings/{key}"),
    ("POST", "/api/v1/admin/settings/rotate"),
    ("DELETE", "/api/v1/reports/admin/staff"),
    ("GET", "/api/v1/sync/collections/{collection}/events"),  # an endless SSE stream
]


def _openapi() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        return create_app(make_settings(Path(directory))).openapi()


def _fuzzed(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in SELF_DEFEATING


SCHEMA = schemathesis.openapi.from_dict(_openapi()).exclude(_fuzzed)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A served townhall with a user and an admin; their bearer tokens by role."""
    directory = tmp_path_factory.mktemp("fuzz-api")
    env = townhall_env(directory)
    subprocess.run([*TOWNHALL, "migrate"], cwd=directory, env=env, check=True)
    admin = [*TOWNHALL, "createuser", "admin@fuzz.example", "--admin", "--password", PASSWORD]
    subprocess.run(admin, cwd=directory, env=env, check=True, capture_output=True)
    with serve_process(directory) as base:
        body = {"email": "user@fuzz.example", "password": PASSWORD, "display_name": "User"}
        assert httpx.post(f"{base}/api/v1/auth/signup", json=body).status_code == 201
        tokens = {"base": base}
        for role in ("user", "admin"):
            login = {"email": f"{role}@fuzz.example", "password": PASSWORD}
            response = httpx.post(f"{base}/api/v1/auth/login", json=login)
            assert response.status_code == 200, response.text
            tokens[role] = response.json()["access_token"]
        yield tokens


@pytest.fixture(params=["user", "admin"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_breaks_its_schema(
    case: Any, server: dict[str, str], role: str
) -> None:
    case.call_and_validate(
        base_url=server["base"],
        headers={"Authorization": f"Bearer {server[role]}"},
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
