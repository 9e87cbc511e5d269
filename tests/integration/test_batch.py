"""Turns of many chats in one transaction (`ConversationService.run_batch`, the inbox
scheduler's batches) and the set-based statements under them, on SQLite and PostgreSQL:
one turn per chat per batch in each person's order, redeliveries done nothing, a failing
submission rolled back and rerun alone while the others commit, quick exit never in a
batch, chat locks that cannot deadlock, and shared send slots reserved many at once exactly
as one at a time."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import tomllib
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import delete, select

import bot.service
from bot.config import bundled_deployment_path
from bot.inbox import InboxScheduler
from bot.keyring import register_public_key
from bot.service import ConversationService, Incoming, ServerSecrets, TurnResult
from flows import (
    ButtonPressed,
    Context,
    Event,
    QuickExitRequested,
    Started,
    TextReceived,
    load_catalogs,
    load_flow,
    parse_deployment,
)
from storage import delivery, queries
from storage.db import transaction
from storage.models import Conversation, InboxUpdate, OutboxItem, SendBudget
from storage.sealing import generate_keypair
from tests.integration.support import Database, only_postgresql
from tests.integration.test_service import (
    CHANNEL,
    ORGS,
    Victim,
    fill_form,
    request_rows,
    says,
)


@pytest.fixture(scope="module")
def ctx() -> Context:
    deployment = parse_deployment(tomllib.loads(bundled_deployment_path().read_text()))
    return Context(load_flow(), deployment, load_catalogs())


@pytest.fixture
async def service(db: Database, ctx: Context) -> ConversationService:
    for org in ORGS:
        await register_public_key(db.sessions, org, generate_keypair()[1])
    keys = ServerSecrets(*(secrets.token_bytes(32) for _ in range(3)))
    return ConversationService(
        ctx,
        db.sessions,
        keys,
        state_ttl=dt.timedelta(hours=6),
        draft_ttl=dt.timedelta(minutes=60),
        engine=db.engine,
    )


_update_ids: Iterator[int] = itertools.count(8_000_001)
_message_ids: Iterator[int] = itertools.count(90_001)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def chat(n: int) -> str:
    return f"{n:064x}"


def user(n: int) -> str:
    return str(600_000 + n)


def incoming(n: int, event: Event, update_id: int | None = None) -> Incoming:
    return Incoming(
        update_id=next(_update_ids) if update_id is None else update_id,
        channel=CHANNEL,
        user_id=user(n),
        chat=int(user(n)),
        event=event,
        incoming_message_id=next(_message_ids),
        language_code="en",
    )


async def count(db: Database, model: type[object]) -> int:
    async with db.sessions() as s:
        return await queries.count(s, model)


# ---- the statements ---------------------------------------------------------------------------


async def test_pop_updates_takes_each_chats_oldest_in_one_statement(db: Database) -> None:
    rows = [(11, chat(1)), (12, chat(2)), (13, chat(1)), (14, chat(3)), (15, chat(2))]
    async with transaction(db.sessions) as s:
        await delivery.store_updates(
            s, [delivery.Received(u, k, 2, f"p{u}".encode()) for u, k in rows], now()
        )
    taken: list[dict[str, int]] = []
    for _ in range(3):
        async with transaction(db.sessions) as s:
            popped = await delivery.pop_updates(s, [chat(1), chat(2), chat(3), chat(4)])
        assert all(p.payload == f"p{p.update_id}".encode() for p in popped.values())
        taken.append({k: p.update_id for k, p in popped.items()})
    assert taken == [{chat(1): 11, chat(2): 12, chat(3): 14}, {chat(1): 13, chat(2): 15}, {}]


async def test_claim_updates_returns_only_the_new_ids(db: Database) -> None:
    async with transaction(db.sessions) as s:
        assert await queries.claim_updates(s, [1, 2], now()) == {1, 2}
    async with transaction(db.sessions) as s:
        assert await queries.claim_updates(s, [2, 3, 1, 4], now()) == {3, 4}
        assert await queries.claim_updates(s, [], now()) == set()


async def test_outbox_rows_of_many_chats_keep_each_chats_order(db: Database) -> None:
    items = [(chat(n % 3), delivery.Outgoing("send", 2, bytes([n]))) for n in range(9)]
    async with transaction(db.sessions) as s:
        ids = await delivery.add_outgoing_many(s, items, now(), "me")
    assert ids == sorted(ids) and len(set(ids)) == 9
    async with db.sessions() as s:
        stored = (await s.execute(select(OutboxItem.id, OutboxItem.payload))).all()
    assert {i: p for i, p in stored} == {i: bytes([n]) for n, i in enumerate(ids)}


# ---- a batch of turns -------------------------------------------------------------------------


async def test_a_batch_runs_one_turn_per_chat_and_commits_them_together(
    db: Database, service: ConversationService
) -> None:
    stored = await service.receive(
        [incoming(n, Started(language_hint="en")) for n in range(5)]
        + [incoming(0, TextReceived("second, for the next batch"))]
    )
    keys = list(dict.fromkeys(k for k, _lane in stored))
    idle = service.chat_key(CHANNEL, user(99))  # nothing in the inbox
    turns = await service.run_batch([*keys, idle])
    assert turns[-1] is None
    assert all(t is not None and t.chat_key == k for t, k in zip(turns, keys, strict=False))
    first = [t for t in turns if t is not None]
    assert all(t.replies and not t.duplicate and t.outbox for t in first)
    assert all(q.chat_key == t.chat_key for t in first for q in t.outbox)
    assert await count(db, Conversation) == 5
    assert await count(db, InboxUpdate) == 1  # the first chat's second update waits its turn
    assert await count(db, OutboxItem) == sum(len(t.outbox) for t in first)

    (again,) = await service.run_batch([keys[0]])
    assert again is not None and again.replies and not again.duplicate
    assert min(q.id for q in again.outbox) > max(q.id for q in first[0].outbox)
    assert await count(db, InboxUpdate) == 0


async def test_a_redelivered_update_in_a_batch_does_nothing(
    db: Database, service: ConversationService
) -> None:
    (key, _lane), (other, _l) = await service.receive(
        [incoming(1, Started(language_hint="en"), update_id=777), incoming(2, Started())]
    )
    await service.run_batch([key, other])
    before = await count(db, OutboxItem)
    # Telegram sends update 777 again; it is stored, its turn finds the id claimed.
    await service.receive([incoming(1, Started(language_hint="en"), update_id=777)])
    (turn,) = await service.run_batch([key])
    assert turn is not None and turn.duplicate and not turn.outbox
    assert await count(db, OutboxItem) == before
    assert await count(db, InboxUpdate) == 0


class Calls:
    """Records what the scheduler asked of the service."""

    def __init__(self, service: ConversationService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.failed_batches = 0
        run_batch, run_next = service.run_batch, service.run_next

        async def batch(keys: Sequence[str]) -> list[TurnResult | None]:
            self.batches.append(list(keys))
            try:
                return await run_batch(keys)
            except Exception:
                self.failed_batches += 1
                raise

        async def single(key: str) -> TurnResult | None:
            self.singles.append(key)
            return await run_next(key)

        monkeypatch.setattr(service, "run_batch", batch)
        monkeypatch.setattr(service, "run_next", single)


async def run_inbox(
    service: ConversationService, stored: list[tuple[str, int]]
) -> list[TurnResult]:
    turns: list[TurnResult] = []
    scheduler = InboxScheduler(service, None, on_turn=turns.append)
    scheduler.notify(stored)
    scheduler.start()
    try:
        await asyncio.wait_for(scheduler.wait_idle(), 30)
    finally:
        await scheduler.stop()
    return turns


async def test_a_failing_submission_is_rerun_alone_and_the_rest_of_its_batch_commits(
    db: Database,
    ctx: Context,
    service: ConversationService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    send = ButtonPressed(victim.button("✅ Send"))

    async def broken(*_: object, **__: object) -> object:
        raise RuntimeError("disk full")

    monkeypatch.setattr(bot.service, "store_request", broken)
    calls = Calls(service, monkeypatch)
    others = [incoming(n, Started(language_hint="en")) for n in range(1, 7)]
    victims = Incoming(next(_update_ids), CHANNEL, victim.user_id, 4242, send, None, "en")
    turns = await run_inbox(service, await service.receive([*others[:3], victims, *others[3:]]))

    assert calls.failed_batches == 1 and len(calls.batches[0]) == 7
    by_chat = {t.chat_key: t for t in turns}
    assert len(by_chat) == 7 == len(turns)
    failed = by_chat[victim.chat_key]
    assert failed.request_stored is False and says(ctx, failed, "submit_failed")
    assert all(by_chat[service.chat_key(CHANNEL, user(n))].replies for n in range(1, 7))
    assert await request_rows(db) == []
    assert await count(db, InboxUpdate) == 0
    async with db.sessions() as s:
        row = await s.get(Conversation, victim.chat_key)
    assert row is not None and row.step == "contact.summary"  # Send may be pressed again


async def test_quick_exit_runs_alone_and_before_the_batch(
    db: Database, service: ConversationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = Calls(service, monkeypatch)
    crowd = [incoming(n, Started(language_hint="en")) for n in range(1, 12)]
    leaving = incoming(50, QuickExitRequested())
    turns = await run_inbox(service, await service.receive([*crowd, leaving]))
    key = service.chat_key(CHANNEL, user(50))
    assert calls.singles[0] == key  # first, on its own
    assert all(key not in b for b in calls.batches)
    assert sorted(len(b) for b in calls.batches) == [11]
    assert len(turns) == 12
    exit_turn = next(t for t in turns if t.chat_key == key)
    assert [q.kind for q in exit_turn.outbox] == ["quick_exit"]


# ---- PostgreSQL: locks and the shared send budget ---------------------------------------------


@only_postgresql
async def test_locking_overlapping_chats_in_any_order_never_deadlocks(db: Database) -> None:
    keys = [chat(n) for n in range(1, 9)]
    start = asyncio.Event()

    async def locker(order: list[str]) -> None:
        await start.wait()
        async with transaction(db.sessions) as s:
            await queries.lock_chats(s, order)
            await asyncio.sleep(0.05)

    tasks = [
        asyncio.create_task(locker(keys)),
        asyncio.create_task(locker(list(reversed(keys)))),
        asyncio.create_task(locker(keys[3:] + keys[:3])),
    ]
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)  # a deadlock would raise here


@only_postgresql
async def test_a_batch_lock_holds_off_a_turn_of_one_of_its_chats(db: Database) -> None:
    held, release = asyncio.Event(), asyncio.Event()
    got: list[str] = []

    async def batch() -> None:
        async with transaction(db.sessions) as s:
            await queries.lock_chats(s, [chat(1), chat(2), chat(3)])
            held.set()
            await release.wait()
            got.append("batch done")

    async def turn() -> None:
        await held.wait()
        async with transaction(db.sessions) as s:
            await queries.lock_chat(s, chat(2))
            got.append("turn")

    tasks = [asyncio.create_task(batch()), asyncio.create_task(turn())]
    await asyncio.wait_for(held.wait(), 5)
    await asyncio.sleep(0.3)
    assert got == []
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert got == ["batch done", "turn"]


@only_postgresql
async def test_send_slots_reserved_together_are_those_reserved_one_at_a_time(
    db: Database,
) -> None:
    every = delivery.Rate("all", 0.1, 0.05)  # ten a second, half an interval's tolerance

    def per_chat(n: int) -> delivery.Rate:
        return delivery.Rate(f"chat:{n}", 1.0, 2.0)  # one a second, bursts of three

    sends = [[every, per_chat(n % 2)] for n in range(7)]
    t0 = 1_000.0
    async with transaction(db.sessions) as s:
        one_by_one = [(await delivery.reserve_sends(s, [rates], t0))[0] for rates in sends]
        await s.execute(delete(SendBudget))
        together = await delivery.reserve_sends(s, sends, t0)
    assert together == pytest.approx(one_by_one)
    # The overall bucket spaces them 0.1 s apart (0.05 s early at most); chat 0's fourth
    # send waits for its own bucket: three at once, then one a second.
    assert together == pytest.approx([0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 1.0])
