"""Retention: delete what has outlived its purpose, for real.

Periods come from configuration, never from here. Every purge ends with a WAL checkpoint on
SQLite, because with `secure_delete` + WAL the deleted bytes otherwise survive in the -wal
file. Safe to run in several processes at once: every statement is an idempotent delete.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows.kinds import RequestStatus
from storage import queries
from storage.dialect import checkpoint
from storage.models import (
    ChatMessage,
    ContactRequest,
    Conversation,
    Notice,
    ProcessedUpdate,
    RemovedRequest,
    SendGap,
)
from storage.queries import MESSAGE_DELETE_WINDOW

# Telegram stops redelivering an update long before this.
PROCESSED_UPDATE_TTL = dt.timedelta(days=2)
SENT_NOTICE_TTL = dt.timedelta(days=1)


@dataclass(frozen=True)
class PurgeReport:
    requests: int
    conversations: int
    drafts: int
    updates: int
    notices: int


async def purge(
    engine: AsyncEngine,
    factory: async_sessionmaker[AsyncSession],
    now: dt.datetime,
    *,
    closed_retention: dt.timedelta,
) -> PurgeReport:
    async with factory() as session, session.begin():
        requests = await session.execute(
            delete(ContactRequest)
            .where(
                or_(
                    ContactRequest.delete_after <= now,
                    and_(
                        ContactRequest.status.in_((RequestStatus.CLOSED, RequestStatus.WITHDRAWN)),
                        ContactRequest.closed_at <= now - closed_retention,
                    ),
                )
            )
            .returning(ContactRequest.reference_hash)
        )
        removed = [str(h) for h in requests.scalars().all()]
        await queries.remember_removed(session, removed, now)
        await session.execute(delete(RemovedRequest).where(RemovedRequest.forget_after <= now))
        conversations = await session.execute(
            delete(Conversation).where(Conversation.expires_at <= now)
        )
        drafts = await session.execute(
            update(Conversation)
            .where(Conversation.draft_expires_at <= now)
            .values(draft=None, draft_expires_at=None)
        )
        updates = await session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.seen_at <= now - PROCESSED_UPDATE_TTL)
        )
        notices = await session.execute(
            delete(Notice).where(
                or_(
                    Notice.sent_at <= now - SENT_NOTICE_TTL,
                    Notice.created_at <= now - SENT_NOTICE_TTL * 7,
                )
            )
        )
        await session.execute(
            delete(ChatMessage).where(ChatMessage.sent_at <= now - MESSAGE_DELETE_WINDOW)
        )
        # Ids Telegram no longer lets a bot delete are of no use to quick exit.
        await session.execute(
            delete(SendGap).where(SendGap.created_at <= now - MESSAGE_DELETE_WINDOW)
        )
    await checkpoint(engine)
    return PurgeReport(
        requests=len(removed),
        conversations=_rows(conversations),
        drafts=_rows(drafts),
        updates=_rows(updates),
        notices=_rows(notices),
    )


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
