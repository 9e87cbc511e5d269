"""Outreach campaigns, for outreach workers and admins: make one, list them, retire one, and
per campaign its Telegram link, QR code and posters in every enabled language, with its
counts as bot/outreach_tables.py shows them (disclosure-controlled: no raw count here).

A campaign is an opaque random code and nothing else (storage/outreach.py): the portal keeps
no label, so no screen, link or poster says where a code was used or for whom. A team keeps
its own note of that. Every make, retire and download goes into the audit log (the action and
the campaign's code; nothing about a person).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import re
from dataclasses import dataclass
from typing import cast

import segno
from aiohttp import web

from bot import disclosure, outreach_tables, poster
from bot.portal.accounts import record
from bot.portal.config import PORTAL_PATH
from bot.portal.guard import need_campaigns, page
from bot.portal.i18n import N_, _
from bot.portal.state import PORTAL, Portal, Viewer
from flows import outreach as links
from flows.i18n import Catalogs, is_rtl, load_catalogs, native_name
from storage import outreach
from storage.db import transaction
from storage.dialect import aware
from storage.models import Campaign

log = logging.getLogger("safebot.portal")
routes = web.RouteTableDef()

QR_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
POSTER_FORMATS = {"pdf": "application/pdf", "png": "image/png"}
POSTER_SIZES = {"a4": N_("A4"), "a5": N_("A5"), "card": N_("Card")}
_LANG = r"[A-Za-z0-9_]{1,16}"

# The English words bot/outreach_tables.py and bot/disclosure.py put in a table, as the
# portal's catalogue translates them (a title that is not here is shown as it comes).
TABLE_WORDS = {
    "Conversations started": N_("Conversations started"),
    "Contact requests": N_("Contact requests"),
    "Picked up": N_("Picked up"),
    "Closed": N_("Closed"),
    "Language": N_("Language"),
    outreach_tables.TOTAL: N_("Total"),
    disclosure.FEWER_THAN_TEN: N_("fewer than 10"),
    disclosure.WITHHELD: N_("withheld"),
}
_COUNT = re.compile(r"0|[1-9][0-9]*")


# ---- what the pages show ------------------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in itself ("Polski", "العربية")
    tag: str  # BCP 47, for lang=""
    rtl: bool


def language(code: str) -> Language:
    return Language(code, native_name(code), code.replace("_", "-"), is_rtl(code))


@dataclass(frozen=True)
class LanguageLink:
    language: Language
    link: str
    payload: str
    poster: bool  # the bot's catalogue has every word a poster needs in this language


@dataclass(frozen=True)
class Table:
    title: str
    corner: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (label, shown cells)


def _word(english: str) -> str:
    return _(TABLE_WORDS[english]) if english in TABLE_WORDS else english


def shown_cell(value: str) -> str:
    """A cell as bot/outreach_tables.py gave it: a count it let through, or its label. Any
    other text (a bug upstream) is shown as withheld, never as it is."""
    if value in (disclosure.FEWER_THAN_TEN, disclosure.WITHHELD):
        return _word(value)
    if _COUNT.fullmatch(value) and not 1 <= int(value) <= disclosure.SMALL_MAX:
        return value
    log.error("portal: a campaign table cell is neither a shown count nor a label")
    return _word(disclosure.WITHHELD)


def _label(value: str) -> str:
    """A row's label: a language code (shown by its own name), or the total."""
    if value == outreach_tables.TOTAL:
        return _word(value)
    return "–" if value == "-" else native_name(value)


def _tables(shown: list[outreach_tables.ShownTable]) -> list[Table]:
    tables = []
    for table in shown:
        rows = tuple(
            (_label(label), tuple(shown_cell(c) for c in cells))
            for label, cells in zip(table.row_labels, table.cells, strict=True)
        )
        columns = tuple(
            _word(c) if c == outreach_tables.TOTAL else ("–" if c == "-" else c)
            for c in table.column_labels
        )
        corner = _word(table.corner or "Language")
        tables.append(Table(_word(table.title), corner, columns, rows))
    return tables


def _all_zero(shown: list[outreach_tables.ShownTable]) -> bool:
    return all(c == "0" for t in shown for row in t.cells for c in row)


def _day(value: dt.datetime | None) -> str:
    return "" if value is None else aware(value).date().isoformat()


def _url(code: str) -> str:
    return f"{PORTAL_PATH}/campaigns/{code}"


async def _audit(
    portal: Portal, viewer: Viewer, action: str, code: str, detail: str | None = None
) -> None:
    async with transaction(portal.sessions) as session:
        await record(
            session,
            portal.secrets,
            action,
            portal.clock(),
            organisation=viewer.advocate.organisation,
            actor=viewer.advocate.id,
            subject=code,
            detail=detail,
        )


async def _campaign(portal: Portal, code: str) -> Campaign:
    if not links.is_code(code):
        raise web.HTTPNotFound()
    async with transaction(portal.sessions) as session:
        found = await session.get(Campaign, code)
    if found is None:
        raise web.HTTPNotFound()
    return found


def _link(portal: Portal, campaign: Campaign, lang: str) -> str:
    """The live link of an active campaign in an enabled language, else 404 (a retired
    campaign, no bot username, a language the deployment does not offer)."""
    if campaign.retired_at is not None or lang not in portal.deployment.languages:
        raise web.HTTPNotFound()
    link = portal.settings.campaign_link(links.encode(campaign.code, lang))
    if link is None:
        raise web.HTTPNotFound()
    return link


def _attachment(body: bytes, content_type: str, filename: str) -> web.Response:
    # The guard adds Cache-Control: no-store (and the rest) to every response.
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ---- the list, making one -----------------------------------------------------------------------


@routes.get("/campaigns")
async def campaign_list(request: web.Request) -> web.Response:
    need_campaigns(request)
    portal = request.app[PORTAL]
    async with transaction(portal.sessions) as session:
        rows = list(await outreach.campaigns(session))
    rows.reverse()  # newest first
    return page(
        request,
        "campaigns.html",
        campaigns=rows,
        day=_day,
        languages=[language(code) for code in portal.deployment.languages],
        has_username=portal.settings.bot_username is not None,
    )


@routes.post("/campaigns")
async def make_campaign(request: web.Request) -> web.Response:
    viewer = need_campaigns(request)
    portal = request.app[PORTAL]
    now = portal.clock()
    async with transaction(portal.sessions) as session:
        campaign = await outreach.add_campaign(session, now)
        code = campaign.code
        await record(
            session,
            portal.secrets,
            "campaign_created",
            now,
            organisation=viewer.advocate.organisation,
            actor=viewer.advocate.id,
            subject=code,
        )
    # Post/redirect/get: a reload shows the campaign, and does not make another.
    raise web.HTTPSeeOther(f"{_url(code)}?said=made")


# ---- one campaign -------------------------------------------------------------------------------


@routes.get("/campaigns/{code}")
async def campaign_page(request: web.Request) -> web.Response:
    need_campaigns(request)
    portal = request.app[PORTAL]
    campaign = await _campaign(portal, request.match_info["code"])
    async with transaction(portal.sessions) as session:
        shown = await outreach_tables.campaign_tables(session, campaign.code)
    active = campaign.retired_at is None
    offered: list[LanguageLink] = []
    if active and portal.settings.bot_username is not None:
        for code in portal.deployment.languages:
            payload = links.encode(campaign.code, code)
            link = portal.settings.campaign_link(payload)
            assert link is not None
            offered.append(
                LanguageLink(language(code), link, payload, await _has_poster(portal, code))
            )
    return page(
        request,
        "campaign.html",
        campaign=campaign,
        active=active,
        day=_day,
        offered=offered,
        has_username=portal.settings.bot_username is not None,
        tables=_tables(shown),
        no_counts=_all_zero(shown),
        sizes=[(size, _(name)) for size, name in POSTER_SIZES.items()],
        said=request.query.get("said", ""),
    )


@routes.get("/campaigns/{code}/retire")
async def retire_page(request: web.Request) -> web.Response:
    need_campaigns(request)
    portal = request.app[PORTAL]
    campaign = await _campaign(portal, request.match_info["code"])
    if campaign.retired_at is not None:
        raise web.HTTPSeeOther(_url(campaign.code))
    return page(request, "campaign_retire.html", campaign=campaign)


@routes.post("/campaigns/{code}/retire")
async def retire(request: web.Request) -> web.Response:
    viewer = need_campaigns(request)
    portal = request.app[PORTAL]
    campaign = await _campaign(portal, request.match_info["code"])
    now = portal.clock()
    async with transaction(portal.sessions) as session:
        found = await outreach.retire(session, campaign.code, now)
        if found is not None and campaign.retired_at is None:
            await record(
                session,
                portal.secrets,
                "campaign_retired",
                now,
                organisation=viewer.advocate.organisation,
                actor=viewer.advocate.id,
                subject=campaign.code,
            )
    raise web.HTTPSeeOther(f"{_url(campaign.code)}?said=retired")


# ---- downloads ----------------------------------------------------------------------------------


def qr_code(link: str, fmt: str) -> bytes:
    """The link as a QR code: SVG (scales to any print size) or PNG (10 px a module)."""
    out = io.BytesIO()
    qr = segno.make(link, error="m")
    if fmt == "svg":
        qr.save(out, kind="svg", scale=10, border=4, dark="#000", light="#fff", xmldecl=True)
    else:
        qr.save(out, kind="png", scale=10, border=4, dark="#000", light="#fff")
    return out.getvalue()


@routes.get(r"/campaigns/{code}/qr/{lang:" + _LANG + r"}.{fmt:svg|png}")
async def qr_download(request: web.Request) -> web.Response:
    viewer = need_campaigns(request)
    portal = request.app[PORTAL]
    campaign = await _campaign(portal, request.match_info["code"])
    lang, fmt = request.match_info["lang"], request.match_info["fmt"]
    link = _link(portal, campaign, lang)
    body = await asyncio.to_thread(qr_code, link, fmt)
    await _audit(portal, viewer, "campaign_download", campaign.code, f"qr {fmt} {lang}")
    return _attachment(body, QR_FORMATS[fmt], f"qr-{campaign.code}-{lang}.{fmt}")


# ---- posters (bot/poster.py) --------------------------------------------------------------------


async def _catalogs(portal: Portal) -> Catalogs:
    if portal.catalogs is None:
        portal.catalogs = await asyncio.to_thread(load_catalogs)
    return portal.catalogs


async def _words(portal: Portal, lang: str) -> poster.PosterWords | None:
    """The poster's words in `lang`; None if its catalogue lacks any (no poster in it)."""
    try:
        return poster.poster_words(portal.flow, await _catalogs(portal), lang)
    except poster.PosterError:
        return None


async def _has_poster(portal: Portal, lang: str) -> bool:
    return await _words(portal, lang) is not None


@routes.get(r"/campaigns/{code}/poster/{lang:" + _LANG + r"}-{size:a4|a5|card}.{fmt:pdf|png}")
async def poster_download(request: web.Request) -> web.Response:
    viewer = need_campaigns(request)
    portal = request.app[PORTAL]
    campaign = await _campaign(portal, request.match_info["code"])
    lang, size, fmt = (request.match_info[k] for k in ("lang", "size", "fmt"))
    link = _link(portal, campaign, lang)
    words = await _words(portal, lang)
    if words is None or size not in POSTER_SIZES or fmt not in POSTER_FORMATS:
        raise web.HTTPNotFound()
    try:
        async with portal.poster_slots:
            body = await asyncio.to_thread(
                poster.render_poster,
                words,
                link,
                fmt=cast(poster.Format, fmt),
                size=cast(poster.Size, size),
            )
    except poster.PosterError as exc:
        log.error("portal: a poster could not be made: %s", exc)
        message = _("The poster could not be made on this server. Tell the operator: {why}")
        return page(request, "error.html", status=503, message=message.format(why=str(exc)))
    await _audit(portal, viewer, "campaign_download", campaign.code, f"poster {fmt} {size} {lang}")
    return _attachment(body, POSTER_FORMATS[fmt], f"poster-{campaign.code}-{lang}-{size}.{fmt}")
