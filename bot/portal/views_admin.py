"""For an organisation's admins: the team (invite, grant access, remove), unlocking with the
organisation's identity file, and the organisation's audit log."""

from __future__ import annotations

from aiohttp import web

from bot.portal import accounts
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import need_admin, page
from bot.portal.i18n import _
from bot.portal.state import PORTAL
from bot.portal.views_auth import form_text
from bot.portal.work import sweep
from storage import audit
from storage import portal as q
from storage.db import transaction

routes = web.RouteTableDef()
MAX_IDENTITY_BYTES = 64 * 1024
# The team form's choice -> (role, is_admin).
INVITE_ROLES = {
    "advocate": (q.ROLE_ADVOCATE, False),
    "admin": (q.ROLE_ADVOCATE, True),
    "outreach": (q.ROLE_OUTREACH, False),
}


async def _team_page(
    request: web.Request, *, error: str = "", link: str = "", link_name: str = ""
) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    async with transaction(portal.sessions) as session:
        team = await q.list_advocates(session, viewer.advocate.organisation)
        granted = await q.granted_advocates(session, viewer.advocate.organisation)
    return page(
        request,
        "team.html",
        team=team,
        granted=granted,
        error=error,
        link=link,
        link_name=link_name,
    )


@routes.get("/team")
async def team(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    link, name = request.app[PORTAL].new_links.pop(viewer.session_hash, ("", ""))
    return await _team_page(request, link=link, link_name=name)


@routes.post("/team/add")
async def add(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    form = await request.post()
    name = form_text(form, "name", 120).strip()
    if not name:
        return await _team_page(request, error=_("Give the new person's name."))
    choice = INVITE_ROLES.get(form_text(form, "role", 16))
    if choice is None:
        return await _team_page(request, error=_("Choose the new person's role."))
    role, is_admin = choice
    _advocate, link = await accounts.invite(
        portal.sessions,
        portal.settings,
        portal.secrets,
        organisation=viewer.advocate.organisation,
        name=name,
        is_admin=is_admin,
        now=portal.clock(),
        actor=viewer.advocate.id,
        role=role,
    )
    # Post/redirect/get: the link is shown once, and a reload does not invite again.
    portal.new_links[viewer.session_hash] = (link, name)
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/team")


@routes.post("/team/{aid}/grant")
async def grant(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    try:
        ok = await accounts.grant_access(
            portal.sessions,
            portal.secrets,
            viewer.advocate,
            list(viewer.keys.values()),
            request.match_info["aid"],
            portal.clock(),
        )
    except q.GrantRefused:
        message = _("An outreach worker never gets access to the requests.")
        return await _team_page(request, error=message)
    if not ok:
        message = _("Access was not granted: unlock the organisation key first.")
        return await _team_page(request, error=message)
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/team")


@routes.post("/team/{aid}/remove")
async def remove(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    aid = request.match_info["aid"]
    removed = await accounts.remove(
        portal.sessions,
        portal.secrets,
        aid,
        portal.clock(),
        actor=viewer.advocate.id,
        organisation=viewer.advocate.organisation,
    )
    if removed is None:
        raise web.HTTPNotFound()
    # Her sessions are gone from the database; drop their keys from this process now (other
    # processes drop theirs at their next sweep, or at her next request).
    await sweep(portal)
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/team")


@routes.get("/unlock")
async def unlock_page(request: web.Request) -> web.Response:
    need_admin(request)
    return page(request, "unlock.html")


@routes.post("/unlock")
async def unlock(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    form = await request.post()
    upload = form.get("identity")
    data = b""
    if isinstance(upload, web.FileField):
        data = upload.file.read(MAX_IDENTITY_BYTES + 1)
    if not data or len(data) > MAX_IDENTITY_BYTES:
        return page(request, "unlock.html", status=400, error=_("Choose the identity file."))
    try:
        key = await accounts.unlock_with_identity(
            portal.sessions,
            portal.secrets,
            viewer.advocate,
            data,
            form_text(form, "passphrase"),
            portal.clock(),
            portal.deployment.key_pins,
        )
    except accounts.IdentityRefused as exc:
        message = _("The identity file was refused: {why}.").format(why=str(exc))
        return page(request, "unlock.html", status=400, error=message)
    portal.keys.add(viewer.session_hash, [key])
    raise web.HTTPSeeOther(f"{PORTAL_PATH}/inbox")


@routes.get("/audit")
async def audit_log(request: web.Request) -> web.Response:
    viewer = need_admin(request)
    portal = request.app[PORTAL]
    async with transaction(portal.sessions) as session:
        entries = await audit.for_organisation(session, viewer.advocate.organisation)
        names = {
            a.id: a.display_name
            for a in await q.list_advocates(session, viewer.advocate.organisation, removed=True)
        }
        report = await audit.verify(session, portal.secrets.audit)
    return page(request, "audit.html", entries=entries, names=names, report=report)
