"""Queries: plain async functions taking an `AsyncSession`. The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.kinds import REMOVED_STATUS, RequestStatus
from storage.dialect import aware, insert_or_ignore, skip_locked, xact_locks
from storage.models import (
    Base,
    ChatMessage,
    ContactRequest,
    Conversation,
    Notice,
    OrganisationKey,
    ProcessedUpdate,
    RemovedRequest,
)
from storage.portal import delete_notes

# Telegram lets a bot delete messages in a private chat for 48 hours; older ids are useless.
MESSAGE_DELETE_WINDOW = dt.timedelta(hours=48)
MAX_NOTICE_ATTEMPTS = 10


# ---- updates and ordering -------------------------------------------------------------------


def table(model: type[Base]) -> Table:
    """The model's table, for Core statements: the turn's hot path runs many rows through a
    few statements, and the ORM's per-statement bookkeeping (identity map, session
    synchronisation) was a large part of a turn's cost."""
    return cast(Table, model.__table__)


async def claim_update(session: AsyncSession, update_id: int, now: dt.datetime) -> bool:
    """Record an update id; False if some process already handled it."""
    return update_id in await claim_updates(session, [update_id], now)


async def claim_updates(
    session: AsyncSession, update_ids: Sequence[int], now: dt.datetime
) -> set[int]:
    """Record update ids in one statement; returns those no process had handled before."""
    if not update_ids:
        return set()
    stmt = insert_or_ignore(session, ProcessedUpdate).returning(table(ProcessedUpdate).c.update_id)
    result = await session.execute(stmt, [{"update_id": i, "seen_at": now} for i in update_ids])
    return {int(i) for i in result.scalars().all()}


def chat_lock_id(chat_key: str) -> int:
    return int.from_bytes(bytes.fromhex(chat_key[:16]), "big", signed=True)


async def lock_chat(session: AsyncSession, chat_key: str) -> None:
    """Serialise one person's updates across processes (PostgreSQL); released at commit.
    In one process the per-chat update processor already orders them."""
    await lock_chats(session, [chat_key])


async def lock_chats(session: AsyncSession, chat_keys: Sequence[str]) -> None:
    """`lock_chat` for several chats at once (a batch of turns)."""
    await xact_locks(session, [chat_lock_id(k) for k in chat_keys])


# ---- conversations ---------------------------------------------------------------------------


async def load_conversation(
    session: AsyncSession, chat_key: str, now: dt.datetime
) -> Conversation | None:
    row = await session.get(Conversation, chat_key)
    if row is None:
        return None
    if aware(row.expires_at) <= now:
        await session.delete(row)
        return None
    if row.draft_expires_at is not None and aware(row.draft_expires_at) <= now:
        row.draft = None
        row.draft_expires_at = None
    return row


async def save_conversation(session: AsyncSession, row: Conversation) -> None:
    session.add(row)
    await session.flush()


async def delete_conversation(session: AsyncSession, chat_key: str) -> None:
    await session.execute(delete(Conversation).where(Conversation.chat_key == chat_key))


async def chat_message_ids(session: AsyncSession, chat_key: str, now: dt.datetime) -> list[int]:
    result = await session.scalars(
        select(ChatMessage.message_id)
        .where(ChatMessage.chat_key == chat_key, ChatMessage.sent_at > now - MESSAGE_DELETE_WINDOW)
        .order_by(ChatMessage.message_id)
    )
    return list(result.all())


async def forget_chat_messages(
    session: AsyncSession, chat_key: str, ids: Sequence[int] | None = None
) -> None:
    """Forget a chat's message ids: all of them, or only `ids` (those Telegram deleted)."""
    stmt = delete(ChatMessage).where(ChatMessage.chat_key == chat_key)
    if ids is not None:
        stmt = stmt.where(ChatMessage.message_id.in_([int(i) for i in ids]))
    await session.execute(stmt)


async def remember_messages(
    session: AsyncSession, chat_key: str, ids: Sequence[int], now: dt.datetime
) -> None:
    await remember_many(session, [(chat_key, i) for i in ids], now)


async def remember_many(
    session: AsyncSession, messages: Sequence[tuple[str, int]], now: dt.datetime
) -> None:
    """Track (chat key, message id) pairs for quick exit, in one statement."""
    if not messages:
        return
    rows = [
        {"chat_key": chat_key, "message_id": int(i), "sent_at": now}
        for chat_key, i in dict.fromkeys(messages)
    ]
    # The executemany form: one compiled statement whatever the number of rows.
    await session.execute(insert_or_ignore(session, ChatMessage), rows)


# ---- contact requests ------------------------------------------------------------------------


async def insert_request(session: AsyncSession, request: ContactRequest) -> None:
    session.add(request)
    await session.flush()


async def status_by_reference(session: AsyncSession, reference_hash: str) -> str | None:
    """The request's status; REMOVED if it was deleted (on her wish or by the purge) within
    the last REMOVED_TTL; None if no request has this reference number."""
    row = await session.scalar(
        select(ContactRequest.status).where(ContactRequest.reference_hash == reference_hash)
    )
    if row is not None:
        return str(row)
    removed = await session.scalar(
        select(RemovedRequest.reference_hash).where(
            RemovedRequest.reference_hash == removed_hash(reference_hash)
        )
    )
    return None if removed is None else REMOVED


# What `/status` reports for a deleted request; what is left of one, and for how long.
REMOVED = REMOVED_STATUS
REMOVED_TTL = dt.timedelta(days=90)


def removed_hash(reference_hash: str) -> str:
    """What a removed request leaves: derived again from its reference hash, so that none of
    the deleted row's bytes stay on disk (still keyed: only the lookup key reaches it)."""
    return hashlib.sha256(b"removed:" + reference_hash.encode()).hexdigest()


async def remember_removed(
    session: AsyncSession, reference_hashes: Sequence[str], now: dt.datetime
) -> None:
    """Keep only the keyed hash of each deleted request's reference number, dated to the day."""
    if not reference_hashes:
        return
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await session.execute(
        insert_or_ignore(session, RemovedRequest),
        [
            {"reference_hash": removed_hash(h), "forget_after": day + REMOVED_TTL}
            for h in reference_hashes
        ],
    )


@dataclass(frozen=True)
class ForgetResult:
    deleted: int
    withdrawn: int


async def forget_requests(session: AsyncSession, owner_key: str, now: dt.datetime) -> ForgetResult:
    """Delete the person's requests nobody has opened (and closed ones, which nobody works on);
    mark opened ones withdrawn so the advocate sees the victim's wish instead of a request that
    vanished, with their sealed answers and case notes deleted."""
    deleted = await session.execute(
        delete(ContactRequest)
        .where(
            ContactRequest.owner_key == owner_key,
            ContactRequest.status.in_((RequestStatus.NEW, RequestStatus.CLOSED)),
        )
        .returning(ContactRequest.reference_hash)
    )
    hashes = [str(h) for h in deleted.scalars().all()]
    await remember_removed(session, hashes, now)
    withdrawn = await session.execute(
        update(ContactRequest)
        .where(
            ContactRequest.owner_key == owner_key,
            ContactRequest.status == RequestStatus.PICKED_UP,
        )
        # Her answers go now, not at the purge: the row stays only to tell the advocate.
        .values(status=RequestStatus.WITHDRAWN, closed_at=now, envelope=b"")
        .returning(ContactRequest.id)
    )
    withdrawn_ids = [str(i) for i in withdrawn.scalars().all()]
    # Nothing more to read: the advocates' case notes go now. After the update, which holds
    # the rows, so a note being added meanwhile (it locks its request) is deleted too.
    await delete_notes(session, withdrawn_ids)
    return ForgetResult(deleted=len(hashes), withdrawn=len(withdrawn_ids))


async def requests_for(session: AsyncSession, organisation: str) -> Sequence[ContactRequest]:
    result = await session.scalars(
        select(ContactRequest)
        .where(ContactRequest.organisation == organisation)
        .order_by(ContactRequest.created_at)
    )
    return result.all()


async def set_request_status(
    session: AsyncSession, request_id: str, status: RequestStatus, now: dt.datetime
) -> None:
    values: dict[str, object] = {"status": status}
    if status == RequestStatus.PICKED_UP:
        values["picked_up_at"] = now
    if status in {RequestStatus.CLOSED, RequestStatus.WITHDRAWN}:
        values["closed_at"] = now
    await session.execute(
        update(ContactRequest).where(ContactRequest.id == request_id).values(**values)
    )


# ---- organisation keys -----------------------------------------------------------------------


async def add_org_key(session: AsyncSession, key: OrganisationKey) -> None:
    session.add(key)
    await session.flush()


async def newest_key(session: AsyncSession, organisation: str) -> OrganisationKey | None:
    return await session.scalar(
        select(OrganisationKey)
        .where(OrganisationKey.organisation == organisation, OrganisationKey.active.is_(True))
        .order_by(OrganisationKey.created_at.desc(), OrganisationKey.key_id)
        .limit(1)
    )


async def list_keys(session: AsyncSession) -> Sequence[OrganisationKey]:
    result = await session.scalars(
        select(OrganisationKey).order_by(OrganisationKey.organisation, OrganisationKey.created_at)
    )
    return result.all()


# ---- notices ---------------------------------------------------------------------------------


async def add_notice(session: AsyncSession, notice: Notice) -> None:
    session.add(notice)


async def claim_unsent_notices(session: AsyncSession, limit: int = 20) -> Sequence[Notice]:
    stmt = (
        select(Notice)
        .where(Notice.sent_at.is_(None), Notice.attempts < MAX_NOTICE_ATTEMPTS)
        .order_by(Notice.attempts, Notice.id)
        .limit(limit)
    )
    return (await session.scalars(skip_locked(session, stmt))).all()


# ---- counts for tests and health -------------------------------------------------------------


async def count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)
