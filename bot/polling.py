"""Long polling with the durable inbox: store the batch, then confirm it at once.

With several processes on one PostgreSQL, one of them polls (it holds an advisory lock); the
others wait to take over if it dies, and meanwhile run turns and deliver replies like it.

PTB's Updater confirms a batch (the next getUpdates offset) as soon as it has fetched it, before
anything durable happened. Here the next offset is asked for only after the batch is committed
to the inbox, so a process killed at any moment has either not confirmed an update (Telegram
sends it again; its unique id makes that harmless) or has it stored (start-up drains it). It
never fetches the same update twice in normal running, because nothing waits for turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application

from bot.inbox import Receiver
from bot.ratelimit import retry_after_seconds
from storage.db import POLLER_LOCK, leadership

log = logging.getLogger("safebot.polling")


class StoringPoller:
    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        receiver: Receiver,
        *,
        allowed_updates: list[str],
        timeout: int = 10,
        engine: AsyncEngine | None = None,
    ) -> None:
        self.application = application
        self.receiver = receiver
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self.engine = engine  # several processes on PostgreSQL: only the leader polls
        self._offset: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.application.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._run(), name="safebot-polling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._offset is not None:
            # Confirm what is stored, so a clean restart is not sent it again.
            with contextlib.suppress(TelegramError):
                await self.application.bot.get_updates(offset=self._offset, timeout=0, limit=1)

    async def _run(self) -> None:
        if self.engine is None:
            await self._poll()
            return
        async with leadership(self.engine, POLLER_LOCK):
            log.info("this process polls Telegram")
            await self._poll()

    async def _poll(self) -> None:
        delay = 1.0
        while True:
            try:
                updates = await self.application.bot.get_updates(
                    offset=self._offset,
                    timeout=self.timeout,
                    allowed_updates=self.allowed_updates,
                )
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except TelegramError as exc:
                log.warning("getUpdates failed: %s; retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not updates:
                delay = 1.0
                continue
            try:
                await self.receiver.receive(updates)
            except Exception as exc:
                # Not stored, so not confirmed: Telegram keeps them and sends them again.
                log.error(
                    "could not store updates: %s; retrying in %.0f s", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            self._offset = max(u.update_id for u in updates) + 1
