"""The durable inbox and outbox, and the gaps a lost send answer leaves.

Plain async functions taking an `AsyncSession`; the caller owns the transaction. Payloads are
sealed by the caller (`storage.drafts.seal_json`): nothing here sees text or ids in the clear.

* inbox: an update is stored (insert-or-ignore on the update id) before Telegram is told it
  arrived; the turn that handles it deletes it in its own transaction.
* outbox: a turn's replies are inserted in the turn's transaction; a delivered item is deleted
  in the same transaction that records the message id it got.
* send gaps: a send that timed out may still have reached the chat, under an id nobody knows.
  It is remembered as "some id above `after_id`"; the next id the chat learns closes the range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import conflict_insert, insert_or_ignore, skip_locked
from storage.models import ChatMessage, InboxUpdate, OutboxItem, SendBudget, SendGap
from storage.queries import remember_many, remember_messages, table


@dataclass(frozen=True)
class Received:
    update_id: int
    chat_key: str
    lane: int
    payload: bytes


# ---- inbox ------------------------------------------------------------------------------------


async def store_updates(
    session: AsyncSession, updates: Sequence[Received], now: dt.datetime
) -> None:
    if not updates:
        return
    rows = [
        {
            "update_id": u.update_id,
            "chat_key": u.chat_key,
            "lane": u.lane,
            "payload": u.payload,
            "received_at": now,
        }
        for u in updates
    ]
    await session.execute(insert_or_ignore(session, InboxUpdate), rows)


@dataclass(frozen=True)
class Popped:
    update_id: int
    lane: int
    payload: bytes


async def pop_update(session: AsyncSession, chat_key: str) -> Popped | None:
    """The chat's oldest stored update, removed from the inbox (undone if the turn rolls
    back). Called under the chat's lock, so whichever process runs it keeps the person's
    order."""
    return (await pop_updates(session, [chat_key])).get(chat_key)


async def pop_updates(session: AsyncSession, chat_keys: Sequence[str]) -> dict[str, Popped]:
    """`pop_update` for many chats in one statement: each chat's oldest stored update, by
    chat key (a chat with none is missing)."""
    if not chat_keys:
        return {}
    inbox = table(InboxUpdate)
    oldest = (
        select(func.min(inbox.c.update_id))
        .where(inbox.c.chat_key.in_(chat_keys))
        .group_by(inbox.c.chat_key)
    )
    result = await session.execute(
        delete(inbox)
        .where(inbox.c.update_id.in_(oldest))
        .returning(inbox.c.chat_key, inbox.c.update_id, inbox.c.lane, inbox.c.payload)
    )
    return {str(k): Popped(int(u), int(lane), bytes(p)) for k, u, lane, p in result.all()}


async def waiting_chats(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(chat key, best lane, stored updates) for every chat with updates in the inbox."""
    result = await session.execute(
        select(InboxUpdate.chat_key, func.min(InboxUpdate.lane), func.count()).group_by(
            InboxUpdate.chat_key
        )
    )
    return [(str(k), int(lane), int(n)) for k, lane, n in result.all()]


# ---- outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    kind: str  # "send" or "quick_exit"
    lane: int
    payload: bytes


LEASE = dt.timedelta(seconds=15)


async def add_outgoing(
    session: AsyncSession,
    chat_key: str,
    items: Sequence[Outgoing],
    now: dt.datetime,
    owner: str | None = None,
) -> list[int]:
    """Queue a turn's items, claimed by the process that ran the turn (it delivers them).
    Returns their ids, in order."""
    return await add_outgoing_many(session, [(chat_key, i) for i in items], now, owner)


async def add_outgoing_many(
    session: AsyncSession,
    items: Sequence[tuple[str, Outgoing]],
    now: dt.datetime,
    owner: str | None = None,
) -> list[int]:
    """`add_outgoing` for (chat key, item) pairs of many turns, in one statement. Ids are
    returned in the order given, which is also the order they were assigned in, so each
    chat's items keep their order."""
    if not items:
        return []
    rows = [
        {
            "chat_key": chat_key,
            "lane": i.lane,
            "kind": i.kind,
            "payload": i.payload,
            "attempts": 0,
            "created_at": now,
            "claimed_by": owner,
            "claimed_until": None if owner is None else now + LEASE,
        }
        for chat_key, i in items
    ]
    # The executemany form: SQLAlchemy batches it into one INSERT and keeps the ids in order.
    outbox = table(OutboxItem)
    result = await session.execute(
        insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), rows
    )
    return [int(i) for i in result.scalars().all()]


async def drop_outgoing(session: AsyncSession, chat_key: str) -> int:
    """Quick exit: nothing still waiting for this chat may reach the screen after it."""
    result = await session.execute(delete(OutboxItem).where(OutboxItem.chat_key == chat_key))
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_outbox(
    session: AsyncSession, owner: str, now: dt.datetime, *, everything: bool
) -> Sequence[OutboxItem]:
    """Take over items nobody is delivering: unclaimed ones and those whose lease ran out (the
    process died), or all of them (`everything`: one process on SQLite, at start-up)."""
    stmt = select(OutboxItem).order_by(OutboxItem.id)
    if not everything:
        stmt = stmt.where((OutboxItem.claimed_until.is_(None)) | (OutboxItem.claimed_until < now))
    rows = (await session.scalars(skip_locked(session, stmt))).all()
    if rows:
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.id.in_([r.id for r in rows]))
            .values(claimed_by=owner, claimed_until=now + LEASE)
        )
    return rows


async def renew_lease(session: AsyncSession, owner: str, now: dt.datetime) -> None:
    await session.execute(
        update(OutboxItem).where(OutboxItem.claimed_by == owner).values(claimed_until=now + LEASE)
    )


async def first_waiting(session: AsyncSession, chat_keys: Sequence[str]) -> dict[str, int]:
    """The oldest item still waiting for each of these chats, whichever process holds it (a
    chat with none is missing): an item may be sent only when it is the first (per-person
    order across processes), and only while it is still there (a quick exit in another
    process deletes it)."""
    if not chat_keys:
        return {}
    outbox = table(OutboxItem)
    result = await session.execute(
        select(outbox.c.chat_key, func.min(outbox.c.id))
        .where(outbox.c.chat_key.in_(chat_keys))
        .group_by(outbox.c.chat_key)
    )
    return {str(k): int(i) for k, i in result.all()}


async def delivered(
    session: AsyncSession,
    item_id: int,
    chat_key: str,
    message_ids: Sequence[int],
    now: dt.datetime,
) -> None:
    """The item reached the chat as `message_ids`: track them for quick exit, close any open
    gap below them, and take the item off the outbox."""
    await session.execute(delete(OutboxItem).where(OutboxItem.id == item_id))
    if message_ids:
        await remember_messages(session, chat_key, message_ids, now)
        await close_gaps(session, chat_key, min(message_ids))


async def delivered_many(
    session: AsyncSession, batch: Sequence[tuple[int, str, Sequence[int]]], now: dt.datetime
) -> None:
    """`delivered` for many items in one statement per table."""
    await session.execute(delete(OutboxItem).where(OutboxItem.id.in_([b[0] for b in batch])))
    await remember_many(session, [(chat_key, i) for _id, chat_key, ids in batch for i in ids], now)
    lowest: dict[str, int] = {}
    for _id, chat_key, ids in batch:
        if ids:
            lowest[chat_key] = min(lowest.get(chat_key, ids[0]), *ids)
    with_gaps = set(
        (
            await session.scalars(
                select(SendGap.chat_key).where(
                    SendGap.chat_key.in_(list(lowest)), SendGap.before_id.is_(None)
                )
            )
        ).all()
    )
    for chat_key in with_gaps:
        await close_gaps(session, chat_key, lowest[chat_key])


async def abandon(session: AsyncSession, item_id: int) -> None:
    await session.execute(delete(OutboxItem).where(OutboxItem.id == item_id))


async def count_attempt(session: AsyncSession, item_id: int) -> None:
    await session.execute(
        update(OutboxItem).where(OutboxItem.id == item_id).values(attempts=OutboxItem.attempts + 1)
    )


# ---- what quick exit must delete ----------------------------------------------------------


async def highest_known_id(session: AsyncSession, chat_key: str, before: dt.datetime) -> int:
    value = await session.scalar(
        select(func.max(ChatMessage.message_id)).where(
            ChatMessage.chat_key == chat_key, ChatMessage.sent_at <= before
        )
    )
    return int(value or 0)


async def open_gap(
    session: AsyncSession, chat_key: str, now: dt.datetime, *, known_before: dt.datetime
) -> None:
    """A send to this chat, started at `known_before`, may have arrived under an id we never
    learnt: it is above every id the chat knew by then (an id learnt later may be above the
    lost one). One open gap per chat is enough: a later lost send is above it too."""
    already = await session.scalar(
        select(SendGap.id).where(SendGap.chat_key == chat_key, SendGap.before_id.is_(None))
    )
    if already is None:
        after = await highest_known_id(session, chat_key, known_before)
        session.add(SendGap(chat_key=chat_key, after_id=after, before_id=None, created_at=now))
        await session.flush()


async def close_gaps(session: AsyncSession, chat_key: str, known_id: int) -> None:
    await session.execute(
        update(SendGap)
        .where(
            SendGap.chat_key == chat_key,
            SendGap.before_id.is_(None),
            SendGap.after_id < known_id,
        )
        .values(before_id=known_id)
    )


async def gaps(session: AsyncSession, chat_key: str) -> list[tuple[int, int | None]]:
    result = await session.execute(
        select(SendGap.after_id, SendGap.before_id)
        .where(SendGap.chat_key == chat_key)
        .order_by(SendGap.after_id)
    )
    return [(int(a), None if b is None else int(b)) for a, b in result.all()]


async def chat_cleared(
    session: AsyncSession, chat_key: str, deleted: Sequence[int], *, gaps_done: bool
) -> None:
    stmt = delete(ChatMessage).where(ChatMessage.chat_key == chat_key)
    await session.execute(stmt.where(ChatMessage.message_id.in_([int(i) for i in deleted])))
    if gaps_done:
        await session.execute(delete(SendGap).where(SendGap.chat_key == chat_key))


# ---- the send budget shared by several processes (PostgreSQL) --------------------------------


@dataclass(frozen=True)
class Rate:
    key: str
    interval: float  # seconds between sends, sustained
    tolerance: float  # how far ahead a burst may run, in seconds


async def reserve_sends(
    session: AsyncSession, sends: Sequence[Sequence[Rate]], now: float
) -> list[float]:
    """Take a slot from every bucket of each send, in the order given, with one statement;
    return how many seconds from `now` each send may go. GCRA: a send is allowed once
    `now >= tat - tolerance`, and pushes `tat` on by one interval, so n sends from one bucket
    push it on by n intervals and the j-th of them has the slot one interval after the one
    before. PostgreSQL only (several processes never share SQLite)."""
    wanted: dict[str, tuple[Rate, int]] = {}
    for rates in sends:
        for rate in rates:
            _rate, n = wanted.get(rate.key, (rate, 0))
            wanted[rate.key] = (rate, n + 1)
    if not wanted:
        return [0.0 for _ in sends]
    budget = table(SendBudget)
    insert_ = conflict_insert(session, SendBudget).values(
        [{"key": k, "tat": now + n * rate.interval} for k, (rate, n) in wanted.items()]
    )
    # The inserted value is now + n intervals; a bucket already there moves on from its own
    # tat, or from now if it has run dry: greatest(tat, now) + n intervals.
    upsert = insert_.on_conflict_do_update(
        index_elements=[budget.c.key],
        set_={"tat": func.greatest(budget.c.tat, now) + (insert_.excluded.tat - now)},
    ).returning(budget.c.key, budget.c.tat)
    tats = {str(k): float(t) for k, t in (await session.execute(upsert)).all()}
    # Where each bucket's first slot of this batch is, before the batch pushed it on.
    start = {k: tats[k] - n * rate.interval for k, (rate, n) in wanted.items()}
    taken = dict.fromkeys(wanted, 0)
    delays = []
    for rates in sends:
        delay = 0.0
        for rate in rates:
            slot = start[rate.key] + taken[rate.key] * rate.interval
            taken[rate.key] += 1
            delay = max(delay, slot - rate.tolerance - now)
        delays.append(max(0.0, delay))
    return delays


async def forget_idle_budgets(session: AsyncSession, now: float) -> None:
    await session.execute(delete(SendBudget).where(SendBudget.tat < now - 60))
