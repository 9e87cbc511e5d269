"""Composition root: the only place that reads settings and builds the pieces.

No singletons and no work at import. `build_core` makes what every command needs (flow,
catalogues, deployment, database, secrets, conversation service); `start_server` adds the web
server, the Telegram application and the background jobs, and returns a handle to stop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets as secrets_module
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.error import (
    BadRequest,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application

from bot.config import ConfigError, Settings, load_deployment
from bot.inbox import InboxScheduler, Receiver
from bot.keyring import ensure_keys, key_problems, missing_keys, trusted_signers
from bot.notices import NoticeWorker
from bot.outbox import OutboxSender
from bot.polling import StoringPoller
from bot.portal.app import mount_portal
from bot.portal.config import load_portal_secrets, load_portal_settings
from bot.portal.state import Portal
from bot.ratelimit import retry_after_seconds
from bot.service import ConversationService, ServerSecrets, TurnResult
from bot.telegram import (
    ALLOWED_UPDATES,
    TelegramChannel,
    build_application,
    set_commands,
    set_profile,
)
from bot.web.server import add_webhook, build_web_app
from flows.check import check_flow
from flows.definition import load_flow
from flows.engine import Context
from flows.i18n import load_catalogs
from storage.db import create_engine, ping, session_factory
from storage.dialect import is_sqlite
from storage.migrate import upgrade_async
from storage.opening import require_existing, sqlite_path
from storage.retention import purge
from storage.server_secrets import (
    beside_database,
    beside_database_line,
    load_or_create,
    load_or_create_signing_key,
    load_or_create_token,
)

log = logging.getLogger("safebot")


@dataclass(frozen=True)
class Core:
    settings: Settings
    ctx: Context
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    service: ConversationService

    async def close(self) -> None:
        await self.engine.dispose()


def build_context(settings: Settings, *, check: bool = True) -> Context:
    flow = load_flow()
    catalogs = load_catalogs()
    deployment = load_deployment(settings.config_path)  # also refuses a language without catalogue
    ctx = Context(
        flow=flow,
        deployment=deployment,
        catalogs=catalogs,
        draft_minutes=max(1, int(settings.draft_ttl.total_seconds() // 60)),
        state_hours=max(1, int(settings.state_ttl.total_seconds() // 3600)),
    )
    # A screen over Telegram's limits, a changed placeholder or a missing translation would
    # fail in front of a victim: refuse to start instead, naming every problem.
    issues = check_flow(ctx) if check else []
    if issues:
        shown = "\n  - ".join(str(i) for i in issues[:30])
        more = f"\n  ... and {len(issues) - 30} more" if len(issues) > 30 else ""
        raise ConfigError(
            f"the flow is not fit to serve ({len(issues)} issues):\n  - {shown}{more}"
        )
    return ctx


async def build_core(
    settings: Settings, *, migrate: bool = True, require_keys: bool = False
) -> Core:
    """`migrate`: create or migrate the database (run, chat, migrate); otherwise it must exist
    already. `require_keys`: refuse a real deployment whose receiving organisations cannot
    all be sent a request (run)."""
    if not migrate:
        await require_existing(settings.database_url)
    ctx = build_context(settings)
    if migrate:
        make_data_dir(settings.data_dir)
        if settings.secrets_dir is not None:
            make_data_dir(settings.secrets_dir)
        await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        signing_key = load_or_create_signing_key(settings.secret_files, settings.signing_key)
        if require_keys and not ctx.deployment.fictional:
            problems = await key_problems(sessions, ctx.deployment, signing_key.verify_key)
            if problems:
                raise ConfigError("; ".join(problems))
        where = settings.secret_files
        secrets = ServerSecrets(
            user_hash_key=load_or_create(where, "user-hash", settings.user_hash_key),
            draft_key=load_or_create(where, "draft", settings.draft_key),
            lookup_key=load_or_create(where, "lookup", settings.lookup_key),
            signing_key=signing_key,
        )
        await ensure_keys(sessions, ctx.deployment, settings.data_dir, signing_key.verify_key)
        if not ctx.deployment.fictional:
            beside = beside_database(settings.secret_files, sqlite_path(settings.database_url))
            if beside:
                log.warning(beside_database_line(beside, settings.secret_files))
    except BaseException:
        await engine.dispose()
        raise
    service = ConversationService(
        ctx,
        sessions,
        secrets,
        state_ttl=settings.state_ttl,
        draft_ttl=settings.draft_ttl,
        engine=engine,
        owner=secrets_module.token_hex(8),
    )
    return Core(settings=settings, ctx=ctx, engine=engine, sessions=sessions, service=service)


def make_data_dir(data_dir: Path) -> None:
    """The data directory holds the database (and, unless SAFEBOT_SECRETS_DIR moves them, the
    server's secrets): owner-only (0700), also when an older version or another umask made it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data_dir.stat().st_uid == os.getuid():
        data_dir.chmod(0o700)


async def readiness(core: Core) -> list[str]:
    """Why the server is not ready to take requests (empty: ready). No ids, no personal data."""
    if not await ping(core.engine):
        return ["database unreachable"]
    try:
        missing = await missing_keys(core.sessions, core.ctx.deployment)
    except Exception:
        return ["database unreachable"]
    return [f"organisation {org!r} has no active key" for org in missing]


@dataclass
class Delivery:
    """The moving parts between Telegram and the turn runner, for one bot."""

    telegram: Application  # type: ignore[type-arg]
    channel: TelegramChannel
    sender: OutboxSender
    scheduler: InboxScheduler
    receiver: Receiver
    notices: NoticeWorker


def build_portal_state(core: Core) -> Portal:
    """The advocates' portal, on the same server and database as the bot."""
    return Portal(
        sessions=core.sessions,
        settings=load_portal_settings(core.settings),
        secrets=load_portal_secrets(core.settings),
        flow=core.ctx.flow,
        deployment=core.ctx.deployment,
        verify_keys=trusted_signers(core.ctx.deployment, core.service.secrets.signing_key),
        catalogs=core.ctx.catalogs,
    )


def build_delivery(core: Core) -> Delivery:
    settings = core.settings
    assert settings.token is not None
    telegram = build_application(settings.token, settings.api_base_url)
    channel = TelegramChannel(telegram.bot)
    sender = OutboxSender(
        channel,
        core.sessions,
        chat_rate=settings.chat_send_rate,
        overall_rate=settings.send_rate,
        owner=core.service.owner or "",
        shared=not is_sqlite(core.engine),
    )
    notices = NoticeWorker(telegram.bot, core.sessions, core.ctx.deployment)

    def on_turn(turn: TurnResult) -> None:
        if turn.request_stored:
            notices.wake()

    scheduler = InboxScheduler(core.service, sender, on_turn=on_turn)
    receiver = Receiver(core.service, scheduler, channel)
    return Delivery(telegram, channel, sender, scheduler, receiver, notices)


@dataclass
class RunningServer:
    core: Core
    runner: web.AppRunner
    delivery: Delivery | None

    @property
    def telegram(self) -> Application | None:  # type: ignore[type-arg]
        return None if self.delivery is None else self.delivery.telegram

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.core.close()


async def start_server(settings: Settings) -> RunningServer:
    core = await build_core(settings, require_keys=True)
    app = build_web_app(core.engine, lambda: readiness(core))
    mount_portal(app, build_portal_state(core))
    parts = None
    if settings.token:
        parts = build_delivery(core)
        where = settings.secret_files
        secret = load_or_create_token(where, "webhook-secret", settings.webhook_secret)
        if settings.webhook_url is not None:
            add_webhook(app, settings.webhook_path, parts.telegram.bot, parts.receiver, secret)
        app.cleanup_ctx.append(_telegram_lifecycle(core, parts, secret))
    app.cleanup_ctx.append(_retention_lifecycle(core))
    runner = web.AppRunner(app, access_log=None)  # access logs would carry the webhook path
    try:
        await runner.setup()  # connects to Telegram (retrying while it is unreachable)
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError as exc:
        await runner.cleanup()
        await core.close()
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
            "(SAFEBOT_HOST, SAFEBOT_PORT)"
        ) from None
    except BaseException:
        await runner.cleanup()
        await core.close()
        raise
    log.info(
        "serving on http://%s:%d (%s)",
        settings.host,
        settings.port,
        "no Telegram token" if parts is None else "webhook" if settings.webhook_url else "polling",
    )
    return RunningServer(core=core, runner=runner, delivery=parts)


def _telegram_lifecycle(core: Core, parts: Delivery, secret: str):  # type: ignore[no-untyped-def]
    settings = core.settings
    telegram = parts.telegram

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await connect(telegram, settings.api_base_url)
        try:
            await set_commands(telegram, core.ctx)
        except TelegramError as exc:
            log.warning("could not set the command menu: %s", type(exc).__name__)
        try:
            await set_profile(telegram, core.ctx)
        except TelegramError as exc:
            log.warning("could not set the bot's name and description: %s", type(exc).__name__)
        # What the last run committed but did not deliver, and what it stored but did not
        # handle, goes first.
        replies = await parts.sender.load(core.service.open_queued)
        updates = await parts.scheduler.load()
        if replies or updates:
            log.info("resuming: %d stored updates, %d undelivered replies", updates, replies)
        parts.sender.start()
        parts.scheduler.start()
        poller = None
        if settings.webhook_url:
            await telegram.bot.set_webhook(
                settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            poller = StoringPoller(
                telegram, parts.receiver, allowed_updates=ALLOWED_UPDATES, engine=core.engine
            )
            await poller.start()
        task = asyncio.create_task(parts.notices.run())
        yield
        if poller is not None:
            await poller.stop()
        await parts.scheduler.stop()
        await parts.sender.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await telegram.shutdown()

    return lifecycle


async def connect(
    telegram: Application,  # type: ignore[type-arg]
    api_base_url: str,
    *,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
) -> None:
    """The first Bot API call (getMe), retried with backoff while Telegram cannot be reached:
    a network outage at start-up must not crash the bot. A refused token is final."""
    host = urlparse(api_base_url).netloc or api_base_url
    try:
        await _get_me(telegram, host, first_delay, max_delay)
    except BaseException:
        await telegram.bot.shutdown()  # the HTTP sessions getMe opened
        raise


async def _get_me(
    telegram: Application,  # type: ignore[type-arg]
    host: str,
    first_delay: float,
    max_delay: float,
) -> None:
    delay, attempt = first_delay, 1
    while True:
        try:
            await telegram.initialize()
            return
        except InvalidToken:
            # Never show the exception: its text carries the token.
            raise ConfigError(
                f"Telegram ({host}) refused TELEGRAM_BOT_TOKEN: check the token from @BotFather"
            ) from None
        except RetryAfter as exc:
            wait = max(retry_after_seconds(exc), delay)
            why = "RetryAfter"
        except (NetworkError, TimedOut) as exc:
            if isinstance(exc, BadRequest):
                raise ConfigError(f"Telegram ({host}) refused getMe: {exc.message}") from None
            wait, why = delay, type(exc).__name__
            delay = min(delay * 2, max_delay)
        log.warning(
            "Telegram unreachable at %s (%s); retrying in %.0f s (attempt %d)",
            host,
            why,
            wait,
            attempt,
        )
        await asyncio.sleep(wait)
        attempt += 1


def _retention_lifecycle(core: Core):  # type: ignore[no-untyped-def]
    async def loop() -> None:
        interval = core.settings.retention_interval.total_seconds()
        closed = dt.timedelta(days=core.ctx.deployment.closed_retention_days)
        while True:
            try:
                report = await purge(
                    core.engine, core.sessions, dt.datetime.now(dt.UTC), closed_retention=closed
                )
                log.info("retention purge %s", report)
            except Exception:
                log.exception("retention purge failed")
            await asyncio.sleep(interval)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return lifecycle


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    # A stop while starting (Telegram may be unreachable for a while) ends the start cleanly.
    starting = asyncio.create_task(start_server(settings))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return
    stopped.cancel()
    server = starting.result()
    try:
        await stop.wait()
    finally:
        await server.stop()
