"""The yardstick: a bare python-telegram-bot echo bot with an aiohttp transport (safebot's own
`AiohttpRequest`), polling, handling updates concurrently. No storage, no engine."""

from __future__ import annotations

import os

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.transport import AiohttpRequest


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


def main() -> None:
    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE_URL"])
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(read_timeout=40.0))
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling(timeout=10, poll_interval=0.0)


if __name__ == "__main__":
    main()
