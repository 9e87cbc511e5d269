"""The aiohttp web server: health now; the Telegram webhook when configured; the portal later.

Webhook rule: check Telegram's secret-token header in constant time (403 and nothing else
otherwise), put the update on PTB's queue and answer 200 at once. Handling inline would delay
the answer and make Telegram deliver the update again; redeliveries are recognised by the
database anyway.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.ext import Application

from storage.db import ping

log = logging.getLogger("safebot.web")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
TELEGRAM: web.AppKey[Application] = web.AppKey("telegram", Application)  # type: ignore[type-arg]
WEBHOOK_SECRET: web.AppKey[str] = web.AppKey("webhook_secret", str)


async def health(request: web.Request) -> web.Response:
    db_ok = await ping(request.app[ENGINE])
    body = {"status": "ok" if db_ok else "degraded", "database": db_ok}
    return web.json_response(body, status=200 if db_ok else 503)


async def webhook(request: web.Request) -> web.Response:
    expected = request.app[WEBHOOK_SECRET].encode()
    given = request.headers.get(SECRET_HEADER, "").encode()
    if not hmac.compare_digest(given, expected):
        log.warning("webhook call without the right secret token refused")
        return web.Response(status=403)
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.Response(status=400)
    application = request.app[TELEGRAM]
    update = Update.de_json(data, application.bot)
    if update is None:
        return web.Response(status=400)
    await application.update_queue.put(update)
    return web.Response(status=200)


def build_web_app(engine: AsyncEngine) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[ENGINE] = engine
    app.router.add_get("/health", health)
    return app


def add_webhook(app: web.Application, path: str, application: Application, secret: str) -> None:  # type: ignore[type-arg]
    app[TELEGRAM] = application
    app[WEBHOOK_SECRET] = secret
    app.router.add_post(path, webhook)
