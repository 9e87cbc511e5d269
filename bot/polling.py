"""Long polling that confirms an update to Telegram only after it has been handled.

PTB's Updater confirms a batch (the next getUpdates offset) as soon as it has fetched it, so a
process killed mid-turn loses that update: a victim's "Send" could vanish with no answer at
all. Here an update id is confirmed only once its turn has committed (or failed for good), so
after a crash Telegram delivers it again and the database's unique update id makes the
redelivery harmless. Updates still run concurrently across chats and in order within one,
through the application's update processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot.ratelimit import retry_after_seconds

log = logging.getLogger("safebot.polling")


class ConfirmingPoller:
    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        *,
        allowed_updates: list[str],
        timeout: int = 10,
    ) -> None:
        self.application = application
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._highest = -1
        self._task: asyncio.Task[None] | None = None

    def offset(self) -> int | None:
        """The lowest update id not yet handled: Telegram forgets everything below it."""
        if self._inflight:
            return min(self._inflight)
        return self._highest + 1 if self._highest >= 0 else None

    async def start(self) -> None:
        await self.application.bot.delete_webhook(drop_pending_updates=False)
        self._task = asyncio.create_task(self._run(), name="safebot-polling")

    async def stop(self, grace: float = 10.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        # Confirm what was handled, so a clean restart does not see it again.
        with contextlib.suppress(TelegramError):
            await self.application.bot.get_updates(offset=self.offset(), timeout=0, limit=1)

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                updates = await self.application.bot.get_updates(
                    offset=self.offset(),
                    timeout=self.timeout,
                    allowed_updates=self.allowed_updates,
                )
                delay = 1.0
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except (NetworkError, TelegramError) as exc:
                log.warning("getUpdates failed: %s; retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            fresh = [u for u in updates if self._dispatch(u)]
            if updates and not fresh and self._inflight:
                # Only updates still being handled came back: Telegram answers those at once,
                # so wait for one of them to finish (or a moment) instead of asking again in a
                # tight loop.
                await asyncio.wait(
                    list(self._inflight.values()), timeout=0.3, return_when=asyncio.FIRST_COMPLETED
                )

    def _dispatch(self, update: Update) -> bool:
        uid = update.update_id
        if uid in self._inflight or uid <= self._highest:
            return False  # fetched again while still being handled, or already handled
        self._highest = max(self._highest, uid)
        task = asyncio.create_task(self._handle(update))
        self._inflight[uid] = task
        task.add_done_callback(lambda _t: self._inflight.pop(uid, None))
        return True

    async def _handle(self, update: Update) -> None:
        app = self.application
        await app.update_processor.process_update(update, app.process_update(update))
