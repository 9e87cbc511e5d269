"""Log in, log out, and the one-time set-up (passphrase, TOTP enrolment, recovery codes)."""

from __future__ import annotations

import math

from aiohttp import web

from bot.portal import accounts, crypto
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import SESSION_COOKIE, VIEWER, page, redirect, set_cookie
from bot.portal.i18n import _
from bot.portal.passphrases import MIN_LENGTH
from bot.portal.state import PORTAL
from storage.portal import ROLE_ADVOCATE

routes = web.RouteTableDef()


def form_text(form: object, name: str, limit: int = 1024) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value[:limit] if isinstance(value, str) else ""


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    viewer = request.get(VIEWER)
    raise web.HTTPSeeOther(PORTAL_PATH + (viewer.home if viewer is not None else "/inbox"))


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    viewer = request.get(VIEWER)
    if viewer is not None:
        raise web.HTTPSeeOther(PORTAL_PATH + viewer.home)
    return page(request, "login.html")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    form = await request.post()
    result = await accounts.login(
        portal.sessions,
        portal.settings,
        portal.secrets,
        login_name=form_text(form, "login", 64),
        passphrase=form_text(form, "passphrase"),
        code=form_text(form, "code", 32),
        address=request.remote or "unknown",
        now=portal.clock(),
        pins=portal.deployment.key_pins,
    )
    if result.throttled_until is not None:
        minutes = max(1, math.ceil((result.throttled_until - portal.clock()).total_seconds() / 60))
        message = _("Too many failed attempts. Try again in {n} minutes.").format(n=minutes)
        return page(request, "login.html", status=429, error=message)
    if not result.ok or result.session_token is None:
        message = _("The login name, passphrase or code is wrong.")
        return page(request, "login.html", status=401, error=message)
    portal.keys.put(crypto.token_hash(result.session_token), result.keys)
    # An outreach worker lands on the campaigns (she never sees the inbox).
    landing = "/inbox" if result.role == ROLE_ADVOCATE else "/campaigns"
    response = redirect(PORTAL_PATH + landing)
    set_cookie(response, portal, SESSION_COOKIE, result.session_token)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    viewer = request.get(VIEWER)
    if viewer is not None:
        portal.keys.drop(viewer.session_hash)
        await accounts.logout(portal.sessions, portal.secrets, viewer, portal.clock())
    response = redirect(f"{PORTAL_PATH}/login")
    response.del_cookie(SESSION_COOKIE, path=PORTAL_PATH)
    return response


@routes.get("/setup/{token}")
async def setup_page(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    link = request.match_info["token"]
    offer = await accounts.setup_offer(portal.sessions, portal.secrets, link, portal.clock())
    if offer is None:
        return page(request, "setup_gone.html", status=404)
    return _setup_form(request, offer)


def _setup_form(
    request: web.Request,
    offer: accounts.SetupOffer,
    problems: list[str] | None = None,
    login: str = "",
) -> web.Response:
    return page(
        request,
        "setup.html",
        status=400 if problems else 200,
        offer=offer,
        qr=crypto.qr_svg(offer.totp_uri),
        problems=problems or [],
        login=login,
        min_length=MIN_LENGTH,
    )


@routes.post("/setup/{token}")
async def setup(request: web.Request) -> web.Response:
    portal = request.app[PORTAL]
    link = request.match_info["token"]
    form = await request.post()
    login = form_text(form, "login", 64)
    result = await accounts.complete_setup(
        portal.sessions,
        portal.settings,
        portal.secrets,
        link,
        login=login,
        passphrase=form_text(form, "passphrase"),
        again=form_text(form, "again"),
        code=form_text(form, "code", 32),
        now=portal.clock(),
    )
    if result.gone:
        return page(request, "setup_gone.html", status=404)
    if not result.ok:
        offer = await accounts.setup_offer(portal.sessions, portal.secrets, link, portal.clock())
        if offer is None:
            return page(request, "setup_gone.html", status=404)
        return _setup_form(request, offer, list(result.problems), login)
    return page(request, "setup_done.html", codes=result.recovery_codes)
