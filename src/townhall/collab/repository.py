"""All SQL of the collab engine."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.collab.models import CollabDocument, CollabPendingUpdate, CollabVersion
from townhall.core.db import utcnow


class CollabRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_document(self, service: str, doc_id: str) -> CollabDocument | None:
        result = await self.session.execute(
            select(CollabDocument).where(
                CollabDocument.service == service, CollabDocument.doc_id == doc_id
            )
        )
        return result.scalar_one_or_none()

    async def get_state_vector(self, service: str, doc_id: str) -> bytes | None:
        """The stored state vector alone (the state itself can be megabytes)."""
        vector: bytes | None = await self.session.scalar(
            select(CollabDocument.state_vector).where(
                CollabDocument.service == service, CollabDocument.doc_id == doc_id
            )
        )
        return vector

    async def insert_document(
        self, service: str, doc_id: str, state: bytes, state_vector: bytes
    ) -> CollabDocument:
        document = CollabDocument(
            service=service,
            doc_id=doc_id,
            state=state,
            state_vector=state_vector,
            size=len(state),
            revision=1,
        )
        self.session.add(document)
        await self.session.flush()
        return document

    async def update_document(
        self, document_id: uuid.UUID, revision: int, state: bytes, state_vector: bytes
    ) -> bool:
        """Write a new state only if nobody else wrote since `revision` was read."""
        result = await self.session.execute(
            update(CollabDocument)
            .where(CollabDocument.id == document_id, CollabDocument.revision == revision)
            .values(
                state=state,
                state_vector=state_vector,
                size=len(state),
                revision=revision + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    # Versions.

    async def add_version(self, document_id: uuid.UUID, name: str, state: bytes) -> CollabVersion:
        last = await self.session.scalar(
            select(func.max(CollabVersion.number)).where(CollabVersion.document_id == document_id)
        )
        version = CollabVersion(
            document_id=document_id,
            number=(last or 0) + 1,
            name=name,
            state=state,
            size=len(state),
        )
        self.session.add(version)
        await self.session.flush()
        return version

    async def prune_versions(self, document_id: uuid.UUID, keep: int) -> None:
        """Drop all but the newest `keep` versions."""
        cutoff = await self.session.scalar(
            select(CollabVersion.number)
            .where(CollabVersion.document_id == document_id)
            .order_by(CollabVersion.number.desc())
            .offset(keep)
            .limit(1)
        )
        if cutoff is not None:
            await self.session.execute(
                delete(CollabVersion).where(
                    CollabVersion.document_id == document_id, CollabVersion.number <= cutoff
                )
            )

    async def list_versions(self, document_id: uuid.UUID) -> Sequence[CollabVersion]:
        result = await self.session.execute(
            select(CollabVersion)
            .where(CollabVersion.document_id == document_id)
            .order_by(CollabVersion.number.desc())
        )
        return result.scalars().all()

    async def get_version(self, document_id: uuid.UUID, number: int) -> CollabVersion | None:
        result = await self.session.execute(
            select(CollabVersion).where(
                CollabVersion.document_id == document_id, CollabVersion.number == number
            )
        )
        return result.scalar_one_or_none()

    # The embedded write-back buffer.

    async def push_pending(self, service: str, doc_id: str, data: bytes) -> None:
        self.session.add(CollabPendingUpdate(service=service, doc_id=doc_id, data=data))
        await self.session.flush()

    async def pending(self, service: str, doc_id: str) -> Sequence[tuple[int, bytes]]:
        result = await self.session.execute(
            select(CollabPendingUpdate.id, CollabPendingUpdate.data)
            .where(CollabPendingUpdate.service == service, CollabPendingUpdate.doc_id == doc_id)
            .order_by(CollabPendingUpdate.id)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def pending_count(self, service: str, doc_id: str) -> int:
        total = await self.session.scalar(
            select(func.count()).where(
                CollabPendingUpdate.service == service, CollabPendingUpdate.doc_id == doc_id
            )
        )
        return int(total or 0)

    async def pending_bytes(self, service: str, doc_id: str) -> int:
        total = await self.session.scalar(
            select(func.coalesce(func.sum(func.length(CollabPendingUpdate.data)), 0)).where(
                CollabPendingUpdate.service == service, CollabPendingUpdate.doc_id == doc_id
            )
        )
        return int(total or 0)

    async def delete_pending(self, ids: Sequence[int]) -> None:
        """Delete exactly these buffered rows (chunked to stay under bind-parameter limits)."""
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            await self.session.execute(
                delete(CollabPendingUpdate)
                .where(CollabPendingUpdate.id.in_(chunk))
                .execution_options(synchronize_session=False)
            )

    async def dirty_documents(self, limit: int = 1000) -> Sequence[tuple[str, str]]:
        result = await self.session.execute(
            select(CollabPendingUpdate.service, CollabPendingUpdate.doc_id).distinct().limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()]
