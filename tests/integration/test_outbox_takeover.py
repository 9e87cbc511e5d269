"""Several processes (PostgreSQL): replies taken over from a dead process can be older than the
one this process is already sending. The newer one is refused as "not first in line"; the
older ones must then go first, or the chat stalls for good (found by the kill -9 crash test)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from bot.outbox import OutboxSender
from bot.service import Queued
from flows.replies import Reply
from storage import delivery
from storage.db import transaction
from tests.integration.support import Database, only_postgresql

CHAT = "c" * 64


class RecordingChannel:
    """Stands in for Telegram's servers: records what is delivered, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._ids = iter(range(1000, 2000))

    async def deliver(self, chat: int, reply: Reply) -> int:
        self.sent.append(reply.html)
        return next(self._ids)

    async def delete(self, chat: int, message_ids: Sequence[int]) -> None:
        return None

    async def acknowledge(self, press_id: str) -> None:
        return None


def queued(item_id: int, text: str) -> Queued:
    return Queued(item_id, CHAT, 2, "send", 42, (Reply(text),))


@only_postgresql
async def test_older_replies_taken_over_mid_send_go_first(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    async with transaction(db.sessions) as session:
        older, newer = await delivery.add_outgoing(
            session,
            CHAT,
            [delivery.Outgoing("send", 2, b"x"), delivery.Outgoing("send", 2, b"y")],
            now,
            owner="this-process",
        )
    channel = RecordingChannel()
    sender = OutboxSender(
        channel, db.sessions, owner="this-process", shared=True, chat_rate=100, chat_burst=100
    )
    sender.start()
    try:
        sender.submit([queued(newer, "newer")])
        # The newer reply is in flight (its order check runs) when the older one arrives, as
        # when the lease of a dead process's rows runs out and this process takes them over.
        for _ in range(100):
            await asyncio.sleep(0)
            if sender._chats[CHAT].busy:
                break
        assert sender._chats[CHAT].busy
        sender.submit([queued(older, "older")])
        await asyncio.wait_for(sender.wait_idle(), 10)
    finally:
        await sender.stop()
    assert channel.sent == ["older", "newer"]
