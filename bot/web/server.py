"""The aiohttp web server: health; the Telegram webhook when configured. The advocates' portal
is mounted on the same application under /portal/ (bot/portal/app.py, by bot/app.py).

Webhook rules:
1. Check Telegram's secret-token header in constant time: anything else, a header that is not
   plain text included, gets 403 and nothing more.
2. A body that is not one JSON object that python-telegram-bot can read as an update, with
   the types Telegram uses, gets 400 (never a 500 with a traceback).
3. Store the update in the durable inbox, then answer 200. If it cannot be stored the answer
   is 503, so Telegram delivers it again; a redelivery of a stored update is harmless.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Bot, Update

from bot.inbox import Receiver
from storage.db import ping

log = logging.getLogger("safebot.web")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024
MAX_DEPTH = 32  # Telegram's updates nest a handful of levels; deeper is not from Telegram
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine", AsyncEngine)
RECEIVER: web.AppKey[Receiver] = web.AppKey("receiver", Receiver)
BOT: web.AppKey[Bot] = web.AppKey("bot", Bot)
WEBHOOK_SECRET: web.AppKey[str] = web.AppKey("webhook_secret", str)
# What keeps the server from being ready: an empty list when it is.
Readiness = Callable[[], Awaitable[list[str]]]
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
HEALTH_TIMEOUT = 5.0


async def database_only(engine: AsyncEngine) -> list[str]:
    return [] if await ping(engine) else ["database unreachable"]


async def health(request: web.Request) -> web.Response:
    """200 `{"status": "ok"}` only when ready; else 503 with the reasons (no ids, no
    personal data), e.g. a receiving organisation without a key."""
    try:
        reasons = await asyncio.wait_for(request.app[READINESS](), HEALTH_TIMEOUT)
    except Exception as exc:
        log.warning("readiness check failed: %s", type(exc).__name__)
        reasons = ["readiness check failed"]
    if reasons:
        return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ok"})


def _secret_ok(request: web.Request) -> bool:
    expected = request.app[WEBHOOK_SECRET].encode()
    try:
        given = request.headers.get(SECRET_HEADER, "").encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, expected)


def _depth(value: object, limit: int) -> bool:
    """True if `value` nests no deeper than `limit` (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_update(raw: bytes, bot: Bot) -> Update | None:
    """The update in a webhook body, or None if the body is not one."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not _depth(data, MAX_DEPTH):
        return None
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    try:
        return Update.de_json(data, bot)
    except Exception:
        # PTB assumes Telegram's types: a string where an object belongs raises inside it.
        return None


async def webhook(request: web.Request) -> web.Response:
    if not _secret_ok(request):
        log.warning("webhook call without the right secret token refused")
        return web.Response(status=403)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413)
    update = parse_update(raw, request.app[BOT])
    if update is None:
        log.warning("webhook body that is not an update refused")
        return web.Response(status=400)
    try:
        await request.app[RECEIVER].receive([update])
    except Exception as exc:
        log.error("webhook update not stored: %s", type(exc).__name__)
        return web.Response(status=503)
    return web.Response(status=200)


def build_web_app(engine: AsyncEngine, readiness: Readiness | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[ENGINE] = engine
    app[READINESS] = readiness or (lambda: database_only(engine))
    app.router.add_get("/health", health)
    return app


def add_webhook(app: web.Application, path: str, bot: Bot, receiver: Receiver, secret: str) -> None:
    app[BOT] = bot
    app[RECEIVER] = receiver
    app[WEBHOOK_SECRET] = secret
    app.router.add_post(path, webhook)
