"""storage.queries against real databases: idempotency, conversations, the per-chat lock."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import event, select

from storage import queries
from storage.db import transaction
from storage.drafts import open_draft, seal_draft
from storage.identity import keyed_hash
from storage.models import ChatMessage, Conversation, ProcessedUpdate
from tests.integration.support import (
    Database,
    aware,
    conversation,
    now,
    only_postgresql,
    only_sqlite,
)

DRAFT_KEY = b"k" * 32


def chat(n: int | str) -> str:
    return keyed_hash(b"u" * 32, "chat:test", str(n))


# ---- claim_update -----------------------------------------------------------------------------


async def test_claim_update_once(db: Database) -> None:
    at = now()
    async with transaction(db.sessions) as s:
        assert await queries.claim_update(s, 4242, at) is True
    async with transaction(db.sessions) as s:
        assert await queries.claim_update(s, 4242, at) is False
        assert await queries.claim_update(s, 4243, at) is True
    async with db.sessions() as s:
        assert await queries.count(s, ProcessedUpdate) == 2


async def test_claim_update_large_ids(db: Database) -> None:
    # Telegram update ids are 32-bit today but documented as "may exceed": BIGINT.
    big = 2**53 + 1
    async with transaction(db.sessions) as s:
        assert await queries.claim_update(s, big, now()) is True
    async with transaction(db.sessions) as s:
        assert await queries.claim_update(s, big, now()) is False


async def test_claim_update_rolled_back_can_be_claimed_again(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with transaction(db.sessions) as s:
            assert await queries.claim_update(s, 77, now())
            raise Boom
    async with transaction(db.sessions) as s:
        assert await queries.claim_update(s, 77, now()) is True


async def test_claim_update_two_sessions_one_loses(db: Database) -> None:
    """Session A claims and holds its transaction open; B claims the same id meanwhile and
    must come back False once A commits (PostgreSQL: B waits on A's uncommitted key;
    SQLite: B waits for the write lock)."""
    a_claimed = asyncio.Event()
    results: dict[str, bool] = {}

    async def first() -> None:
        async with transaction(db.sessions) as s:
            results["a"] = await queries.claim_update(s, 9001, now())
            a_claimed.set()
            await asyncio.sleep(0.2)

    async def second() -> None:
        await a_claimed.wait()
        async with transaction(db.sessions) as s:
            results["b"] = await queries.claim_update(s, 9001, now())

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=10)
    assert results == {"a": True, "b": False}


async def test_claim_update_concurrent_race_exactly_one_wins(db: Database) -> None:
    async def attempt() -> bool:
        async with transaction(db.sessions) as s:
            return await queries.claim_update(s, 31337, now())

    outcomes = await asyncio.wait_for(asyncio.gather(*(attempt() for _ in range(5))), 15)
    assert sorted(outcomes) == [False, False, False, False, True]


# ---- conversations ----------------------------------------------------------------------------


async def test_save_and_load_conversation(db: Database) -> None:
    at = now()
    key = chat(1)
    draft = seal_draft(DRAFT_KEY, key, {"answers": {"method": "sms"}})
    row = conversation(
        key, at, step="contact.times", draft=draft, draft_expires_in=dt.timedelta(hours=1)
    )
    row.editing = True
    async with transaction(db.sessions) as s:
        await queries.save_conversation(s, row)

    async with transaction(db.sessions) as s:
        loaded = await queries.load_conversation(s, key, now())
        assert loaded is not None
        assert (loaded.step, loaded.language, loaded.seq, loaded.editing) == (
            "contact.times",
            "en",
            3,
            True,
        )
        assert open_draft(DRAFT_KEY, key, loaded.draft) == {"answers": {"method": "sms"}}
        assert aware(loaded.expires_at) == at + dt.timedelta(hours=6)
        assert aware(loaded.updated_at) == at  # microseconds survive the round trip
        assert await queries.load_conversation(s, chat(2), now()) is None

        loaded.step = "contact.codeword"
        await queries.save_conversation(s, loaded)
    async with db.sessions() as s:
        again = await queries.load_conversation(s, key, now())
        assert again is not None and again.step == "contact.codeword"


async def test_expired_conversation_is_not_returned_and_is_deleted(db: Database) -> None:
    at = now()
    async with transaction(db.sessions) as s:
        await queries.save_conversation(
            s, conversation(chat(1), at - dt.timedelta(hours=7), expires_in=dt.timedelta(hours=6))
        )
        await queries.save_conversation(s, conversation(chat(2), at))
    async with transaction(db.sessions) as s:
        assert await queries.load_conversation(s, chat(1), at) is None
        assert await queries.load_conversation(s, chat(2), at) is not None
    async with db.sessions() as s:
        keys = (await s.scalars(select(Conversation.chat_key))).all()
    assert keys == [chat(2)]


async def test_conversation_expiring_exactly_now_is_expired(db: Database) -> None:
    at = now()
    async with transaction(db.sessions) as s:
        await queries.save_conversation(
            s, conversation(chat(1), at - dt.timedelta(hours=1), expires_in=dt.timedelta(hours=1))
        )
    async with transaction(db.sessions) as s:
        assert await queries.load_conversation(s, chat(1), at) is None


async def test_expired_draft_is_cleared_on_load(db: Database) -> None:
    at = now()
    key = chat(1)
    draft = seal_draft(DRAFT_KEY, key, {"answers": {"codeword": "heron"}})
    async with transaction(db.sessions) as s:
        await queries.save_conversation(
            s,
            conversation(
                key,
                at - dt.timedelta(hours=2),
                step="contact.codeword",
                draft=draft,
                draft_expires_in=dt.timedelta(hours=1),
            ),
        )
    async with transaction(db.sessions) as s:
        row = await queries.load_conversation(s, key, at)
        assert row is not None
        assert row.step == "contact.codeword"  # the place survives, the answers do not
        assert row.draft is None and row.draft_expires_at is None
    async with db.sessions() as s:
        stored = await s.get(Conversation, key)
        assert stored is not None
        assert stored.draft is None and stored.draft_expires_at is None  # and it was written


# ---- chat messages (for quick exit) ----------------------------------------------------------

WINDOW = queries.MESSAGE_DELETE_WINDOW


async def stored_messages(db: Database, chat_key: str) -> dict[int, dt.datetime]:
    """Every chat_messages row of one chat, whatever its age: message id -> sent_at."""
    async with db.sessions() as s:
        rows = (await s.scalars(select(ChatMessage).where(ChatMessage.chat_key == chat_key))).all()
    return {row.message_id: aware(row.sent_at) for row in rows}


def test_the_delete_window_is_telegrams_48_hours() -> None:
    assert dt.timedelta(hours=48) == WINDOW


async def test_remember_messages_keeps_every_id_once_in_order(db: Database) -> None:
    key, at = chat(1), now()
    later = at + dt.timedelta(minutes=5)
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, key, [12, 10, 11], at)
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, key, [13, 11, 14, 14], later)  # 11 again, 14 twice
        await queries.remember_messages(s, key, [], later)  # nothing to add: no change
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, key, later) == [10, 11, 12, 13, 14]
    stored = await stored_messages(db, key)
    assert sorted(stored) == [10, 11, 12, 13, 14]
    assert stored[11] == at  # a duplicate keeps the first time it was seen
    assert stored[13] == later


async def test_remember_messages_has_no_cap(db: Database) -> None:
    key, at = chat(1), now()
    many = list(range(1000, 2500))
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, key, many, at)
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, key, at) == many


async def test_remember_messages_large_ids(db: Database) -> None:
    key, at = chat(1), now()
    big = [2**31, 2**40 + 7]  # BIGINT: Telegram gives no 32-bit promise
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, key, big, at)
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, key, at) == big


async def test_messages_are_kept_apart_from_the_conversation(db: Database) -> None:
    """Quick exit must still find the ids when the conversation has expired or was deleted:
    remembering needs no conversation row, and deleting the row leaves the ids."""
    key, at = chat(1), now()
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, key, [1, 2], at)  # no conversation row at all
        assert await s.get(Conversation, key) is None
    async with transaction(db.sessions) as s:
        await queries.save_conversation(
            s, conversation(key, at - dt.timedelta(hours=7), expires_in=dt.timedelta(hours=6))
        )
        await queries.remember_messages(s, key, [3], at)
    async with transaction(db.sessions) as s:
        assert await queries.load_conversation(s, key, at) is None  # expired: deleted
    async with transaction(db.sessions) as s:
        await queries.delete_conversation(s, key)
    async with db.sessions() as s:
        assert await s.get(Conversation, key) is None
        assert await queries.chat_message_ids(s, key, at) == [1, 2, 3]


async def test_chat_message_ids_only_within_the_delete_window(db: Database) -> None:
    key, at = chat(1), now()
    ages = {
        1: WINDOW + dt.timedelta(days=3),
        2: WINDOW,  # exactly 48 h: Telegram no longer deletes it
        3: WINDOW - dt.timedelta(seconds=1),
        4: dt.timedelta(hours=47),
        5: dt.timedelta(0),
    }
    async with transaction(db.sessions) as s:
        for message_id, age in ages.items():
            await queries.remember_messages(s, key, [message_id], at - age)
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, key, at) == [3, 4, 5]
        later = at + dt.timedelta(minutes=30)  # 3 has aged out, 4 not yet
        assert await queries.chat_message_ids(s, key, later) == [4, 5]
    assert sorted(await stored_messages(db, key)) == [1, 2, 3, 4, 5]  # reading deletes nothing


async def test_chat_message_ids_and_forget_are_per_chat(db: Database) -> None:
    at = now()
    async with transaction(db.sessions) as s:
        await queries.remember_messages(s, chat(1), [1, 2, 3], at)
        await queries.remember_messages(s, chat(2), [2, 3, 4], at)  # ids are per chat
    async with transaction(db.sessions) as s:
        assert await queries.chat_message_ids(s, chat(1), at) == [1, 2, 3]
        assert await queries.chat_message_ids(s, chat(3), at) == []
        await queries.forget_chat_messages(s, chat(1))
        await queries.forget_chat_messages(s, chat(3))  # nothing there: not an error
    assert await stored_messages(db, chat(1)) == {}
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, chat(2), at) == [2, 3, 4]


# ---- the per-chat lock ------------------------------------------------------------------------


@only_postgresql
async def test_lock_chat_serialises_same_key_on_postgresql(db: Database) -> None:
    key, other = chat(1), chat(2)
    held = asyncio.Event()
    release = asyncio.Event()
    acquired_at: dict[str, float] = {}

    async def holder() -> None:
        async with transaction(db.sessions) as s:
            await queries.lock_chat(s, key)
            held.set()
            await release.wait()

    async def contender(name: str, chat_key: str) -> None:
        await held.wait()
        async with transaction(db.sessions) as s:
            await queries.lock_chat(s, chat_key)
            acquired_at[name] = time.monotonic()

    tasks = [
        asyncio.create_task(holder()),
        asyncio.create_task(contender("same", key)),
        asyncio.create_task(contender("other", other)),
    ]
    await asyncio.wait_for(held.wait(), 5)
    await asyncio.sleep(0.4)
    assert "other" in acquired_at, "a different chat key must not wait"
    assert "same" not in acquired_at, "the same chat key must wait for the first commit"
    released_at = time.monotonic()
    release.set()  # the holder commits
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert acquired_at["same"] >= released_at


@only_postgresql
async def test_lock_chat_is_released_on_rollback_on_postgresql(db: Database) -> None:

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with transaction(db.sessions) as s:
            await queries.lock_chat(s, chat(1))
            raise Boom
    async with transaction(db.sessions) as s:
        await asyncio.wait_for(queries.lock_chat(s, chat(1)), 2)


@only_sqlite
async def test_lock_chat_is_a_no_op_on_sqlite(db: Database) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    async with db.sessions() as s1, db.sessions() as s2:
        await s1.begin()
        await s2.begin()
        event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        try:
            await asyncio.wait_for(queries.lock_chat(s1, chat(1)), 1)
            await asyncio.wait_for(queries.lock_chat(s2, chat(1)), 1)  # does not wait
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", record)
        await s1.commit()
        await s2.commit()
    assert statements == []
