"""Sealed contact requests in a real database: what is in the clear, what opens, rotation,
reference lookups and /forget."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from bot.keyring import register_public_key
from storage import queries
from storage.db import transaction
from storage.errors import SealingError
from storage.models import ContactRequest, Notice, OrganisationKey, RemovedRequest
from storage.requests import (
    PAYLOAD_FORMAT,
    NewRequest,
    StoredRequest,
    reference_hash,
    store_request,
)
from storage.sealing import (
    ENVELOPE_VERSION,
    RecipientPrivateKey,
    SealContext,
    envelope_key_id,
    envelope_version,
    generate_keypair,
    open_sealed,
)
from storage.signing import SigningKey
from tests.integration.support import (
    Database,
    all_values,
    aware,
    cells_containing,
    contact_request,
    now,
    org_key_row,
)

LOOKUP_KEY = b"L" * 32
SIGNER = SigningKey(b"S" * 32)
OWNER = "f" * 64
ANSWERS = {
    "consent": "yes",
    "method": "call",
    "phone": "+447911123456",
    "codeword": "Kingfisher-Zebra-42",
    "message": "Zadzwoń po 18:00, proszę",
}
RETENTION = dt.timedelta(days=30)
# Everything a row may hold. A new column must be justified here: is it needed in the clear?
CLEAR_COLUMNS = {"organisation", "language", "created_at", "status", "urgent", "key_id"}
OPAQUE_COLUMNS = {"id", "envelope", "reference_hash", "owner_key", "delete_after"}
LIFECYCLE_COLUMNS = {"picked_up_at", "closed_at"}


def request(org: str = "org-a", answers: dict[str, str] | None = None) -> NewRequest:
    return NewRequest(answers=answers or ANSWERS, language="pl", urgent=True, organisation=org)


async def store(
    db: Database,
    org: str = "org-a",
    *,
    owner: str = OWNER,
    at: dt.datetime | None = None,
    notify: bool = False,
    answers: dict[str, str] | None = None,
) -> StoredRequest:
    async with transaction(db.sessions) as s:
        return await store_request(
            s,
            request(org, answers),
            owner_key=owner,
            lookup_key=LOOKUP_KEY,
            now=at or now(),
            retention=RETENTION,
            notify=notify,
            signer=SIGNER,
            pinned=None,
        )


async def fetch(db: Database, request_id: str) -> ContactRequest:
    async with db.sessions() as s:
        row = await s.get(ContactRequest, request_id)
    assert row is not None
    return row


def open_row(row: ContactRequest, identities: list[RecipientPrivateKey]) -> dict[str, object]:
    context = SealContext(request_id=row.id, org=row.organisation, created_at=aware(row.created_at))
    doc = json.loads(open_sealed(row.envelope, identities, context))
    assert isinstance(doc, dict)
    return doc


async def test_store_request_seals_everything_but_triage(db: Database) -> None:
    private, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    at = now()
    stored = await store(db, at=at)
    assert re.fullmatch(r"\d{16}", stored.reference)

    row = await fetch(db, stored.request_id)
    columns = set(ContactRequest.__table__.columns.keys())
    assert columns == CLEAR_COLUMNS | OPAQUE_COLUMNS | LIFECYCLE_COLUMNS, (
        "contact_requests changed: check that nothing personal is stored in the clear"
    )
    assert (row.organisation, row.language, row.status, row.urgent, row.key_id) == (
        "org-a",
        "pl",
        "new",
        True,
        public.key_id,
    )
    assert aware(row.created_at) == at
    assert aware(row.delete_after) == at + RETENTION
    assert row.picked_up_at is None and row.closed_at is None
    assert row.owner_key == OWNER
    assert row.reference_hash == reference_hash(LOOKUP_KEY, stored.reference)
    assert envelope_key_id(row.envelope) == public.key_id
    assert envelope_version(row.envelope) == ENVELOPE_VERSION

    # Nothing the victim gave, nor the reference code itself, is anywhere in the clear.
    async with db.sessions() as s:
        cells = await all_values(s)
    for needle in [*ANSWERS.values(), "7911123456", stored.reference]:
        assert cells_containing(cells, needle) == [], needle

    doc = open_row(row, [private])
    assert doc["answers"] == ANSWERS
    assert doc["format"] == PAYLOAD_FORMAT
    assert (doc["request_id"], doc["organisation"], doc["language"], doc["urgent"]) == (
        row.id,
        "org-a",
        "pl",
        True,
    )
    assert dt.datetime.fromisoformat(str(doc["created_at"])) == at


async def test_envelope_is_bound_to_its_row(db: Database) -> None:
    private, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    first = await fetch(db, (await store(db)).request_id)
    second = await fetch(db, (await store(db)).request_id)
    moved = SealContext(
        request_id=second.id, org=second.organisation, created_at=aware(second.created_at)
    )
    with pytest.raises(SealingError):
        open_sealed(first.envelope, [private], moved)
    other_org = SealContext(request_id=first.id, org="org-b", created_at=aware(first.created_at))
    with pytest.raises(SealingError):
        open_sealed(first.envelope, [private], other_org)
    assert open_row(first, [private])["answers"] == ANSWERS


async def test_status_by_reference(db: Database) -> None:
    _, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    stored = await store(db)
    grouped = " ".join(stored.reference[i : i + 4] for i in range(0, 16, 4))
    wrong = f"{(int(stored.reference) + 1) % 10**16:016d}"
    async with db.sessions() as s:
        assert (
            await queries.status_by_reference(s, reference_hash(LOOKUP_KEY, stored.reference))
            == "new"
        )
        # The victim may type it with the spaces the bot shows.
        assert await queries.status_by_reference(s, reference_hash(LOOKUP_KEY, grouped)) == "new"
        assert await queries.status_by_reference(s, reference_hash(LOOKUP_KEY, wrong)) is None
        other_server = reference_hash(b"x" * 32, stored.reference)
        assert await queries.status_by_reference(s, other_server) is None
        # ... or with Arabic-Indic / Persian digits from an Arabic or Farsi keyboard.
        for script_zero in ("\u0660", "\u06f0"):
            local = "".join(chr(ord(script_zero) + int(ch)) for ch in grouped if ch != " ")
            assert not local.isascii()
            found = await queries.status_by_reference(s, reference_hash(LOOKUP_KEY, local))
            assert found == "new", script_zero

    async with transaction(db.sessions) as s:
        await queries.set_request_status(s, stored.request_id, "picked_up", now())
    async with db.sessions() as s:
        ref = reference_hash(LOOKUP_KEY, stored.reference)
        assert await queries.status_by_reference(s, ref) == "picked_up"


async def test_no_active_key_is_a_sealing_error_and_stores_nothing(db: Database) -> None:
    with pytest.raises(SealingError):
        await store(db)
    _, public = generate_keypair()
    async with transaction(db.sessions) as s:
        await queries.add_org_key(s, org_key_row("org-a", public, now(), active=False))
    with pytest.raises(SealingError):
        await store(db)
    _, other = generate_keypair()
    await register_public_key(db.sessions, "org-b", other)  # another organisation's key
    with pytest.raises(SealingError):
        await store(db, "org-a")
    async with db.sessions() as s:
        assert await queries.count(s, ContactRequest) == 0


async def test_key_rotation_uses_newest_and_old_requests_still_open(db: Database) -> None:
    at = now()
    key1, pub1 = generate_keypair()
    key2, pub2 = generate_keypair()
    async with transaction(db.sessions) as s:
        await queries.add_org_key(s, org_key_row("org-a", pub1, at - dt.timedelta(days=1)))
    old = await fetch(db, (await store(db)).request_id)
    assert old.key_id == pub1.key_id

    async with transaction(db.sessions) as s:
        await queries.add_org_key(s, org_key_row("org-a", pub2, at))
    new = await fetch(db, (await store(db)).request_id)
    assert new.key_id == pub2.key_id
    assert envelope_key_id(new.envelope) == pub2.key_id

    both = [key1, key2]
    assert open_row(old, both)["answers"] == ANSWERS
    assert open_row(new, both)["answers"] == ANSWERS
    assert open_row(old, {key1.key_id: key1, key2.key_id: key2})["answers"] == ANSWERS
    with pytest.raises(SealingError):
        open_row(old, [key2])

    # Retiring the newest key (active=False) falls back to the older one.
    async with transaction(db.sessions) as s:
        retired = await s.get(OrganisationKey, pub2.key_id)
        assert retired is not None
        retired.active = False
    assert (await fetch(db, (await store(db)).request_id)).key_id == pub1.key_id


async def test_notice_carries_no_personal_data(db: Database) -> None:
    _, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    await store(db, notify=False)
    async with db.sessions() as s:
        assert await queries.count(s, Notice) == 0
    await store(db, notify=True)
    async with db.sessions() as s:
        notice = (await s.scalars(select(Notice))).one()
    assert (notice.organisation, notice.language, notice.urgent, notice.sent_at) == (
        "org-a",
        "pl",
        True,
        None,
    )


async def test_requests_for_organisation_in_creation_order(db: Database) -> None:
    at = now()
    for org in ("org-a", "org-b"):
        await register_public_key(db.sessions, org, generate_keypair()[1])
    a2 = await store(db, at=at)
    a1 = await store(db, at=at - dt.timedelta(minutes=5))
    await store(db, "org-b", at=at)
    async with db.sessions() as s:
        rows = await queries.requests_for(s, "org-a")
    assert [r.id for r in rows] == [a1.request_id, a2.request_id]


async def test_forget_deletes_new_and_closed_and_withdraws_picked_up(db: Database) -> None:
    at = now()
    other = "e" * 64
    rows = {
        "new1": contact_request("new1", at, owner_key=OWNER),
        "new2": contact_request("new2", at, owner_key=OWNER),
        "picked": contact_request("picked", at, owner_key=OWNER, status="picked_up"),
        "closed": contact_request(
            "closed", at, owner_key=OWNER, status="closed", closed_at=at - dt.timedelta(days=1)
        ),
        "theirs": contact_request("theirs", at, owner_key=other),
        "theirs_picked": contact_request("theirs_picked", at, owner_key=other, status="picked_up"),
    }
    async with transaction(db.sessions) as s:
        for row in rows.values():
            await queries.insert_request(s, row)

    forgot_at = at + dt.timedelta(minutes=1)
    async with transaction(db.sessions) as s:
        result = await queries.forget_requests(s, OWNER, forgot_at)
    # new ones and closed ones (nobody works on them) go; the one in hand is withdrawn
    assert (result.deleted, result.withdrawn) == (3, 1)

    async with db.sessions() as s:
        left = {r.id: r for r in (await s.scalars(select(ContactRequest))).all()}
    assert set(left) == {"picked", "theirs", "theirs_picked"}
    assert left["picked"].status == "withdrawn"
    assert left["picked"].closed_at is not None
    assert aware(left["picked"].closed_at) == forgot_at
    assert left["picked"].envelope == b""  # her answers go at once, not at the purge
    assert left["theirs_picked"].status == "picked_up"
    assert left["theirs_picked"].envelope != b""

    async with transaction(db.sessions) as s:  # a second /forget finds nothing more to do
        again = await queries.forget_requests(s, OWNER, forgot_at)
    assert (again.deleted, again.withdrawn) == (0, 0)


async def test_forget_sealed_request_through_store_request(db: Database) -> None:
    _, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    stored = await store(db)
    async with transaction(db.sessions) as s:
        result = await queries.forget_requests(s, OWNER, now())
    assert (result.deleted, result.withdrawn) == (1, 0)
    async with db.sessions() as s:
        assert await s.get(ContactRequest, stored.request_id) is None
        ref = reference_hash(LOOKUP_KEY, stored.reference)
        # /status can say it was deleted; a number never issued still matches nothing.
        assert await queries.status_by_reference(s, ref) == queries.REMOVED
        assert await queries.status_by_reference(s, reference_hash(LOOKUP_KEY, "1" * 16)) is None
        (left,) = (await s.scalars(select(RemovedRequest))).all()
        assert left.reference_hash != ref  # none of the deleted row's bytes are kept
        assert aware(left.forget_after) - now() <= queries.REMOVED_TTL


@pytest.mark.parametrize("offset", [2, -5], ids=["+02:00", "-05:00"])
async def test_request_stored_with_a_non_utc_clock_still_opens(db: Database, offset: int) -> None:
    """SQLite DateTime keeps no offset: store_request converts `now` to UTC, or created_at
    would read back hours off and the envelope, bound to the true instant, would not open."""
    private, public = generate_keypair()
    await register_public_key(db.sessions, "org-a", public)
    at = dt.datetime.now(dt.timezone(dt.timedelta(hours=offset)))
    row = await fetch(db, (await store(db, at=at)).request_id)
    assert aware(row.created_at) == at
    assert aware(row.delete_after) == at + RETENTION
    assert open_row(row, [private])["answers"] == ANSWERS
