"""PerChatUpdateProcessor: parallel across chats, one at a time and in order within a chat."""

from __future__ import annotations

import asyncio
import inspect
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from telegram import Chat, InlineQuery, Message, Update, User
from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest, RequestData

from bot.processor import NO_CHAT, PerChatUpdateProcessor, chat_key


def _message_update(update_id: int, chat_id: int) -> Update:
    user = User(id=chat_id, first_name="someone", is_bot=False)
    chat = Chat(id=chat_id, type=Chat.PRIVATE)
    message = Message(
        message_id=update_id, date=datetime.now(UTC), chat=chat, from_user=user, text="x"
    )
    return Update(update_id=update_id, message=message)


@dataclass
class Journal:
    """Start and end of every handled update, on one shared clock of event numbers."""

    events: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, chat, update)
    active: int = 0
    max_active: int = 0

    async def handle(self, chat: int, update_id: int, pause: float) -> None:
        self.events.append(("start", chat, update_id))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(pause)
        self.active -= 1
        self.events.append(("end", chat, update_id))

    def check(self, arrival: list[tuple[int, int]]) -> None:
        """Per chat: starts in arrival order, each start after the previous end."""
        expected: dict[int, list[int]] = defaultdict(list)
        for chat, update_id in arrival:
            expected[chat].append(update_id)
        started: dict[int, list[int]] = defaultdict(list)
        running: dict[int, int | None] = defaultdict(lambda: None)
        for kind, chat, update_id in self.events:
            if kind == "start":
                assert running[chat] is None, f"overlap in chat {chat}"
                running[chat] = update_id
                started[chat].append(update_id)
            else:
                assert running[chat] == update_id
                running[chat] = None
        assert started == expected


def _arrivals(chats: int, per_chat: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    order = [chat for chat in range(1, chats + 1) for _ in range(per_chat)]
    rng.shuffle(order)
    return [(chat, update_id) for update_id, chat in enumerate(order)]


@pytest.mark.parametrize("limit", [3, 256])
async def test_order_kept_within_chat_and_chats_overlap(limit: int) -> None:
    # limit=3 makes tasks queue on PTB's semaphore as well as on the chat locks.
    processor = PerChatUpdateProcessor(limit)
    journal = Journal()
    rng = random.Random(limit)
    arrival = _arrivals(chats=12, per_chat=15, seed=limit)

    # As PTB's Application does: one task per update, created in arrival order.
    tasks = [
        asyncio.create_task(
            processor.process_update(
                _message_update(update_id, chat),
                journal.handle(chat, update_id, rng.uniform(0, 0.004)),
            )
        )
        for chat, update_id in arrival
    ]
    await asyncio.gather(*tasks)

    journal.check(arrival)
    assert journal.max_active > 1
    assert journal.max_active <= limit
    assert processor.active_chats == 0


async def test_lock_table_is_empty_after_a_thousand_chats() -> None:
    processor = PerChatUpdateProcessor(64)
    journal = Journal()
    arrival = [(chat, chat) for chat in range(1, 1001)] + [(7, 1001), (7, 1002)]
    in_flight_seen: list[int] = []

    async def handle(chat: int, update_id: int) -> None:
        in_flight_seen.append(processor.active_chats)
        await journal.handle(chat, update_id, 0)

    await asyncio.gather(
        *(processor.process_update(_message_update(u, c), handle(c, u)) for c, u in arrival)
    )

    journal.check(arrival)
    assert max(in_flight_seen) > 1
    assert processor.active_chats == 0


async def test_through_ptb_application_in_arrival_order() -> None:
    journal = Journal()
    rng = random.Random(5)
    arrival = _arrivals(chats=6, per_chat=10, seed=5)
    processor = PerChatUpdateProcessor(4)

    async def callback(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await journal.handle(update.effective_chat.id, update.update_id, rng.uniform(0, 0.004))

    app = (
        ApplicationBuilder()
        .token("1:FAKE")
        .request(_GetMeOnly())
        .get_updates_request(_GetMeOnly())
        .updater(None)
        .concurrent_updates(processor)
        .build()
    )
    app.add_handler(TypeHandler(Update, callback))
    async with app:
        await app.start()
        for chat, update_id in arrival:
            await app.update_queue.put(_message_update(update_id, chat))
        await asyncio.wait_for(app.update_queue.join(), timeout=10)
        await app.stop()

    journal.check(arrival)
    assert journal.max_active > 1
    assert processor.active_chats == 0


async def test_failure_releases_the_chat() -> None:
    processor = PerChatUpdateProcessor(8)
    journal = Journal()

    async def fail() -> None:
        raise RuntimeError("handler failed")

    first = asyncio.create_task(processor.process_update(_message_update(1, 9), fail()))
    second = asyncio.create_task(
        processor.process_update(_message_update(2, 9), journal.handle(9, 2, 0))
    )
    with pytest.raises(RuntimeError):
        await first
    await second
    assert journal.events == [("start", 9, 2), ("end", 9, 2)]
    assert processor.active_chats == 0


async def test_cancelled_waiter_leaves_no_lock_and_no_unawaited_coroutine() -> None:
    processor = PerChatUpdateProcessor(8)
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    async def never() -> None:
        raise AssertionError("a cancelled update must not run")

    waiting = never()
    holder = asyncio.create_task(processor.process_update(_message_update(1, 3), hold()))
    waiter = asyncio.create_task(processor.process_update(_message_update(2, 3), waiting))
    await asyncio.sleep(0)
    assert processor.active_chats == 1

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED
    assert processor.active_chats == 1

    gate.set()
    await holder
    assert processor.active_chats == 0


async def test_updates_without_chat_or_user_share_one_turn() -> None:
    processor = PerChatUpdateProcessor(8)
    journal = Journal()
    updates = [Update(update_id=i) for i in range(5)]
    await asyncio.gather(
        *(processor.process_update(u, journal.handle(0, u.update_id, 0.002)) for u in updates)
    )
    journal.check([(0, u.update_id) for u in updates])


def test_chat_key() -> None:
    user = User(id=55, first_name="someone", is_bot=False)
    inline = Update(update_id=2, inline_query=InlineQuery("q", user, "text", "0"))
    assert chat_key(_message_update(1, -100123)) == -100123
    assert chat_key(inline) == 55
    assert chat_key(Update(update_id=3)) is NO_CHAT
    assert chat_key(object()) is NO_CHAT


def test_limit_is_passed_to_ptb() -> None:
    assert PerChatUpdateProcessor(7).max_concurrent_updates == 7
    with pytest.raises(ValueError):
        PerChatUpdateProcessor(0)


_GET_ME = b'{"ok": true, "result": {"id": 1, "is_bot": true, "first_name": "b"}}'


class _GetMeOnly(BaseRequest):
    """Answers getMe so an Application can start without a network."""

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        assert url.endswith("/getMe")
        return 200, _GET_ME
