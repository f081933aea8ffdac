"""report.analyze: image detection + text classification -> suggestion -> routing or triage."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from townhall.core.config import get_settings
from townhall.core.errors import AppError
from townhall.core.jobs import JobContext, task
from townhall.core.platform import Platform
from townhall.modules.report.classify import Analysis, offline_from_prompt
from townhall.modules.report.models import ReportPhoto
from townhall.modules.report.photos import BLUR_LABELS, public_copy
from townhall.modules.report.repository import ReportRepository
from townhall.modules.report.service import ReportService

log = structlog.get_logger(__name__)

_settings = get_settings()
MAX_PHOTOS_ANALYSED = 3
SYSTEM = (
    "You triage civic issue reports for a city. Answer JSON: category (one of the codes given, "
    "or null), priority 1-5 (5 = dangerous), a one-sentence summary, and a confidence 0-1 for "
    "each plus an overall confidence."
)


def build_prompt(title: str, description: str, codes: list[str], labels: list[str]) -> str:
    """The classifier's input; the offline heuristic parses the same text."""
    return (
        f"Category codes: {', '.join(codes)}\n"
        f"Detected objects: {', '.join(labels) or 'none'}\n---\n"
        f"{title}\n{description}"
    )


async def _detect(
    platform: Platform, photo: ReportPhoto
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    # The detector sees the public copy: upright (its boxes match the copy we blur) and without
    # EXIF, so a remote provider never receives the GPS position or camera data.
    data = await platform.storage.get(photo.public_key)
    result = await platform.ai.detect_objects(data, task="report.detect")
    found: list[dict[str, Any]] = [
        {
            "label": d.label,
            "confidence": round(d.confidence, 3),
            "box": [d.box.x, d.box.y, d.box.width, d.box.height],
        }
        for d in result.value
    ]
    used = {"provider": result.provider, "model": result.model, "offline": result.offline}
    # Faces and plates found: rebuild the public copy with those regions blurred.
    boxes = [
        (f["box"][0], f["box"][1], f["box"][2], f["box"][3])
        for f in found
        if f["label"].lower() in BLUR_LABELS
    ]
    if boxes:
        copy, _, _ = public_copy(data, platform.settings.report_max_photo_pixels, boxes)
        await platform.storage.put(photo.public_key, copy, "image/jpeg")
    return found, used, len(boxes)


async def analyze_report(platform: Platform, report_id: uuid.UUID) -> dict[str, Any] | None:
    """Run the analysis and apply it; idempotent (a re-run replaces the suggestion)."""
    async with platform.db.session() as session:
        repo = ReportRepository(session)
        report = await repo.get(report_id)
        if report is None:
            return None
        photos = list(await repo.photos(report.id))[:MAX_PHOTOS_ANALYSED]
        codes = [c.code for c in await repo.categories(active_only=True)]
        prompt_report = (report.title, report.description)
    # No transaction stays open across the provider calls.
    detections: list[dict[str, Any]] = []
    vision: dict[str, Any] | None = None
    blurred: dict[uuid.UUID, int] = {}
    for photo in photos:
        try:
            found, vision, count = await _detect(platform, photo)
        except AppError as exc:  # an undecodable photo must not block the text analysis
            log.warning("report.detect failed", report_id=str(report_id), error=str(exc))
            continue
        detections.extend(found)
        blurred[photo.id] = count
    labels = sorted({d["label"] for d in detections if d["confidence"] >= 0.3})
    result = await platform.ai.complete_json(
        build_prompt(*prompt_report, codes, labels),
        Analysis,
        offline=offline_from_prompt,
        task="report.classify",
        system=SYSTEM,
    )
    value = result.value
    analysis: dict[str, Any] = {
        **value.model_dump(),
        "category": value.category if value.category in codes else None,
        "text_model": {
            "provider": result.provider,
            "model": result.model,
            "offline": result.offline,
        },
        "vision_model": vision,
        "detections": detections[:50],
    }
    if analysis["category"] is None:
        analysis["confidence"] = 0.0
    async with platform.db.session() as session:
        repo = ReportRepository(session)
        report = await repo.get(report_id, for_update=True)
        if report is None:
            return None
        for photo in await repo.photos(report.id):
            if blurred.get(photo.id):
                photo.blurred = blurred[photo.id]
        await ReportService(session, platform, None).apply_analysis(report, analysis)
    return analysis


@task(
    "report.analyze",
    queue="report",
    retries=_settings.report_retries,
    retry_delay=_settings.report_retry_delay_seconds,
)
async def analyze(ctx: JobContext, report_id: str) -> None:
    """AI analysis of a new (or re-analysed) report."""
    # An AIError (with offline fallback off) propagates: the job policy retries it.
    await analyze_report(ctx.platform, uuid.UUID(report_id))
