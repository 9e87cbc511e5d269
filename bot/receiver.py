"""Receipt: an update is stored in the durable inbox before Telegram is told it arrived.

Both the webhook (its 2xx) and the poller (its next offset) go through `Receiver.receive`:
translate and check each update, store the batch in one transaction, hand the chats to the
inbox scheduler, and stop the spinner on pressed buttons. If storing fails, nothing is
acknowledged and Telegram delivers the updates again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from telegram import Update

from bot.inbox import InboxScheduler
from bot.service import ConversationService, Incoming
from bot.telegram import BadUpdate, TelegramChannel, incoming, press_id

log = logging.getLogger("safebot.receiver")


class Receiver:
    def __init__(
        self, service: ConversationService, scheduler: InboxScheduler, channel: TelegramChannel
    ) -> None:
        self.service = service
        self.scheduler = scheduler
        self.channel = channel
        self._acks: set[asyncio.Task[None]] = set()

    async def receive(self, updates: Sequence[Update]) -> int:
        """Store what needs an answer; return how many were stored. Raises if the database
        cannot take them (the caller must then not acknowledge)."""
        batch: list[Incoming] = []
        presses: list[str] = []
        for update in updates:
            try:
                item = incoming(update)
            except BadUpdate as exc:
                log.warning("update refused: bad %s", exc)
                continue
            if item is None:
                continue
            batch.append(item)
            pid = press_id(update)
            if pid is not None:
                presses.append(pid)
        if not batch:
            return 0
        stored = await self.service.receive(batch)
        self.scheduler.notify(stored)
        for pid in presses:
            # The press is safe in the inbox: stop its spinner now, not after the turn and
            # the person's paced replies.
            task = asyncio.create_task(self.channel.acknowledge(pid))
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)
        return len(batch)
