"""What every portal response goes through (one middleware):

1. Security headers on every response, errors and redirects included: a CSP with no inline
   script, no framing and forms only to ourselves; no referrer; nosniff; no-store.
2. The session: the cookie holds a random id, the database its hash, with idle and absolute
   time-outs. A dead session (expired, logged out, advocate removed) drops its keys from
   memory and its cookie. Cookies are HttpOnly, SameSite=Strict and, over https, Secure.
3. CSRF: every POST carries a token, an HMAC of the session id (or, before login, of a random
   pre-session cookie); a POST without the right one is refused with 403 before any handler
   runs.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from bot.portal import crypto
from bot.portal.config import PORTAL_PATH
from bot.portal.i18n import _
from bot.portal.state import PORTAL, Portal, Viewer
from storage import portal as q
from storage.db import transaction

log = logging.getLogger("safebot.portal")

SESSION_COOKIE = "sb_session"
PRE_COOKIE = "sb_pre"
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer")
CSRF: web.RequestKey[str] = web.RequestKey("csrf", str)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def csrf_token(portal: Portal, basis: str) -> str:
    return crypto.keyed(portal.secrets.csrf, "csrf", basis)[:40]


def _token(value: str | None) -> str | None:
    return value if value is not None and _TOKEN_RE.fullmatch(value) else None


async def load_viewer(portal: Portal, token: str | None) -> Viewer | None:
    if token is None:
        return None
    session_hash = crypto.token_hash(token)
    now = portal.clock()
    async with transaction(portal.sessions) as session:
        row = await q.touch_session(
            session,
            session_hash,
            now,
            idle=portal.settings.idle,
            absolute=portal.settings.absolute,
        )
        advocate = None if row is None else await q.active_advocate(session, row.advocate_id)
        if row is not None and advocate is None:
            await q.delete_session(session, session_hash)
    if advocate is None:
        portal.keys.drop(session_hash)
        return None
    return Viewer(advocate, session_hash, token, portal.keys.get(session_hash))


def set_cookie(response: web.StreamResponse, portal: Portal, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=PORTAL_PATH,
        httponly=True,
        samesite="Strict",
        secure=portal.settings.secure_cookies,
    )


def page(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    context.setdefault("viewer", request.get(VIEWER))
    context.setdefault("csrf", request.get(CSRF, ""))
    context.setdefault("_", _)
    return aiohttp_jinja2.render_template(template, request, context, status=status)


class RoleRefused(web.HTTPForbidden):
    """A page her role does not open: 403, and a page that says so (not the CSRF message).
    Raised before anything is looked up, so the answer is the same whether or not what the
    address names exists."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


def error_page(request: web.Request, status: int) -> web.Response:
    titles = {
        403: _("This form has expired. Go back, reload the page and try again."),
        404: _("There is nothing here."),
        405: _("That did not work."),
    }
    return page(request, "error.html", status=status, message=titles.get(status, _("Error")))


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    portal = request.app[PORTAL]
    if request.path.startswith(f"{PORTAL_PATH}/static/"):
        static = await handler(request)
        static.headers.update(HEADERS)
        return static
    pre = _token(request.cookies.get(PRE_COOKIE))
    new_pre = None
    if pre is None:
        pre = new_pre = crypto.token()
    given_session = _token(request.cookies.get(SESSION_COOKIE))
    viewer = await load_viewer(portal, given_session)
    request[VIEWER] = viewer
    request[CSRF] = csrf_token(portal, viewer.session_token if viewer else pre)
    response: web.StreamResponse
    try:
        if request.method == "POST" and not await _csrf_ok(request):
            log.warning("portal POST without a valid CSRF token refused")
            response = error_page(request, 403)
        else:
            response = await handler(request)
    except RoleRefused as exc:
        response = page(request, "error.html", status=403, message=exc.message)
    except web.HTTPException as exc:
        if exc.status in (403, 404, 405):
            response = error_page(request, exc.status)
        else:
            response = web.Response(status=exc.status, headers=exc.headers, text=exc.text)
            for name, morsel in exc.cookies.items():
                response.cookies[name] = morsel
    response.headers.update(HEADERS)
    if new_pre is not None:
        set_cookie(response, portal, PRE_COOKIE, new_pre)
    if given_session is not None and viewer is None and SESSION_COOKIE not in response.cookies:
        response.del_cookie(SESSION_COOKIE, path=PORTAL_PATH)
    return response


async def _csrf_ok(request: web.Request) -> bool:
    try:
        form = await request.post()
    except Exception:
        return False
    given = form.get("csrf")
    return isinstance(given, str) and hmac.compare_digest(given, request[CSRF])


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def need_viewer(request: web.Request) -> Viewer:
    """The logged-in advocate, or a redirect to the login page (and no data)."""
    viewer = request[VIEWER]
    if viewer is None:
        raise web.HTTPSeeOther(f"{PORTAL_PATH}/login")
    return viewer


def need_advocate(request: web.Request) -> Viewer:
    """A logged-in advocate or admin: an outreach account is refused (403) before anything
    about a request, the team or the audit log is read."""
    viewer = need_viewer(request)
    if viewer.is_outreach:
        raise RoleRefused(
            _("This page is for advocates. An outreach account sees the campaigns only.")
        )
    return viewer


def need_admin(request: web.Request) -> Viewer:
    viewer = need_advocate(request)
    if not viewer.is_admin:
        raise web.HTTPNotFound()
    return viewer


def need_campaigns(request: web.Request) -> Viewer:
    """An outreach worker or an admin. An advocate who is not an admin is refused: she sees
    the requests, and a campaign's counts beside them could tell her where a person she is
    helping picked up a link."""
    viewer = need_viewer(request)
    if not viewer.sees_campaigns:
        raise RoleRefused(_("The campaign pages are for outreach workers and admins."))
    return viewer
