"""Every case of the authorization matrix, run against one live world."""

from __future__ import annotations

import pytest

from tests.authz import probes_live  # noqa: F401  (registers the live probes)
from tests.authz.matrix import ALL, Case
from tests.authz.probes_http import PROBES
from tests.authz.world import World


def param(case: Case) -> object:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, marks=marks, id=f"{case.id}:{case.transport}")


def test_every_case_has_a_probe_and_every_probe_a_case() -> None:
    used = {(c.transport, c.resource, c.action) for c in ALL}
    assert used - PROBES.keys() == set(), "cases without a probe"
    assert PROBES.keys() - used == set(), "probes no case runs"


@pytest.mark.parametrize("case", [param(case) for case in ALL])
async def test_case(world: World, case: Case) -> None:
    probe = PROBES[(case.transport, case.resource, case.action)]
    assert await probe(world, case.role) == case.expected
