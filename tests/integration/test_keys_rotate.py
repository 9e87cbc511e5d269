"""`safebot keys rotate`, the real command as a child process against a migrated database
(SQLite and PostgreSQL), with a real portal on the same database and the same portal key.

A rotation makes a new organisation key, seals it to every advocate who has access (and to
no one removed, never granted, or whose public key lost the portal key's MAC), and keeps the
old key: once the deployment pins the new key, new requests are sealed to it, and both old
and new requests open in the portal (after logging in again) and with their identity files.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.config import load_deployment
from bot.portal import accounts
from bot.portal.app import mount_portal
from bot.portal.config import PortalSecrets, PortalSettings
from bot.portal.state import Portal
from flows.definition import load_flow
from flows.deployment import Deployment
from storage import audit
from storage.db import transaction
from storage.models import Advocate, ContactRequest, KeyGrant
from storage.requests import NewRequest, store_request
from storage.signing import SigningKey, generate_signing_key
from tests.integration.portal_support import (
    CHEAP_KDF,
    CHEAP_PASSWORDS,
    IDENTITY_PASSPHRASE,
    LOOKUP_KEY,
    Account,
    Clock,
    PortalHarness,
    log_in,
    post_form,
    set_up,
    unlock,
)
from tests.integration.support import Database
from tests.integration.test_cli_errors import DEPLOYMENT, Result, fails_in_one_line, safebot

ORG = "test-hub"
Client = TestClient[web.Request, web.Application]


def deployment_text(signer: SigningKey, pin_line: str | None = None) -> str:
    text = DEPLOYMENT.replace(
        'languages = ["en"]\n',
        f'languages = ["en"]\nrequest_signing_keys = ["{signer.verify_key.to_text()}"]\n',
    )
    return text if pin_line is None else text.replace("keeps = ", f"{pin_line}\nkeeps = ")


def pin_line(result: Result) -> str:
    (line,) = [line for line in result.out.splitlines() if line.startswith("key_fingerprints = ")]
    return line


def key_rows(home: Path, db: Database) -> dict[str, list[str]]:
    listed = safebot(home, "keys", "list", DATABASE_URL=db.url)
    assert listed.code == 0, listed.err
    return {line.split()[1]: line.split()[5:] for line in listed.out.splitlines()
            if line.startswith(f"{ORG} ")}  # fmt: skip


@asynccontextmanager
async def serving(
    db: Database, deployment: Deployment, portal_secrets: PortalSecrets, clock: Clock,
    signer: SigningKey,
) -> AsyncIterator[PortalHarness]:  # fmt: skip
    """A portal process started on `deployment` (a restart starts another one)."""
    portal = Portal(
        sessions=db.sessions,
        settings=PortalSettings(kdf=CHEAP_KDF, password_cost=CHEAP_PASSWORDS),
        secrets=portal_secrets,
        flow=load_flow(),
        deployment=deployment,
        clock=clock,
        verify_keys=[signer.verify_key],
    )
    app = web.Application()
    mount_portal(app, portal)
    server = TestServer(app)
    await server.start_server()
    try:
        yield PortalHarness(db, portal, clock, server, signer)
    finally:
        await server.close()


async def submit(harness: PortalHarness, message: str) -> ContactRequest:
    """A request as the bot stores it: sealed to the key the deployment's pins choose."""
    async with transaction(harness.db.sessions) as session:
        stored = await store_request(
            session,
            NewRequest(answers={"message": message}, language="en", urgent=False, organisation=ORG),
            owner_key="owner-" + secrets.token_hex(4),
            lookup_key=LOOKUP_KEY,
            now=harness.clock(),
            retention=dt.timedelta(days=30),
            notify=False,
            signer=harness.signer,
            pinned=harness.portal.deployment.key_pins(ORG),
        )
        row = await session.get(ContactRequest, stored.request_id)
        assert row is not None
        return row


async def read_request(client: Client, request_id: str) -> str:
    url = f"/portal/requests/{request_id}"
    await post_form(client, "/portal/inbox", f"{url}/claim")
    return await (await client.get(url)).text()


async def grants(db: Database, key_id: str) -> set[str]:
    async with transaction(db.sessions) as session:
        rows = await session.scalars(select(KeyGrant.advocate_id).where(KeyGrant.key_id == key_id))
        return set(rows.all())


def exported(home: Path, db: Database, *identities: Path) -> tuple[Result, dict[str, bool]]:
    """Which requests the export opened (True) or could not open (False)."""
    args = [arg for path in identities for arg in ("--identity", str(path))]
    result = safebot(
        home, "handoffs", "export", "--org", ORG, *args,
        "--passphrase-file", str(home / "pass.txt"), DATABASE_URL=db.url,
    )  # fmt: skip
    records = [json.loads(line) for line in result.out.splitlines()]
    return result, {r["request_id"]: "answers" in r for r in records}


async def test_rotate_rewraps_for_advocates_and_keeps_old_requests_open(
    db: Database, tmp_path: Path
) -> None:
    home = tmp_path
    signer = generate_signing_key()
    portal_secrets = PortalSecrets(secrets.token_bytes(32))
    portal_key = base64.urlsafe_b64encode(portal_secrets.root).decode()
    (home / "pass.txt").write_text(IDENTITY_PASSPHRASE + "\n")
    (home / "deployment.toml").write_text(deployment_text(signer), encoding="utf-8")

    # The organisation's first key, pinned.
    made = safebot(
        home, "keys", "generate", "--org", ORG, "--out", str(home / "old.identity"),
        "--passphrase-file", str(home / "pass.txt"), DATABASE_URL=db.url,
    )  # fmt: skip
    assert made.code == 0, made.err
    old_key = made.out.split()[1]
    (home / "deployment.toml").write_text(deployment_text(signer, pin_line(made)))
    first = load_deployment(home / "deployment.toml")

    clock = Clock()
    accounts_of: dict[str, Account] = {}
    async with (
        serving(db, first, portal_secrets, clock, signer) as harness,
        harness.client() as client,
    ):
        harness.identities[ORG] = (home / "old.identity").read_bytes()
        ids = {}
        for name, admin in (("Ada", True), ("Bea", False), ("Cy", False), ("Dot", False),
                            ("Eli", False), ("Fin", False)):  # fmt: skip
            ids[name], token = await harness.invite(name, org=ORG, admin=admin)
            if name != "Fin":  # Fin never sets up
                client.session.cookie_jar.clear()
                accounts_of[name] = await set_up(harness, client, token, login=f"{name.lower()}-1")
        client.session.cookie_jar.clear()
        assert await log_in(harness, client, accounts_of["Ada"]) == 303
        assert await unlock(harness, client, ORG) == 303  # Ada's grant, from the identity file
        for name in ("Bea", "Cy", "Dot"):  # Eli is never given access
            grant = f"/portal/team/{ids[name]}/grant"
            assert await post_form(client, "/portal/team", grant) == 303
        await accounts.remove(db.sessions, portal_secrets, ids["Cy"], clock())
        async with transaction(db.sessions) as session:  # Dot's public key swapped in the db
            await session.execute(
                update(Advocate).where(Advocate.id == ids["Dot"]).values(public_key_mac="0" * 64)
            )
        old_request = await submit(harness, "CANARY-OLD")
    assert old_request.key_id == old_key
    assert await grants(db, old_key) == {ids["Ada"], ids["Bea"], ids["Dot"]}

    rotate = [
        "keys", "rotate", "--org", ORG, "--out", str(home / "new.identity"),
        "--passphrase-file", str(home / "pass.txt"),
    ]  # fmt: skip
    # Away from the server (no portal key): refused before anything is made.
    away = safebot(home, *rotate, DATABASE_URL=db.url)
    fails_in_one_line(away, "portal's server key is not here", "SAFEBOT_PORTAL_KEY")
    assert not (home / "new.identity").exists()

    rotated = safebot(home, *rotate, DATABASE_URL=db.url, SAFEBOT_PORTAL_KEY=portal_key)
    assert rotated.code == 0, rotated.err
    out = rotated.out
    new_key = out.split()[1]
    assert new_key != old_key
    assert (home / "new.identity").stat().st_mode & 0o777 == 0o600
    assert "sealed to 2 advocate(s) with access" in out
    assert f"NOT sealed to advocate {ids['Dot']} (Dot)" in out
    assert "1 set-up advocate(s) without access were left out" in out
    assert "keep the old identity file" in out and "log in again" in out
    for name in ("Ada", "Bea", "Cy", "Eli", "Fin"):
        assert f"({name})" not in out  # only the refused one is named
    assert IDENTITY_PASSPHRASE not in out + rotated.err
    # The printed line makes the new key current and keeps the old one pinned.
    line = pin_line(rotated)
    old_pin = pin_line(made)[len("key_fingerprints = [") : -1]
    assert line.startswith('key_fingerprints = ["') and line.endswith(f", {old_pin}]")

    # Re-wrapped for the advocates with access only; their old grants stay.
    assert await grants(db, new_key) == {ids["Ada"], ids["Bea"]}
    assert await grants(db, old_key) == {ids["Ada"], ids["Bea"], ids["Dot"]}
    async with transaction(db.sessions) as session:
        report = await audit.verify(session, portal_secrets.audit)
        last = (await audit.for_organisation(session, ORG, limit=1))[0]
    assert report.ok
    assert (last.action, last.actor, last.subject) == ("key_rotate", "cli", new_key)
    assert last.detail == "granted 2, refused 1"

    # Until the deployment pins it, nothing is sealed to the new key.
    assert key_rows(home, db) == {old_key: ["yes", "yes", "yes"], new_key: ["yes", "NO"]}
    (home / "deployment.toml").write_text(deployment_text(signer, line))
    assert key_rows(home, db) == {
        old_key: ["yes", "yes", "old", "(opens", "earlier", "requests)"],
        new_key: ["yes", "yes", "yes"],
    }
    check = safebot(home, "check", DATABASE_URL=db.url)
    assert (check.code, check.out) == (0, "no problems\n"), check.out

    # The restart on the new pins: new requests go to the new key, and an advocate who logs
    # in again opens both the new and the old one.
    repinned = load_deployment(home / "deployment.toml")
    async with (
        serving(db, repinned, portal_secrets, clock, signer) as harness,
        harness.client() as client,
    ):
        new_request = await submit(harness, "CANARY-NEW")
        assert new_request.key_id == new_key
        clock.advance(seconds=30)
        assert await log_in(harness, client, accounts_of["Bea"]) == 303
        (held,) = [harness.portal.keys.get(s) for s in harness.portal.keys.sessions()]
        assert set(held) == {old_key, new_key}
        assert "CANARY-NEW" in await read_request(client, new_request.id)
        assert "CANARY-OLD" in await read_request(client, old_request.id)
        # Dot got no new grant: she holds the old key only.
        client.session.cookie_jar.clear()
        assert await log_in(harness, client, accounts_of["Dot"]) == 303
        keys = [set(harness.portal.keys.get(s)) for s in harness.portal.keys.sessions()]
        assert sorted(keys, key=len) == [{old_key}, {old_key, new_key}]

    # Offline: each identity file opens the requests sealed to its key.
    result, opened = exported(home, db, home / "new.identity")
    assert result.code == 1 and opened == {new_request.id: True, old_request.id: False}
    result, opened = exported(home, db, home / "old.identity")
    assert result.code == 1 and opened == {new_request.id: False, old_request.id: True}
    result, opened = exported(home, db, home / "old.identity", home / "new.identity")
    assert result.code == 0 and opened == {new_request.id: True, old_request.id: True}


# ---- errors: one line, a non-zero exit, nothing made ---------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "deployment.toml").write_text(DEPLOYMENT, encoding="utf-8")
    (tmp_path / "pass.txt").write_text("a passphrase for the test\n")
    return tmp_path


def rotate(
    home: Path, *, org: str = ORG, out: str = "new.identity", pw: str = "pass.txt"
) -> Result:
    return safebot(
        home, "keys", "rotate", "--org", org, "--out", str(home / out),
        "--passphrase-file", str(home / pw),
    )  # fmt: skip


def test_rotate_errors(home: Path) -> None:
    helped = safebot(home, "keys", "rotate", "--help")
    assert helped.code == 0 and "DATABASE_URL" in helped.out and "SAFEBOT_PORTAL_KEY" in helped.out
    new = home / "new.identity"
    database = home / "data" / "safebot.db"
    assert fails_in_one_line(rotate(home)) == (
        f"safebot: no database at {database}; run `safebot migrate` or `safebot run` first"
    )
    assert not database.exists() and not new.exists()

    assert safebot(home, "migrate").code == 0
    assert fails_in_one_line(rotate(home)) == (
        f"safebot: {ORG} has no key to rotate: run `safebot keys generate --org {ORG}` first"
    )
    made = safebot(
        home, "keys", "generate", "--org", ORG, "--out", str(home / "old.identity"),
        "--passphrase-file", str(home / "pass.txt"),
    )  # fmt: skip
    assert made.code == 0, made.err

    assert fails_in_one_line(rotate(home, org="nope")) == (
        f"safebot: 'nope' is not an organisation that receives requests in "
        f"{home / 'deployment.toml'}"
    )
    assert fails_in_one_line(rotate(home, pw="missing.txt")) == (
        f"safebot: cannot read the passphrase file {home / 'missing.txt'}: "
        "No such file or directory"
    )
    assert fails_in_one_line(rotate(home, out="old.identity")) == (
        f"safebot: refusing to overwrite {home / 'old.identity'} (--out)"
    )
    (home / "weak.txt").write_text("password1234\n")
    fails_in_one_line(rotate(home, pw="weak.txt"), "the passphrase was refused", "guess")
    assert not new.exists()
    assert [line.split()[1] for line in safebot(home, "keys", "list").out.splitlines()
            if line.startswith(f"{ORG} ")] == [made.out.split()[1]]  # fmt: skip

    # With no advocate yet, a rotation is a new key and the line to pin it.
    rotated = rotate(home)
    assert rotated.code == 0, rotated.err
    assert "sealed to 0 advocate(s) with access" in rotated.out
    assert "new requests still go to the old key" in rotated.out
    assert fails_in_one_line(rotate(home)) == f"safebot: refusing to overwrite {new} (--out)"
