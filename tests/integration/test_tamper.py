"""What someone who can write to the database (and read everything in it) can and cannot do to
a contact request, on SQLite and PostgreSQL: change a triage column, insert a request of their
own sealed with the public key the database holds, or slip in a key of their own. Each is
detected at opening, reported by the verdict, or refused."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from bot.config import bundled_deployment_path, load_deployment
from bot.keyring import key_problems, key_warnings, missing_keys
from flows.deployment import Deployment
from storage import org_keys
from storage.db import transaction
from storage.errors import SealingError
from storage.models import ContactRequest, OrganisationKey
from storage.requests import (
    NewRequest,
    check_request,
    open_request,
    payload,
    reference_hash,
    store_request,
)
from storage.sealing import (
    Authenticity,
    RecipientPrivateKey,
    RecipientPublicKey,
    SealContext,
    envelope_key_id,
    generate_keypair,
    seal,
)
from storage.signing import SigningKey, generate_signing_key
from tests.integration.support import Database, now, org_key_row

BOT = SigningKey(b"B" * 32)
TRUSTED = [BOT.verify_key]
ANSWERS = {"consent": "yes", "method": "call", "phone": "+447911123456", "codeword": "Wren"}


def make_deployment(*, fictional: bool, key_fingerprints: tuple[str, ...] = ()) -> Deployment:
    """The bundled example with one receiving organisation, `hub`."""
    base = load_deployment(bundled_deployment_path())
    hub = replace(
        base.organisation(base.default_organisation), id="hub", key_fingerprints=key_fingerprints
    )
    return replace(
        base,
        organisations=(hub,),
        default_organisation="hub",
        routing_by_language={},
        fictional=fictional,
    )


async def setup_key(db: Database, org: str = "org-a") -> tuple[RecipientPrivateKey, str]:
    private, public = generate_keypair()
    async with transaction(db.sessions) as s:
        await s.merge(org_key_row(org, public, now() - dt.timedelta(days=1)))
    return private, public.fingerprint


async def store(
    db: Database,
    *,
    pinned: frozenset[str] | None = None,
    urgent: bool = True,
    signer: SigningKey = BOT,
) -> str:
    async with transaction(db.sessions) as s:
        stored = await store_request(
            s,
            NewRequest(answers=ANSWERS, language="pl", urgent=urgent, organisation="org-a"),
            owner_key="f" * 64,
            lookup_key=b"L" * 32,
            now=now(),
            retention=dt.timedelta(days=30),
            notify=False,
            signer=signer,
            pinned=pinned,
        )
    return stored.request_id


async def fetch(db: Database, request_id: str) -> ContactRequest:
    async with db.sessions() as s:
        row = await s.get(ContactRequest, request_id)
    assert row is not None
    return row


async def execute(db: Database, sql: str, **params: object) -> None:
    async with transaction(db.sessions) as s:
        await s.execute(text(sql), params)


# ---- a changed cleartext column -----------------------------------------------------------


async def test_a_genuine_request_opens_as_genuine(db: Database) -> None:
    private, _ = await setup_key(db)
    row = await fetch(db, await store(db))
    opened = open_request(row, [private], TRUSTED)
    assert opened.verdict.authenticity == Authenticity.GENUINE
    assert opened.verdict.altered == ()
    assert opened.answers == ANSWERS
    assert check_request(row, TRUSTED).genuine


@pytest.mark.parametrize(
    ("sql", "field", "sealed"),
    [
        ("UPDATE contact_requests SET urgent = :v WHERE id = :id", "urgent", True),
        ("UPDATE contact_requests SET language = :v WHERE id = :id", "language", "pl"),
    ],
    ids=["urgent", "language"],
)
async def test_an_altered_triage_column_is_flagged_at_opening(
    db: Database, sql: str, field: str, sealed: object
) -> None:
    private, _ = await setup_key(db)
    request_id = await store(db)
    await execute(db, sql, v=False if field == "urgent" else "en", id=request_id)
    row = await fetch(db, request_id)
    assert getattr(row, field) != sealed  # the database now says otherwise

    verdict = check_request(row, TRUSTED)  # before opening, without a private key
    assert (verdict.authenticity, verdict.altered) == (Authenticity.ALTERED, (field,))
    opened = open_request(row, [private], TRUSTED)
    assert (opened.verdict.authenticity, opened.verdict.altered) == (
        Authenticity.ALTERED,
        (field,),
    )
    # It still opens, and says what the bot sealed.
    assert opened.answers == ANSWERS
    assert opened.sealed[field] == sealed


async def test_a_moved_creation_time_or_key_id_is_flagged(db: Database) -> None:
    private, _ = await setup_key(db)
    request_id = await store(db)
    later = now() + dt.timedelta(days=20)
    await execute(
        db, "UPDATE contact_requests SET created_at = :v WHERE id = :id", v=later, id=request_id
    )
    await execute(db, "UPDATE contact_requests SET key_id = 'other' WHERE id = :id", id=request_id)
    opened = open_request(await fetch(db, request_id), [private], TRUSTED)
    assert opened.verdict.authenticity == Authenticity.ALTERED
    assert set(opened.verdict.altered) == {"created_at", "key_id"}


async def test_an_envelope_copied_into_another_row_is_flagged(db: Database) -> None:
    private, _ = await setup_key(db)
    first, second = await store(db, urgent=True), await store(db, urgent=False)
    donor = await fetch(db, first)
    await execute(
        db, "UPDATE contact_requests SET envelope = :v WHERE id = :id", v=donor.envelope, id=second
    )
    opened = open_request(await fetch(db, second), [private], TRUSTED)
    assert opened.verdict.authenticity == Authenticity.ALTERED
    assert {"request_id", "urgent"} <= set(opened.verdict.altered)


# ---- a request the bot did not write ------------------------------------------------------


async def forge(db: Database, signer: SigningKey | None) -> str:
    """What an attacker with write access can do: seal a request of their own to the public
    key the database holds, and insert it."""
    async with db.sessions() as s:
        key_row = (await s.scalars(select(OrganisationKey))).one()
    public = RecipientPublicKey.from_text(key_row.public_key)
    request_id, at = uuid.uuid4().hex, now()
    request = NewRequest(answers={"message": "call 07700 900123"}, language="en", urgent=True,
                         organisation="org-a")  # fmt: skip
    context = SealContext(request_id, "org-a", at, language="en", urgent=True)
    envelope = seal(payload(request, request_id, at), public, context, signer)
    async with transaction(db.sessions) as s:
        s.add(
            ContactRequest(
                id=request_id, organisation="org-a", language="en", created_at=at,
                status="new", urgent=True, key_id=public.key_id, envelope=envelope,
                reference_hash=reference_hash(b"x" * 32, request_id), owner_key="e" * 64,
                delete_after=at + dt.timedelta(days=30),
            )
        )  # fmt: skip
    return request_id


@pytest.mark.parametrize("signed", [True, False], ids=["own-signing-key", "unsigned"])
async def test_a_forged_request_is_not_genuine(db: Database, signed: bool) -> None:
    private, _ = await setup_key(db)
    request_id = await forge(db, generate_signing_key() if signed else None)
    opened = open_request(await fetch(db, request_id), [private], TRUSTED)
    expected = Authenticity.FORGED if signed else Authenticity.UNSIGNED
    assert opened.verdict.authenticity == expected
    assert not opened.verdict.genuine
    assert opened.answers == {"message": "call 07700 900123"}  # readable, but flagged


async def test_a_re_signed_or_broken_signature_is_forged(db: Database) -> None:
    private, _ = await setup_key(db)
    request_id = await store(db)
    row = await fetch(db, request_id)
    broken = row.envelope[:-1] + bytes([row.envelope[-1] ^ 1])
    await execute(
        db, "UPDATE contact_requests SET envelope = :v WHERE id = :id", v=broken, id=request_id
    )
    assert open_request(await fetch(db, request_id), [private], TRUSTED).verdict.authenticity == (
        Authenticity.FORGED
    )
    # A genuine request checked against a key that is not the bot's is not genuine either.
    other = [generate_signing_key().verify_key]
    assert check_request(row, other).authenticity == Authenticity.FORGED


# ---- a substituted key --------------------------------------------------------------------


async def test_a_key_the_deployment_does_not_pin_is_never_sealed_to(db: Database) -> None:
    _, pinned_fp = await setup_key(db)
    # The attacker inserts a newer key of their own for the organisation.
    _, theirs = generate_keypair()
    async with transaction(db.sessions) as s:
        await s.merge(org_key_row("org-a", theirs, now()))

    unpinned = await fetch(db, await store(db, pinned=None))
    assert envelope_key_id(unpinned.envelope) == theirs.key_id  # why pins are needed
    pinned = await fetch(db, await store(db, pinned=frozenset({pinned_fp})))
    assert envelope_key_id(pinned.envelope) != theirs.key_id
    with pytest.raises(SealingError, match="pinned in the deployment"):
        await store(db, pinned=frozenset({"0" * 64}))


async def test_a_real_deployment_without_a_pinned_key_is_refused(db: Database) -> None:
    _, fingerprint = await setup_key(db, "hub")
    real = make_deployment(fictional=False)
    assert [o.id for o in real.receiving_organisations] == ["hub"]
    assert await missing_keys(db.sessions, real) == ["hub"]
    (problem,) = await key_problems(db.sessions, real)
    assert "has no active key pinned in the deployment" in problem

    pinned = make_deployment(fictional=False, key_fingerprints=(fingerprint,))
    assert await missing_keys(db.sessions, pinned) == []
    assert await key_problems(db.sessions, pinned, BOT.verify_key) == []
    _, theirs = generate_keypair()
    async with transaction(db.sessions) as s:
        await s.merge(org_key_row("hub", theirs, now()))
    assert await key_problems(db.sessions, pinned) == []  # still sealed to the pinned one
    warnings = await key_warnings(db.sessions, pinned, BOT.verify_key)
    assert any(theirs.key_id in w and "not pinned" in w for w in warnings)

    # Fictional and unpinned: today's behaviour, with a warning.
    demo = make_deployment(fictional=True)
    assert demo.key_pins("hub") is None
    assert await missing_keys(db.sessions, demo) == []
    assert any("pins no key" in w for w in await key_warnings(db.sessions, demo, BOT.verify_key))


async def test_a_revoked_key_is_not_sealed_to_and_its_requests_still_open(db: Database) -> None:
    old_private, old_fp = await setup_key(db)
    old_request = await store(db)
    _, new_public = generate_keypair()
    async with transaction(db.sessions) as s:
        await s.merge(org_key_row("org-a", new_public, now()))
    pins = frozenset({old_fp, new_public.fingerprint})
    rotated = await fetch(db, await store(db, pinned=pins))
    assert envelope_key_id(rotated.envelope) == new_public.key_id  # the newest pinned key
    async with transaction(db.sessions) as s:
        revoked = await org_keys.revoke(s, new_public.key_id)
    assert revoked is not None and not revoked.active
    row = await fetch(db, await store(db, pinned=pins))
    assert envelope_key_id(row.envelope) != new_public.key_id
    assert open_request(await fetch(db, old_request), [old_private], TRUSTED).verdict.genuine


# ---- envelopes from before signing --------------------------------------------------------


async def test_an_old_unsigned_envelope_still_opens_reported_as_unsigned(db: Database) -> None:
    private, _ = await setup_key(db)
    request_id = await forge(db, None)  # exactly what store_request wrote before signing
    opened = open_request(await fetch(db, request_id), [private], TRUSTED)
    assert (opened.verdict.authenticity, opened.verdict.altered) == (Authenticity.UNSIGNED, ())
    # Its payload repeats the triage fields: a changed one shows even without a signature.
    await execute(
        db, "UPDATE contact_requests SET urgent = :v WHERE id = :id", v=False, id=request_id
    )
    opened = open_request(await fetch(db, request_id), [private], TRUSTED)
    assert (opened.verdict.authenticity, opened.verdict.altered) == (
        Authenticity.UNSIGNED,
        ("urgent",),
    )
