"""The inbox and one request: claim, open, outcome, close, release, reassign, case notes."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from bot.portal import work
from bot.portal.answers import CLOSE_REASONS, OUTCOMES, STATUSES
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import need_advocate, page
from bot.portal.i18n import ngettext
from bot.portal.state import PORTAL, Viewer
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
    viewer = need_advocate(request)
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
    return await _request_page(request, need_advocate(request))


async def _request_page(
    request: web.Request,
    viewer: Viewer,
    *,
    status: int = 200,
    note_error: str = "",
    note_draft: str = "",
) -> web.Response:
    portal = request.app[PORTAL]
    try:
        shown = await work.view(portal, viewer, request.match_info["rid"])
    except work.NotFound:
        raise web.HTTPNotFound() from None
    colleagues = []
    if viewer.is_admin:
        async with transaction(portal.sessions) as session:
            colleagues = [
                a
                for a in await q.list_advocates(session, viewer.advocate.organisation)
                if a.set_up_at is not None and a.role == q.ROLE_ADVOCATE
            ]
    return page(
        request,
        "request.html",
        status=status,
        shown=shown,
        ref=work.short_ref(shown.request.id),
        age=age(shown.request.created_at, portal.clock()),
        statuses=STATUSES,
        outcomes=OUTCOMES,
        reasons=CLOSE_REASONS,
        colleagues=colleagues,
        flash=request.query.get("said", ""),
        note_limit=work.MAX_NOTE_CHARS,
        note_error=note_error,
        note_draft=note_draft,
    )


def _back(request_id: str, said: str = "") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(_request_url(request_id) + (f"?said={said}" if said else ""))


@routes.post("/requests/{rid}/claim")
async def claim(request: web.Request) -> web.Response:
    viewer = need_advocate(request)
    rid = request.match_info["rid"]
    try:
        ok = await work.claim(request.app[PORTAL], viewer, rid)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "" if ok else "taken")


@routes.post("/requests/{rid}/release")
async def release(request: web.Request) -> web.Response:
    viewer = need_advocate(request)
    rid = request.match_info["rid"]
    try:
        await work.release(request.app[PORTAL], viewer, rid)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/inbox")


@routes.post("/requests/{rid}/outcome")
async def outcome(request: web.Request) -> web.Response:
    viewer = need_advocate(request)
    rid = request.match_info["rid"]
    form = await request.post()
    what = form_text(form, "outcome", 32)
    reason = form_text(form, "reason", 32) or None
    try:
        ok = await work.record_outcome(request.app[PORTAL], viewer, rid, what, reason)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "recorded" if ok else "not_recorded")


# What the page says after a note was (not) stored; "empty" and "too_long" show the form again.
_NOTE_SAID = {"added": "note_added", "refused": "note_refused", "no_key": "note_no_key"}


@routes.post("/requests/{rid}/notes")
async def add_note(request: web.Request) -> web.Response:
    viewer = need_advocate(request)
    rid = request.match_info["rid"]
    form = await request.post()
    value = form.get("note")
    text = value if isinstance(value, str) else ""
    try:
        said = await work.add_note(request.app[PORTAL], viewer, rid, text)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    if said in _NOTE_SAID:
        raise _back(rid, _NOTE_SAID[said])
    # Shown again with what she wrote, so nothing typed is lost (it is not stored).
    return await _request_page(request, viewer, status=400, note_error=said, note_draft=text)


@routes.post("/requests/{rid}/reassign")
async def reassign(request: web.Request) -> web.Response:
    viewer = need_advocate(request)
    rid = request.match_info["rid"]
    form = await request.post()
    if not viewer.is_admin:
        raise web.HTTPNotFound()
    to = form_text(form, "to", 32)
    try:
        ok = await work.reassign(request.app[PORTAL], viewer, rid, to)
    except work.NotFound:
        raise web.HTTPNotFound() from None
    raise _back(rid, "reassigned" if ok else "not_reassigned")
