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
import secrets as secrets_module
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram.error import TelegramError
from telegram.ext import Application

from bot.config import ConfigError, Settings, load_deployment
from bot.inbox import InboxScheduler, Receiver
from bot.keyring import ensure_keys
from bot.notices import NoticeWorker
from bot.outbox import OutboxSender
from bot.polling import StoringPoller
from bot.service import ConversationService, ServerSecrets, TurnResult
from bot.telegram import ALLOWED_UPDATES, TelegramChannel, build_application, set_commands
from bot.web.server import add_webhook, build_web_app
from flows.check import check_flow
from flows.definition import load_flow
from flows.engine import Context
from flows.i18n import load_catalogs
from storage.db import create_engine, is_sqlite, session_factory
from storage.migrate import upgrade_async
from storage.retention import purge
from storage.server_secrets import load_or_create, load_or_create_token

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
    deployment = load_deployment(settings.config_path)
    missing = [c for c in deployment.languages if c not in catalogs.languages]
    if missing:
        raise ConfigError(f"deployment enables languages with no catalogue: {', '.join(missing)}")
    ctx = Context(flow=flow, deployment=deployment, catalogs=catalogs)
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


async def build_core(settings: Settings, *, migrate: bool = True) -> Core:
    ctx = build_context(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if migrate:
        await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    secrets = ServerSecrets(
        user_hash_key=load_or_create(settings.data_dir, "user-hash", settings.user_hash_key),
        draft_key=load_or_create(settings.data_dir, "draft", settings.draft_key),
        lookup_key=load_or_create(settings.data_dir, "lookup", settings.lookup_key),
    )
    await ensure_keys(sessions, ctx.deployment, settings.data_dir)
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


@dataclass
class Delivery:
    """The moving parts between Telegram and the turn runner, for one bot."""

    telegram: Application  # type: ignore[type-arg]
    channel: TelegramChannel
    sender: OutboxSender
    scheduler: InboxScheduler
    receiver: Receiver
    notices: NoticeWorker


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
    core = await build_core(settings)
    app = build_web_app(core.engine)
    parts = None
    if settings.token:
        parts = build_delivery(core)
        secret = load_or_create_token(settings.data_dir, "webhook-secret", settings.webhook_secret)
        if settings.webhook_url is not None:
            add_webhook(app, settings.webhook_path, parts.telegram.bot, parts.receiver, secret)
        app.cleanup_ctx.append(_telegram_lifecycle(core, parts, secret))
    app.cleanup_ctx.append(_retention_lifecycle(core))
    runner = web.AppRunner(app, access_log=None)  # access logs would carry the webhook path
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
    except OSError:
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
        await telegram.initialize()
        try:
            await set_commands(telegram, core.ctx)
        except TelegramError as exc:
            log.warning("could not set the command menu: %s", type(exc).__name__)
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
    server = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
