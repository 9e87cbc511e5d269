"""A real portal on a real aiohttp test server, over a migrated database (SQLite and
PostgreSQL through the `db` fixture), with a clock the test moves and cheap Argon2 costs."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.config import bundled_deployment_path, load_deployment
from bot.portal import accounts
from bot.portal.app import mount_portal
from bot.portal.config import PasswordCost, PortalSecrets, PortalSettings
from bot.portal.state import Portal
from flows.definition import load_flow
from storage.db import transaction
from storage.keys import KdfParams, wrap_private_key
from storage.queries import add_org_key
from storage.requests import NewRequest, StoredRequest, reference_hash, store_request
from storage.sealing import RecipientPrivateKey, generate_keypair
from storage.signing import SigningKey, generate_signing_key
from tests.integration.support import Database, org_key_row

ORG = "eastshire-hub"
OTHER_ORG = "polska-pomoc"
T0 = dt.datetime(2027, 3, 1, 9, 0, 0, tzinfo=dt.UTC)
CHEAP_KDF = KdfParams(memory_cost_kib=8, iterations=1, lanes=1)
CHEAP_PASSWORDS = PasswordCost(time_cost=1, memory_cost_kib=8, parallelism=1)
IDENTITY_PASSPHRASE = "identity-passphrase-for-tests"
LOOKUP_KEY = b"L" * 32
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
SECRET_RE = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
CODES_RE = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Account:
    advocate_id: str
    login: str
    passphrase: str
    totp_secret: str
    recovery_codes: list[str]

    def code(self, at: dt.datetime) -> str:
        return pyotp.TOTP(self.totp_secret).at(at)


@dataclass
class PortalHarness:
    db: Database
    portal: Portal
    clock: Clock
    server: TestServer
    signer: SigningKey = field(default_factory=generate_signing_key)
    org_keys: dict[str, RecipientPrivateKey] = field(default_factory=dict)
    identities: dict[str, bytes] = field(default_factory=dict)

    def client(self) -> TestClient[web.Request, web.Application]:
        return TestClient(self.server)

    async def invite(self, name: str, *, org: str = ORG, admin: bool = False) -> tuple[str, str]:
        advocate, url = await accounts.invite(
            self.portal.sessions,
            self.portal.settings,
            self.portal.secrets,
            organisation=org,
            name=name,
            is_admin=admin,
            now=self.clock(),
        )
        return advocate.id, url.split("/portal/setup/", 1)[1]

    async def submit(
        self, answers: Mapping[str, str], *, org: str = ORG, urgent: bool = False, lang: str = "en"
    ) -> StoredRequest:
        async with transaction(self.db.sessions) as session:
            return await store_request(
                session,
                NewRequest(answers=answers, language=lang, urgent=urgent, organisation=org),
                owner_key="owner-" + secrets.token_hex(4),
                lookup_key=LOOKUP_KEY,
                now=self.clock(),
                retention=dt.timedelta(days=30),
                notify=False,
                signer=self.signer,
                pinned=None,
            )

    @staticmethod
    def reference_hash(stored: StoredRequest) -> str:
        return reference_hash(LOOKUP_KEY, stored.reference)


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def get_csrf(client: TestClient[web.Request, web.Application], path: str) -> str:
    response = await client.get(path)
    return csrf_of(await response.text())


async def set_up(
    harness: PortalHarness,
    client: TestClient[web.Request, web.Application],
    token: str,
    *,
    login: str,
    passphrase: str = "quiet-harbour-lantern-47",
) -> Account:
    page = await client.get(f"/portal/setup/{token}")
    assert page.status == 200, await page.text()
    html = await page.text()
    secret_found = SECRET_RE.search(html)
    assert secret_found
    secret = secret_found.group(1)
    done = await client.post(
        f"/portal/setup/{token}",
        data={
            "csrf": csrf_of(html),
            "login": login,
            "passphrase": passphrase,
            "again": passphrase,
            "code": pyotp.TOTP(secret).at(harness.clock()),
        },
    )
    body = await done.text()
    assert done.status == 200, body
    codes = CODES_RE.findall(body)
    assert len(codes) == 10
    # The code used at set-up is spent: log in with the next one.
    harness.clock.advance(seconds=30)
    async with transaction(harness.db.sessions) as session:
        from storage.portal import advocate_by_login

        row = await advocate_by_login(session, login)
        assert row is not None
    return Account(row.id, login, passphrase, secret, codes)


async def log_in(
    harness: PortalHarness,
    client: TestClient[web.Request, web.Application],
    account: Account,
    *,
    code: str | None = None,
    passphrase: str | None = None,
) -> int:
    csrf = await get_csrf(client, "/portal/login")
    response = await client.post(
        "/portal/login",
        data={
            "csrf": csrf,
            "login": account.login,
            "passphrase": account.passphrase if passphrase is None else passphrase,
            "code": account.code(harness.clock()) if code is None else code,
        },
        allow_redirects=False,
    )
    return response.status


async def unlock(
    harness: PortalHarness, client: TestClient[web.Request, web.Application], org: str = ORG
) -> int:
    csrf = await get_csrf(client, "/portal/unlock")
    from aiohttp import FormData

    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("passphrase", IDENTITY_PASSPHRASE)
    form.add_field("identity", harness.identities[org], filename=f"{org}.identity")
    response = await client.post("/portal/unlock", data=form, allow_redirects=False)
    return response.status


async def post_form(
    client: TestClient[web.Request, web.Application], page: str, action: str, **fields: str
) -> int:
    csrf = await get_csrf(client, page)
    response = await client.post(action, data={"csrf": csrf, **fields}, allow_redirects=False)
    return response.status


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[PortalHarness]:
    clock = Clock()
    signer = generate_signing_key()
    portal = Portal(
        sessions=db.sessions,
        settings=PortalSettings(kdf=CHEAP_KDF, password_cost=CHEAP_PASSWORDS),
        secrets=PortalSecrets(secrets.token_bytes(32)),
        flow=load_flow(),
        deployment=load_deployment(bundled_deployment_path()),
        clock=clock,
        verify_keys=[signer.verify_key],
    )
    app = web.Application()
    mount_portal(app, portal)
    server = TestServer(app)
    harness = PortalHarness(db, portal, clock, server, signer)
    for org in (ORG, OTHER_ORG):
        private, public = generate_keypair()
        async with transaction(db.sessions) as session:
            await add_org_key(session, org_key_row(org, public, T0 - dt.timedelta(days=1)))
        harness.org_keys[org] = private
        harness.identities[org] = wrap_private_key(
            private, IDENTITY_PASSPHRASE.encode(), org=org, params=CHEAP_KDF
        )
    await server.start_server()
    try:
        yield harness
    finally:
        await server.close()
