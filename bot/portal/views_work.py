"""The inbox and one request: claim, open, outcome, close, release, reassign."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from bot.portal import work
from bot.portal.answers import CLOSE_REASONS, OUTCOMES, STATUSES
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import need_viewer, page
from bot.portal.i18n import ngettext
from bot.portal.state import PORTAL
from bot.portal.views_auth import form_text
from storage import portal as q
from storage.db import transaction
from storage.dialect import aware

routes = web.RouteTableDef()


def age(created: dt.datetime, now: dt.datetime) -> str:
    minutes = max(0, int((now - aware(created)).total_seconds() // 60))
    if minutes < 60:
        return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    hours = minutes // 60
    if hours < 48:
        return ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    days = hours // 24
    return ngettext("{n} day", "{n} days", days).format(n=days)


def _request_url(request_id: str) -> str:
    return f"{PORTAL_PATH}/requests/{request_id}"


@routes.get("/inbox")
async def inbox(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    portal = request.app[PORTAL]
    view = request.query.get("view", "unassigned")
    if view not in q.VIEWS:
        view = "unassigned"
    now = portal.clock()
    async with transaction(portal.sessions) as session:
        rows = await q.inbox(session, viewer.advocate.organisation, view, viewer.advocate.id, now)
    return page(
        request,
        "inbox.html",
        view=view,
        rows=rows,
        now=now,
        age=age,
        short_ref=work.short_ref,
        statuses=STATUSES,
        url=_request_url,
    )


@routes.get("/requests/{rid}")
async def show_request(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    portal = request.app[PORTAL]
    try:
        shown = await work.view(portal, viewer, request.match_info["rid"])
    except work.NotFound:
        raise web.HTTPNotFound() from None
    colleagues = []
    if viewer.advocate.is_admin:
        async with transaction(portal.sessions) as session:
            colleagues = [
                a
                for a in await q.list_advocates(session, viewer.advocate.organisation)
                if a.set_up_at is not None
            ]
    return page(
        request,
        "request.html",
        shown=shown,
        ref=work.short_ref(shown.request.id),
        age=age(shown.request.created_at, portal.clock()),
        statuses=STATUSES,
        outcomes=OUTCOMES,
        reasons=CLOSE_REASONS,
        colleagues=colleagues,
        flash=request.query.get("said", ""),
    )


def _back(request_id: str, said: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(_request_url(request_id) + (f"?said={said}" if said else ""))


@routes.post("/requests/{rid}/claim")
async def claim(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    rid = request.match_info["rid"]
    try:
        ok = await work.claim(request.app[PORTAL], viewer, rid)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "" if ok else "taken")


@routes.post("/requests/{rid}/release")
async def release(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    rid = request.match_info["rid"]
    try:
        await work.release(request.app[PORTAL], viewer, rid)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/inbox")


@routes.post("/requests/{rid}/outcome")
async def outcome(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    rid = request.match_info["rid"]
    form = await request.post()
    what = form_text(form, "outcome", 32)
    reason = form_text(form, "reason", 32) or None
    try:
        ok = await work.record_outcome(request.app[PORTAL], viewer, rid, what, reason)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "recorded" if ok else "not_recorded")


@routes.post("/requests/{rid}/reassign")
async def reassign(request: web.Request) -> web.Response:
    viewer = need_viewer(request)
    rid = request.match_info["rid"]
    form = await request.post()
    if not viewer.advocate.is_admin:
        raise web.HTTPNotFound()
    try:
        ok = await work.reassign(request.app[PORTAL], viewer, rid, form_text(form, "to", 32))
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "reassigned" if ok else "not_reassigned")
