"""Stored notifications, their live delivery, and the e-mail/SMS sender interface."""

from __future__ import annotations

import uuid
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.db import after_commit
from townhall.core.platform import Platform
from townhall.modules.report.models import Notification
from townhall.modules.report.schemas import NotificationOut

log = structlog.get_logger(__name__)


def user_channel(user_id: uuid.UUID) -> str:
    return f"report:user:{user_id}"


class Sender(Protocol):
    """Delivers a notification outside the app (e-mail, SMS)."""

    async def send(self, user_id: uuid.UUID, subject: str, body: str) -> None: ...


class LoggingSender:
    """The default sender: writes what would be sent to the log."""

    channel = "log"

    async def send(self, user_id: uuid.UUID, subject: str, body: str) -> None:
        log.info("report.notification.sent", user_id=str(user_id), subject=subject, body=body)


SENDERS: list[Sender] = [LoggingSender()]


def set_senders(senders: list[Sender]) -> None:
    """Replace the out-of-app senders (e.g. an SMTP or SMS gateway adapter)."""
    SENDERS[:] = senders


async def notify(
    session: AsyncSession,
    platform: Platform,
    user_ids: set[uuid.UUID],
    *,
    kind: str,
    report_id: uuid.UUID | None,
    title: str,
    body: str = "",
) -> list[Notification]:
    """Store one notification per user and push each live once the session commits."""
    rows = [
        Notification(user_id=u, report_id=report_id, kind=kind, title=title[:300], body=body)
        for u in sorted(user_ids)
    ]
    session.add_all(rows)
    await session.flush()
    payloads = [
        (row.user_id, NotificationOut.model_validate(row).model_dump(mode="json")) for row in rows
    ]

    async def deliver() -> None:
        for user_id, data in payloads:
            try:
                await platform.pubsub.publish(
                    user_channel(user_id), {"type": "notification", "notification": data}
                )
            except Exception:
                # The stored row is the truth; the live push is a hint.
                log.warning("report notification push failed", user_id=str(user_id), exc_info=True)
            for sender in SENDERS:
                try:
                    await sender.send(user_id, data["title"], data["body"])
                except Exception:
                    log.warning("report sender failed", sender=type(sender).__name__, exc_info=True)

    if payloads:
        after_commit(session, deliver)
    return rows
