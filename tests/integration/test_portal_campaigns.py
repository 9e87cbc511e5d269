"""The portal's campaign pages and the outreach role, against a real server (SQLite and
PostgreSQL): what an outreach account may open (every route of the portal, read from its
router, so a new route is refused to her until someone decides otherwise), that she never
holds a key, making, listing and retiring campaigns, their links, QR codes and posters, the
audit log, and that no count from 1 to 9 reaches the page."""

from __future__ import annotations

import dataclasses
import html
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image
from sqlalchemy import insert, select

from bot import disclosure, outreach_tables
from bot.portal import accounts, crypto, views_outreach
from bot.portal.state import PORTAL
from flows.i18n import native_name
from storage import audit
from storage import portal as q
from storage.db import transaction
from storage.models import AuditEntry, KeyGrant, OutreachCount, RequestWork
from storage.sealing import RecipientPublicKey, generate_keypair
from tests.integration.portal_support import (
    ORG,
    Account,
    PortalHarness,
    csrf_of,
    get_csrf,
    harness,
    log_in,
    set_up,
    unlock,
)
from tests.integration.test_cli_errors import fails_in_one_line, home, safebot

__all__ = ["harness", "home"]
Client = TestClient[web.Request, web.Application]

BOT = "safebot_test_bot"
CANARY = "CANARY-OUTREACH-7731"
CODE_RE = re.compile(r"/portal/campaigns/([A-Za-z0-9]{8})\?said=made")
ROLE_REFUSED = "This page is for advocates. An outreach account sees the campaigns only."
CAMPAIGNS_REFUSED = "The campaign pages are for outreach workers and admins."

# What an outreach account may open: (method, route) as the portal's router names it. Every
# other route of the portal must refuse her (403), whatever it is and whenever it was added.
OUTREACH_OPEN = {
    ("GET", "/portal/"),
    ("GET", "/portal/login"),
    ("POST", "/portal/login"),
    ("POST", "/portal/logout"),
    ("GET", "/portal/setup/{token}"),
    ("POST", "/portal/setup/{token}"),
    ("GET", "/portal/static"),
    ("GET", "/portal/campaigns"),
    ("POST", "/portal/campaigns"),
    ("GET", "/portal/campaigns/{code}"),
    ("GET", "/portal/campaigns/{code}/retire"),
    ("POST", "/portal/campaigns/{code}/retire"),
    ("GET", "/portal/campaigns/{code}/qr/{lang}.{fmt}"),
    ("GET", "/portal/campaigns/{code}/poster/{lang}-{size}.{fmt}"),
}


# ---- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def named(harness: PortalHarness) -> Iterator[PortalHarness]:
    """The harness with SAFEBOT_BOT_USERNAME set (as `safebot run` reads it)."""
    harness.portal.settings = dataclasses.replace(harness.portal.settings, bot_username=BOT)
    yield harness


async def outreach_worker(
    harness: PortalHarness, client: Client, *, name: str = "Olu Outreach", login: str = "olu"
) -> Account:
    _advocate, url = await accounts.invite(
        harness.portal.sessions,
        harness.portal.settings,
        harness.portal.secrets,
        organisation=ORG,
        name=name,
        is_admin=False,
        now=harness.clock(),
        role=q.ROLE_OUTREACH,
    )
    return await set_up(harness, client, url.split("/portal/setup/", 1)[1], login=login)


async def login_to(harness: PortalHarness, client: Client, account: Account) -> str:
    """Log in; where the portal sends her."""
    csrf = await get_csrf(client, "/portal/login")
    response = await client.post(
        "/portal/login",
        data={
            "csrf": csrf,
            "login": account.login,
            "passphrase": account.passphrase,
            "code": account.code(harness.clock()),
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return response.headers["Location"]


async def log_out(client: Client) -> None:
    """End the session (the test client is one browser: the next person logs in on it)."""
    csrf = await get_csrf(client, "/portal/login")
    response = await client.post("/portal/logout", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303


async def make_campaign(client: Client) -> str:
    csrf = await get_csrf(client, "/portal/campaigns")
    response = await client.post("/portal/campaigns", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303, await response.text()
    found = CODE_RE.fullmatch(response.headers["Location"])
    assert found, response.headers["Location"]
    return found.group(1)


def portal_routes(harness: PortalHarness) -> list[tuple[str, str]]:
    """Every (method, route) the portal serves, from its router (HEAD goes with GET)."""
    for resource in harness.server.app.router.resources():
        sub = resource.get_info().get("app")
        if isinstance(sub, web.Application) and PORTAL in sub:
            break
    else:
        raise LookupError("no portal mounted")
    found = set()
    for resource in sub.router.resources():
        for route in resource:
            if route.method != "HEAD":
                found.add((route.method, resource.canonical))
    return sorted(found)


def concrete(route: str, **values: str) -> str:
    """A route's address with its placeholders filled in."""
    if route == "/portal/static":
        return "/portal/static/portal.css"
    fmt = "pdf" if "/poster/" in route else "png"
    filled = {"fmt": fmt, "size": "a4", "lang": "en", **values}
    return route.format(**filled)


def count_cells(page: str) -> list[str]:
    """The shown cells of the count tables, in order."""
    tables = re.findall(r'<table class="counts">(.*?)</table>', page, re.S)
    return [c.strip() for t in tables for c in re.findall(r"<td>(.*?)</td>", t, re.S)]


async def audit_entries(harness: PortalHarness) -> list[AuditEntry]:
    async with transaction(harness.db.sessions) as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all())


def decode_qr(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image)]


# ---- the role's gate --------------------------------------------------------------------------


async def test_every_route_but_her_own_refuses_an_outreach_account(named: PortalHarness) -> None:
    harness = named
    stored = await harness.submit({"message": CANARY, "codeword": CANARY})
    admin_id, admin_token = await harness.invite("Ada Admin", admin=True)
    routes = portal_routes(harness)
    assert ("GET", "/portal/inbox") in routes and ("GET", "/portal/campaigns/{code}") in routes
    unknown = set(OUTREACH_OPEN) - set(routes)
    assert not unknown, f"OUTREACH_OPEN names routes the portal no longer has: {unknown}"
    async with harness.client() as client:
        await set_up(harness, client, admin_token, login="ada")
        olu = await outreach_worker(harness, client)
        assert await login_to(harness, client, olu) == "/portal/campaigns"
        code = await make_campaign(client)
        values = {
            "rid": stored.request_id,
            "aid": admin_id,
            "code": code,
            "token": "t" * 43,
        }
        # Reads first, then writes; logging out last.
        ordered = sorted(routes, key=lambda r: (r[0] != "GET", r[1].endswith("/logout")))
        for method, route in ordered:
            path = concrete(route, **values)
            names = re.findall(r"{(\w+)}", route)
            assert set(names) <= {*values, "fmt", "size", "lang"}, f"new placeholder in {route}"
            data = {"csrf": csrf_of(await (await client.get("/portal/campaigns")).text())}
            response = await client.request(
                method, path, data=data if method == "POST" else None, allow_redirects=False
            )
            body = await response.read()
            shown = body.decode("utf-8", "replace")
            assert CANARY not in shown and stored.request_id not in shown, (method, route)
            assert stored.request_id[:4].upper() not in shown, (method, route)
            if (method, route) in OUTREACH_OPEN:
                assert response.status not in (403, 500), (method, route, response.status)
            else:
                assert response.status == 403, (method, route, response.status)
                assert ROLE_REFUSED in shown, (method, route)
                assert 'href="/portal/campaigns"' in shown  # the way back is hers
    # Nothing she could not open was done: the request is nobody's, the admin is still there.
    async with transaction(harness.db.sessions) as session:
        assert await session.get(RequestWork, stored.request_id) is None
        assert await q.active_advocate(session, admin_id) is not None


async def test_a_request_address_says_the_same_whether_or_not_it_exists(
    harness: PortalHarness,
) -> None:
    stored = await harness.submit({"message": CANARY})
    async with harness.client() as client:
        olu = await outreach_worker(harness, client)
        await login_to(harness, client, olu)
        real = await client.get(f"/portal/requests/{stored.request_id}")
        made_up = await client.get(f"/portal/requests/{'0' * len(stored.request_id)}")
        assert real.status == made_up.status == 403
        assert await real.text() == await made_up.text()


async def test_outreach_lands_on_the_campaigns_with_no_inbox_in_sight(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        olu = await outreach_worker(harness, client)
        assert await login_to(harness, client, olu) == "/portal/campaigns"
        home_page = await client.get("/portal/", allow_redirects=False)
        assert home_page.headers["Location"] == "/portal/campaigns"
        again = await client.get("/portal/login", allow_redirects=False)
        assert again.headers["Location"] == "/portal/campaigns"
        page = await (await client.get("/portal/campaigns")).text()
        assert "<h1>Campaigns</h1>" in page
        assert 'href="/portal/inbox"' not in page and 'href="/portal/team"' not in page
        assert 'href="/portal/audit"' not in page
        assert "holds no organisation key" not in page  # no key notice: she never holds one


async def test_an_advocate_does_not_see_campaigns_and_an_admin_does(named: PortalHarness) -> None:
    harness = named
    _, bea_token = await harness.invite("Bea")
    _, ada_token = await harness.invite("Ada Admin", admin=True)
    campaign_routes = [r for r in portal_routes(harness) if "/campaigns" in r[1]]
    assert len(campaign_routes) >= 6
    async with harness.client() as client:
        ada = await set_up(harness, client, ada_token, login="ada")
        assert await login_to(harness, client, ada) == "/portal/inbox"
        assert 'href="/portal/campaigns"' in await (await client.get("/portal/inbox")).text()
        code = await make_campaign(client)
        assert (await client.get(f"/portal/campaigns/{code}")).status == 200
        await log_out(client)
        bea = await set_up(harness, client, bea_token, login="bea")
        assert await login_to(harness, client, bea) == "/portal/inbox"
        assert 'href="/portal/campaigns"' not in await (await client.get("/portal/inbox")).text()
        for method, route in campaign_routes:
            data = {"csrf": await get_csrf(client, "/portal/inbox")} if method == "POST" else None
            response = await client.request(
                method, concrete(route, code=code), data=data, allow_redirects=False
            )
            assert response.status == 403, (method, route)
            assert CAMPAIGNS_REFUSED in await response.text()
    async with transaction(harness.db.sessions) as session:
        from storage import outreach

        assert [c.code for c in await outreach.campaigns(session)] == [code]  # she made none
        assert all(c.retired_at is None for c in await outreach.campaigns(session))


async def test_without_a_session_the_campaign_pages_send_her_to_log_in(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        for method, route in portal_routes(harness):
            if "/campaigns" not in route or method != "GET":
                continue
            response = await client.get(concrete(route, code="AbCd1234"), allow_redirects=False)
            assert response.status == 303, route
            assert response.headers["Location"] == "/portal/login"


# ---- never a key ------------------------------------------------------------------------------


async def test_an_outreach_account_can_never_receive_a_key_grant(harness: PortalHarness) -> None:
    stored = await harness.submit({"message": CANARY})
    _, ada_token = await harness.invite("Ada Admin", admin=True)
    async with harness.client() as client:
        olu = await outreach_worker(harness, client)
        ada = await set_up(harness, client, ada_token, login="ada")
        await log_in(harness, client, ada)
        assert await unlock(harness, client) == 303
        team = await (await client.get("/portal/team")).text()
        row = re.search(r"<tr>\s*<td>Olu Outreach</td>(.*?)</tr>", team, re.S)
        assert row, team
        assert "Outreach worker" in row.group(1) and "Campaigns only" in row.group(1)
        assert "/grant" not in row.group(1)  # no button for her
        # The admin's unlocked session posts a grant anyway: refused, and it says why.
        csrf = await get_csrf(client, "/portal/team")
        refused = await client.post(f"/portal/team/{olu.advocate_id}/grant", data={"csrf": csrf})
        assert "An outreach worker never gets access to the requests." in await refused.text()
        await log_out(client)
        await refused_below_the_pages(harness, olu)
        # A grant written straight into the database is never opened at her login.
        harness.clock.advance(seconds=30)
        assert await login_to(harness, client, olu) == "/portal/campaigns"
        cookies = client.session.cookie_jar.filter_cookies(client.make_url("/portal/"))
        token = cookies["sb_session"].value
        assert harness.portal.keys.get(crypto.token_hash(token)) == {}
        shut = await client.get(f"/portal/requests/{stored.request_id}")
        assert shut.status == 403 and CANARY not in await shut.text()


async def refused_below_the_pages(harness: PortalHarness, olu: Account) -> None:
    async with transaction(harness.db.sessions) as session:
        admin = await q.advocate_by_login(session, "ada")
        assert admin is not None
    # The accounts layer refuses ...
    with pytest.raises(q.GrantRefused):
        await accounts.grant_access(
            harness.portal.sessions,
            harness.portal.secrets,
            admin,
            list(harness.org_keys.values()),
            olu.advocate_id,
            harness.clock(),
        )
    # ... and so does the query layer, whatever its caller checked.
    with pytest.raises(q.GrantRefused):
        async with transaction(harness.db.sessions) as session:
            await q.add_grant(
                session,
                KeyGrant(
                    advocate_id=olu.advocate_id,
                    key_id="any",
                    envelope=b"x",
                    granted_by=admin.id,
                    created_at=harness.clock(),
                ),
            )
    async with transaction(harness.db.sessions) as session:
        assert list(await q.grants_of(session, olu.advocate_id)) == []
        assert olu.advocate_id not in await q.granted_advocates(session, ORG)
        row = await q.get_advocate(session, olu.advocate_id)
        assert row is not None and row.public_key is not None
        # A real grant, sealed to her own public key, written straight into the database
        # (not through the portal) ...
        created = harness.clock()
        key = harness.org_keys[ORG]
        await session.execute(
            insert(KeyGrant).values(
                advocate_id=olu.advocate_id,
                key_id=key.key_id,
                envelope=crypto.seal_grant(
                    key,
                    RecipientPublicKey.from_text(row.public_key),
                    advocate_id=olu.advocate_id,
                    organisation=ORG,
                    created_at=created,
                ),
                granted_by=admin.id,
                created_at=created,
            )
        )
    # A key rotation seals the new key to those with access, never to her (even with that
    # grant row in the database), and is not stopped by her row either.
    new_key, _public = generate_keypair()
    rotation = await accounts.rotate_key(
        harness.portal.sessions, harness.portal.secrets, new_key, ORG, harness.clock()
    )
    assert admin.id in {a.id for a in rotation.granted}
    assert olu.advocate_id not in {a.id for a in (*rotation.granted, *rotation.refused)}
    async with transaction(harness.db.sessions) as session:
        held = [g.key_id for g in await q.grants_of(session, olu.advocate_id)]
    assert held == [harness.org_keys[ORG].key_id]  # only the row written by hand
    # The row is not opened when she logs in: no key.
    harness.clock.advance(seconds=30)
    result = await accounts.login(
        harness.portal.sessions,
        harness.portal.settings,
        harness.portal.secrets,
        login_name=olu.login,
        passphrase=olu.passphrase,
        code=olu.code(harness.clock()),
        address="127.0.0.9",
        now=harness.clock(),
        pins=harness.portal.deployment.key_pins,
    )
    assert result.ok and list(result.keys) == []


# ---- making, listing, retiring ----------------------------------------------------------------


async def test_campaigns_are_made_listed_and_retired_with_csrf(named: PortalHarness) -> None:
    harness = named
    async with harness.client() as client:
        olu = await outreach_worker(harness, client)
        await login_to(harness, client, olu)
        listing = await (await client.get("/portal/campaigns")).text()
        assert "No campaigns yet." in listing
        assert "A campaign has no name or label here" in listing  # and why
        form = re.search(r'<form method="post" action="/portal/campaigns".*?</form>', listing, re.S)
        assert form and re.findall(r"<input[^>]*>", form.group(0)) == [
            f'<input type="hidden" name="csrf" value="{csrf_of(listing)}">'
        ], "the form takes no label: nothing but the CSRF token"
        for data in ({}, {"csrf": "forged"}):
            bare = await client.post("/portal/campaigns", data=data, allow_redirects=False)
            assert bare.status == 403
        assert "No campaigns yet." in await (await client.get("/portal/campaigns")).text()

        code = await make_campaign(client)
        assert re.fullmatch(r"[A-Za-z0-9]{8}", code)
        shown = await client.get(f"/portal/campaigns/{code}?said=made")
        assert "The campaign " + code + " was made." in await shown.text()
        listing = await (await client.get("/portal/campaigns")).text()
        assert listing.count(f'href="/portal/campaigns/{code}"') == 1  # a reload made no other
        assert harness.clock().date().isoformat() in listing and "Active" in listing
        assert f'href="/portal/campaigns/{code}#lang-pl"' in listing
        assert ">Polski<" in listing  # each language by its own name

        confirm = await (await client.get(f"/portal/campaigns/{code}/retire")).text()
        assert "This cannot be undone" in confirm
        bare = await client.post(f"/portal/campaigns/{code}/retire", allow_redirects=False)
        assert bare.status == 403
        assert (
            "Retire this campaign" in await (await client.get(f"/portal/campaigns/{code}")).text()
        )
        retired = await client.post(
            f"/portal/campaigns/{code}/retire",
            data={"csrf": csrf_of(confirm)},
            allow_redirects=False,
        )
        assert retired.status == 303
        page = await (await client.get(f"/portal/campaigns/{code}")).text()
        assert "now start the bot normally" in page
        assert "t.me/" not in page and "/qr/" not in page and "/poster/" not in page
        for path in ("/qr/en.png", "/qr/en.svg", "/poster/en-a4.pdf"):
            gone = await client.get(f"/portal/campaigns/{code}{path}")
            assert gone.status == 404, path
        listing = await (await client.get("/portal/campaigns")).text()
        assert f"Retired {harness.clock().date().isoformat()}" in listing
        assert "#lang-" not in listing
        assert (await client.get("/portal/campaigns/NoSuch12")).status == 404
        assert (await client.get("/portal/campaigns/../inbox")).status in (403, 404)


# ---- links, QR codes, posters -----------------------------------------------------------------


async def test_each_enabled_language_has_its_link_and_a_qr_code_that_reads_back(
    named: PortalHarness,
) -> None:
    harness = named
    languages = harness.portal.deployment.languages
    assert len(languages) > 2 and "ar" in languages
    async with harness.client() as client:
        await login_to(harness, client, await outreach_worker(harness, client))
        code = await make_campaign(client)
        page = await (await client.get(f"/portal/campaigns/{code}")).text()
        for lang in languages:
            link = f"https://t.me/{BOT}?start=c-{code}-{lang}"
            assert f'<code class="link" dir="ltr" translate="no">{link}</code>' in page, lang
            assert f">{native_name(lang)}</h3>" in page, lang
        assert 'lang="ar" dir="rtl">' in page  # Arabic's name is set right to left

        for lang in ("en", "pl", "ar"):
            png = await client.get(f"/portal/campaigns/{code}/qr/{lang}.png")
            assert png.status == 200 and png.content_type == "image/png"
            assert png.headers["Content-Disposition"] == (
                f'attachment; filename="qr-{code}-{lang}.png"'
            )
            assert png.headers["Cache-Control"] == "no-store"
            assert decode_qr(await png.read()) == [f"https://t.me/{BOT}?start=c-{code}-{lang}"]
        svg = await client.get(f"/portal/campaigns/{code}/qr/pl.svg")
        assert svg.status == 200 and svg.content_type == "image/svg+xml"
        assert svg.headers["Content-Disposition"] == f'attachment; filename="qr-{code}-pl.svg"'
        body = (await svg.read()).decode()
        assert body.startswith("<?xml") and "<svg" in body and "<script" not in body
        # A language the deployment does not enable, a format the portal does not make.
        assert "de" not in languages
        assert (await client.get(f"/portal/campaigns/{code}/qr/de.png")).status == 404
        assert (await client.get(f"/portal/campaigns/{code}/qr/en.gif")).status == 404


async def test_without_the_bot_username_the_page_says_so_and_offers_no_link(
    harness: PortalHarness,
) -> None:
    assert harness.portal.settings.bot_username is None
    async with harness.client() as client:
        await login_to(harness, client, await outreach_worker(harness, client))
        code = await make_campaign(client)
        page = await (await client.get(f"/portal/campaigns/{code}")).text()
        assert "The bot's username is not set (SAFEBOT_BOT_USERNAME)" in html.unescape(page)
        assert "t.me/" not in page and "/qr/" not in page and "/poster/" not in page
        assert "Retire this campaign" in page  # retiring needs no link
        for path in ("/qr/en.png", "/qr/en.svg", "/poster/en-a4.pdf"):
            assert (await client.get(f"/portal/campaigns/{code}{path}")).status == 404, path


async def test_posters_download_as_pdf_and_png_with_the_link_on_them(
    named: PortalHarness,
) -> None:
    harness = named
    async with harness.client() as client:
        await login_to(harness, client, await outreach_worker(harness, client))
        code = await make_campaign(client)
        page = await (await client.get(f"/portal/campaigns/{code}")).text()
        for size in ("a4", "a5", "card"):
            for fmt in ("pdf", "png"):
                assert f'href="/portal/campaigns/{code}/poster/pl-{size}.{fmt}"' in page
        pdf = await client.get(f"/portal/campaigns/{code}/poster/en-a4.pdf")
        assert pdf.status == 200 and pdf.content_type == "application/pdf"
        assert pdf.headers["Content-Disposition"] == (
            f'attachment; filename="poster-{code}-en-a4.pdf"'
        )
        assert pdf.headers["Cache-Control"] == "no-store"
        assert (await pdf.read()).startswith(b"%PDF-")
        png = await client.get(f"/portal/campaigns/{code}/poster/pl-card.png")
        assert png.status == 200 and png.content_type == "image/png"
        assert png.headers["Content-Disposition"] == (
            f'attachment; filename="poster-{code}-pl-card.png"'
        )
        image = await png.read()
        assert image.startswith(b"\x89PNG\r\n\x1a\n")
        assert decode_qr(image) == [f"https://t.me/{BOT}?start=c-{code}-pl"]
        assert (await client.get(f"/portal/campaigns/{code}/poster/en-a3.pdf")).status == 404
        assert (await client.get(f"/portal/campaigns/{code}/poster/en-a4.svg")).status == 404


# ---- the audit log ----------------------------------------------------------------------------


async def test_making_retiring_and_every_download_is_in_the_audit_log(
    named: PortalHarness,
) -> None:
    harness = named
    async with harness.client() as client:
        olu = await outreach_worker(harness, client)
        await login_to(harness, client, olu)
        before = len(await audit_entries(harness))
        code = await make_campaign(client)
        await client.get(f"/portal/campaigns/{code}")  # looking is not downloading
        assert (await client.get(f"/portal/campaigns/{code}/qr/pl.png")).status == 200
        assert (await client.get(f"/portal/campaigns/{code}/qr/en.svg")).status == 200
        assert (await client.get(f"/portal/campaigns/{code}/poster/en-a5.pdf")).status == 200
        csrf = await get_csrf(client, f"/portal/campaigns/{code}/retire")
        await client.post(f"/portal/campaigns/{code}/retire", data={"csrf": csrf})
        await client.post(f"/portal/campaigns/{code}/retire", data={"csrf": csrf})  # again
    entries = (await audit_entries(harness))[before:]
    assert [(e.action, e.subject, e.detail) for e in entries] == [
        ("campaign_created", code, None),
        ("campaign_download", code, "qr png pl"),
        ("campaign_download", code, "qr svg en"),
        ("campaign_download", code, "poster pdf a5 en"),
        ("campaign_retired", code, None),
    ]
    assert {(e.organisation, e.actor) for e in entries} == {(ORG, olu.advocate_id)}
    for e in entries:  # who did it is an id; nothing about a person, no name, no link
        text = " ".join(str(v) for v in (e.action, e.subject, e.detail))
        assert "Olu" not in text and "t.me" not in text and BOT not in text
    async with transaction(harness.db.sessions) as session:
        assert (await audit.verify(session, harness.portal.secrets.audit)).ok


# ---- the counts -------------------------------------------------------------------------------


async def test_no_count_from_1_to_9_reaches_the_campaign_page(named: PortalHarness) -> None:
    harness = named
    async with harness.client() as client:
        await login_to(harness, client, await outreach_worker(harness, client))
        code = await make_campaign(client)
        empty = await (await client.get(f"/portal/campaigns/{code}")).text()
        assert "Nothing counted yet." in empty
        rows = [
            # language, week, started, requested, picked up, closed
            ("en", "2027-W09", 3, 1, 1, 0),
            ("en", "2027-W10", 12, 2, 1, 1),
            ("pl", "2027-W09", 7, 4, 2, 9),
            ("pl", "2027-W10", 25, 8, 5, 3),
            ("ar", "2027-W10", 9, 6, 0, 0),
            ("ar", "2027-W11", 40, 5, 3, 2),
        ]
        async with transaction(harness.db.sessions) as session:
            for lang, week, started, requested, picked_up, closed in rows:
                session.add(
                    OutreachCount(
                        campaign=code,
                        language=lang,
                        iso_week=week,
                        started=started,
                        requested=requested,
                        picked_up=picked_up,
                        closed=closed,
                    )
                )
        page = await (await client.get(f"/portal/campaigns/{code}")).text()
        async with transaction(harness.db.sessions) as session:
            tables = await outreach_tables.campaign_tables(session, code)
    cells = count_cells(page)
    assert cells, "the page shows the count tables"
    # The page shows exactly what bot/outreach_tables.py let through, cell for cell.
    assert cells == [views_outreach.shown_cell(c) for t in tables for row in t.cells for c in row]
    for n in range(1, 10):
        assert not re.search(rf"<td>\s*{n}\s*</td>", page), f"a count of {n} is shown"
        assert str(n) not in cells
    # And no hidden cell can be worked out from what the page shows (the totals and the
    # cells beside it), read from the page as printed.
    shapes, hidden = [], []
    for table in re.findall(r'<table class="counts">(.*?)</table>', page, re.S):
        lines = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", table)]
        lines = [line for line in lines if line]  # the header row has no <td>
        shapes.append((len(lines), len(lines[0])))
        hidden.append(
            {
                (i, j)
                for i, line in enumerate(lines)
                for j, c in enumerate(line)
                if c in ("fewer than 10", "withheld")
            }
        )
    assert len(shapes) == 4
    assert disclosure.determined(shapes, hidden) == set()
    assert "fewer than 10" in cells and "withheld" in cells
    assert "40" in cells or "withheld" in cells
    for title in ("Conversations started", "Contact requests", "Picked up", "Closed"):
        assert f"<caption>{title}</caption>" in page
    assert '<th scope="row">Polski</th>' in page and '<th scope="row">Total</th>' in page


def test_every_word_a_count_table_says_is_translated() -> None:
    from bot.outreach_tables import MEASURES

    words = {title for _measure, title in MEASURES}
    words |= {outreach_tables.TOTAL, disclosure.FEWER_THAN_TEN, disclosure.WITHHELD, "Language"}
    assert words <= set(views_outreach.TABLE_WORDS)


def test_a_cell_that_is_not_a_shown_count_is_withheld() -> None:
    assert views_outreach.shown_cell("0") == "0"
    assert views_outreach.shown_cell("12") == "12"
    assert views_outreach.shown_cell(disclosure.FEWER_THAN_TEN) == "fewer than 10"
    for raw in ("3", "9", "1", "-4", "<b>", "07"):
        assert views_outreach.shown_cell(raw) == "withheld", raw


# ---- inviting an outreach worker --------------------------------------------------------------


async def test_an_admin_invites_an_outreach_worker_from_the_team_page(
    harness: PortalHarness,
) -> None:
    _, ada_token = await harness.invite("Ada Admin", admin=True)
    async with harness.client() as client:
        ada = await set_up(harness, client, ada_token, login="ada")
        await log_in(harness, client, ada)
        team = await (await client.get("/portal/team")).text()
        assert 'name="role" value="outreach"' in team
        csrf = csrf_of(team)
        nameless = await client.post("/portal/team/add", data={"csrf": csrf, "name": "Olu"})
        assert "Choose the new person's role." in html.unescape(await nameless.text())
        added = await client.post(
            "/portal/team/add",
            data={"csrf": csrf, "name": "Olu Outreach", "role": "outreach"},
            allow_redirects=False,
        )
        assert added.status == 303
        team = await (await client.get("/portal/team")).text()
        link = re.search(
            r'<code class="secret">[^<]*/portal/setup/([A-Za-z0-9_-]{43})</code>', team
        )
        assert link, team
        assert re.search(r"<td>Olu Outreach</td>\s*<td>Outreach worker</td>", team)
        await log_out(client)
        olu = await set_up(harness, client, link.group(1), login="olu")
        async with transaction(harness.db.sessions) as session:
            row = await q.get_advocate(session, olu.advocate_id)
            assert row is not None and row.role == "outreach" and not row.is_admin
        assert await login_to(harness, client, olu) == "/portal/campaigns"


def test_the_command_line_adds_an_outreach_worker(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    added = safebot(
        home, "advocates", "add", "--org", "test-hub", "--name", "Olu", "--role", "outreach"
    )
    assert added.code == 0, added.err
    assert added.out.startswith("outreach ") and "added to test-hub" in added.out
    listed = safebot(home, "advocates", "list")
    (row,) = [line for line in listed.out.splitlines() if line.endswith(" Olu")]
    assert " outreach " in row
    fails_in_one_line(
        safebot(
            home,
            *("advocates", "add", "--org", "test-hub", "--name", "X"),
            *("--admin", "--role", "outreach"),
        ),
        "cannot be an admin",
    )
