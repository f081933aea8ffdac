"""The status workflow: which transitions are allowed (overridable in settings)."""

from __future__ import annotations

from townhall.core.config import Settings
from townhall.modules.report.models import ReportStatus as S

DEFAULT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.received: (S.assigned, S.in_progress, S.rejected, S.duplicate),
    S.assigned: (S.in_progress, S.resolved, S.rejected, S.duplicate, S.received),
    S.in_progress: (S.resolved, S.rejected, S.duplicate, S.assigned),
    S.resolved: (S.in_progress,),  # reopen
    S.rejected: (S.received,),
    S.duplicate: (S.received,),
}


def transitions(settings: Settings) -> dict[str, tuple[str, ...]]:
    if settings.report_transitions:
        return {k: tuple(v) for k, v in settings.report_transitions.items()}
    return {str(k): tuple(str(s) for s in v) for k, v in DEFAULT_TRANSITIONS.items()}


def allowed(settings: Settings, current: str, target: str) -> bool:
    return target in transitions(settings).get(current, ())
