"""The portal as an aiohttp sub-application, mounted at /portal/ on the server that also
serves the bot's webhook and /health (bot/app.py builds it; one `safebot run` serves both)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.portal import i18n, views_admin, views_auth, views_outreach, views_work
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import guard
from bot.portal.i18n import _, ngettext
from bot.portal.state import PORTAL, Portal
from bot.portal.work import sweep

log = logging.getLogger("safebot.portal")
HERE = Path(__file__).parent
SWEEP_SECONDS = 30.0
MAX_UPLOAD = 256 * 1024  # an identity file is a few KB


def build_portal(portal: Portal, *, sweep_seconds: float = SWEEP_SECONDS) -> web.Application:
    i18n.use(i18n.load(portal.settings.language))
    app = web.Application(middlewares=[guard], client_max_size=MAX_UPLOAD)
    app[PORTAL] = portal
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
    )
    env.globals.update(_=_, ngettext=ngettext, base=PORTAL_PATH)
    for table in (views_auth.routes, views_work.routes, views_admin.routes, views_outreach.routes):
        app.add_routes(table)
    app.router.add_static("/static/", HERE / "static", append_version=False)
    app.cleanup_ctx.append(_sweeper(portal, sweep_seconds))
    return app


def mount_portal(app: web.Application, portal: Portal) -> web.Application:
    """Serve the portal under /portal/ on `app` (and /portal itself redirects there)."""
    sub = build_portal(portal)

    async def to_portal(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther(f"{PORTAL_PATH}/")

    app.router.add_get(PORTAL_PATH, to_portal)
    app.add_subapp(f"{PORTAL_PATH}/", sub)
    return sub


def _sweeper(portal: Portal, seconds: float):  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await sweep(portal)
            except Exception as exc:
                log.warning("portal sweep failed: %s", type(exc).__name__)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        portal.keys.clear()  # every unwrapped key goes with the server

    return lifecycle
