"""Neutral "new request" notices to an organisation's Telegram group.

The notice carries no personal data: only the language and the urgent flag, which are in the
clear anyway. Notices sit in an outbox written in the request's own transaction, so a crash
cannot lose one; this worker sends them after the commit and retries what failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from babel import Locale
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot
from telegram.error import TelegramError

from flows.deployment import Deployment
from storage import queries
from storage.db import transaction

log = logging.getLogger("safebot.notices")


def notice_text(language: str, urgent: bool) -> str:
    try:
        name = Locale.parse(language).get_display_name("en") or language
    except (ValueError, TypeError):
        name = language
    return f"New contact request: {name}" + (", urgent" if urgent else "")


class NoticeWorker:
    def __init__(
        self, bot: Bot, sessions: async_sessionmaker[AsyncSession], deployment: Deployment
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.deployment = deployment
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def flush(self) -> int:
        sent = 0
        async with transaction(self.sessions) as session:
            for notice in await queries.claim_unsent_notices(session):
                try:
                    chat_id = self.deployment.organisation(notice.organisation).notify_chat_id
                except KeyError:
                    chat_id = None
                if chat_id is not None:
                    try:
                        await self.bot.send_message(
                            chat_id, notice_text(notice.language, notice.urgent)
                        )
                    except TelegramError as exc:
                        notice.attempts = (notice.attempts or 0) + 1
                        log.warning(
                            "notice not sent (attempt %d): %s", notice.attempts, type(exc).__name__
                        )
                        continue
                    sent += 1
                notice.sent_at = dt.datetime.now(dt.UTC)
        return sent

    async def run(self, interval: float = 30.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("notice flush failed")
