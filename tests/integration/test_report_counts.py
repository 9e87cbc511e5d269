"""Counting without tracking, on SQLite and PostgreSQL: every conversation and request is
counted (under "-" when she came by no campaign link), the campaign travels sealed inside the
request, the portal counts a pick-up (with its wait's bucket), outcomes and the close under
the campaign it reads from the sealed request ("?" when it cannot open it then), and no
outreach table holds a request id, a time finer than the week or anything that links a
count to a request. Then the report read from that database."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Mapping

import pytest
from sqlalchemy import select, update

import storage.requests
from bot.outreach_tables import report_tables
from bot.service import ConversationService
from flows import Started, TextReceived
from flows.outreach import encode, iso_week
from storage import outreach
from storage.db import transaction
from storage.models import (
    Base,
    ContactRequest,
    Conversation,
    OutcomeCount,
    OutreachCount,
    PickupTime,
)
from storage.requests import NewRequest, StoredRequest, store_request
from tests.integration.portal_support import (
    LOOKUP_KEY,
    ORG,
    T0,
    PortalHarness,
    harness,
    log_in,
    post_form,
    set_up,
)
from tests.integration.support import Database, all_values, cells_containing
from tests.integration.test_portal_work import _admin
from tests.integration.test_service import (  # noqa: F401  (fixtures)
    Victim,
    ctx,
    fill_form,
    open_request,
    org_keys,
    server_secrets,
    service,
)

__all__ = ["harness"]

ANSWERS = {"method": "call", "phone": "+447723918464", "message": "please call after six"}
COUNT_TABLES = {
    "outreach_counts": {
        "campaign",
        "language",
        "iso_week",
        "started",
        "requested",
        "picked_up",
        "closed",
    },
    "outcome_counts": {"campaign", "language", "iso_week", "outcome", "count"},
    "pickup_times": {"language", "iso_week", "bucket", "count"},
}
WEEK = re.compile(r"\d{4}-W\d{2}")


async def outreach_rows(db: Database) -> list[tuple[object, ...]]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(OutreachCount))).all()
    return sorted(
        (r.campaign, r.language, r.iso_week, r.started, r.requested, r.picked_up, r.closed)
        for r in rows
    )


async def outcome_rows(db: Database) -> list[tuple[object, ...]]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(OutcomeCount))).all()
    return sorted((r.campaign, r.language, r.iso_week, r.outcome, r.count) for r in rows)


async def pickup_rows(db: Database) -> list[tuple[object, ...]]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(PickupTime))).all()
    return sorted((r.language, r.iso_week, r.bucket, r.count) for r in rows)


async def assert_nothing_links_a_count_to_a_request(
    db: Database, needles: list[str], campaigns: list[str]
) -> None:
    """The canary: every column of the count tables, against every id, reference, key and
    time of the requests and conversations; and a campaign's code nowhere but in the
    campaigns list and the counters' campaign columns (never beside a request)."""
    for name, columns in COUNT_TABLES.items():
        assert set(Base.metadata.tables[name].columns.keys()) == columns, name
    async with db.sessions() as session:
        cells = await all_values(session)
        requests = (await session.scalars(select(ContactRequest))).all()
        conversations = (await session.scalars(select(Conversation))).all()
    for r in requests:
        needles += [r.id, r.id[:8], r.owner_key, r.reference_hash, r.key_id]
        needles += [r.created_at.isoformat()[:13], r.created_at.date().isoformat()]
    needles += [c.chat_key for c in conversations]
    for table, column, value in cells:
        if table not in COUNT_TABLES:
            continue
        assert not isinstance(value, dt.date | dt.datetime | bytes), (table, column)
        if column == "iso_week":
            assert isinstance(value, str) and WEEK.fullmatch(value), value
        for needle in needles:
            assert needle not in str(value), (table, column, needle)
    allowed = {"campaigns.code", "outreach_counts.campaign", "outcome_counts.campaign"}
    for code in campaigns:
        assert set(cells_containing(cells, code)) <= allowed, code


# ---- the bot: every conversation and request ------------------------------------------------


async def test_every_conversation_and_request_is_counted(
    db: Database,
    service: ConversationService,  # noqa: F811  (the fixture)
    org_keys: Mapping[str, object],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    week = iso_week(service.clock())
    async with transaction(db.sessions) as session:
        code = (await outreach.add_campaign(session, service.clock())).code

    # No campaign: her conversation is counted once, her request under "-".
    her = Victim(service)
    await fill_form(her)
    assert await outreach_rows(db) == [("-", "en", week, 1, 0, 0, 0)]
    await her.press("✅ Send")
    await her.send(Started(language_hint="en"))  # the same conversation, started again
    assert await outreach_rows(db) == [("-", "en", week, 1, 1, 0, 0)]
    async with db.sessions() as session:
        (row,) = (await session.scalars(select(ContactRequest))).all()
    doc = open_request(row, org_keys[row.organisation])  # type: ignore[arg-type]
    assert "campaign" in doc and doc["campaign"] is None

    # Once her conversation has expired, the next message starts a new one.
    async with transaction(db.sessions) as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.chat_key == her.chat_key)
            .values(expires_at=service.clock() - dt.timedelta(minutes=1))
        )
    await her.send(TextReceived("hello"))
    assert await outreach_rows(db) == [("-", "en", week, 2, 1, 0, 0)]

    # By a campaign link: one start, for the campaign only; her request carries the code
    # sealed, and is counted for it.
    other = Victim(service, "555")
    await other.send(Started(encode(code, "pl"), "en"))
    assert await outreach_rows(db) == [
        ("-", "en", week, 2, 1, 0, 0),
        (code, "pl", week, 1, 0, 0, 0),
    ]

    # A turn that does not commit counts nothing (it dies after its counters went up).
    class Crash(BaseException):
        pass

    async def crash(*_: object, **__: object) -> None:
        raise Crash

    monkeypatch.setattr(service, "_queue", crash)
    third = Victim(service, "556")
    with pytest.raises(Crash):
        await third.send(Started(language_hint="en"))
    monkeypatch.undo()
    assert (await outreach_rows(db))[0] == ("-", "en", week, 2, 1, 0, 0)
    await third.send(Started(language_hint="en"))
    assert (await outreach_rows(db))[0] == ("-", "en", week, 3, 1, 0, 0)


async def test_a_campaign_request_carries_its_campaign_sealed(
    db: Database,
    service: ConversationService,  # noqa: F811  (the fixture)
    org_keys: Mapping[str, object],  # noqa: F811
) -> None:
    week = iso_week(service.clock())
    async with transaction(db.sessions) as session:
        code = (await outreach.add_campaign(session, service.clock())).code
    her = Victim(service)
    await her.send(Started(encode(code, "en"), "en"))
    await fill_form(her)
    await her.press("✅ Send")
    assert await outreach_rows(db) == [(code, "en", week, 1, 1, 0, 0)]
    async with db.sessions() as session:
        (row,) = (await session.scalars(select(ContactRequest))).all()
    doc = open_request(row, org_keys[row.organisation])  # type: ignore[arg-type]
    assert doc["campaign"] == code
    await assert_nothing_links_a_count_to_a_request(db, [], [code])


# ---- the portal: picked up, outcomes, closed -------------------------------------------------


async def submit(harness: PortalHarness, campaign: str | None, lang: str = "pl") -> StoredRequest:
    async with transaction(harness.db.sessions) as session:
        return await store_request(
            session,
            NewRequest(
                answers=ANSWERS, language=lang, urgent=False, organisation=ORG, campaign=campaign
            ),
            owner_key="owner-" + secrets.token_hex(4),
            lookup_key=LOOKUP_KEY,
            now=harness.clock(),
            retention=dt.timedelta(days=30),
            notify=False,
            signer=harness.signer,
            pinned=None,
        )


async def new_campaign(harness: PortalHarness) -> str:
    async with transaction(harness.db.sessions) as session:
        return (await outreach.add_campaign(session, harness.clock())).code


async def claim_and_open(client: object, stored: StoredRequest) -> str:
    url = f"/portal/requests/{stored.request_id}"
    assert await post_form(client, url, f"{url}/claim") == 303  # type: ignore[arg-type]
    page = await client.get(url)  # type: ignore[attr-defined]
    assert page.status == 200
    return url


async def test_the_portal_counts_a_pick_up_its_wait_outcomes_and_the_close(
    harness: PortalHarness,
) -> None:
    db = harness.db
    code = await new_campaign(harness)
    # Made two hours before the advocate opens it (Monday 2027-03-01, 2027-W09)...
    harness.clock.now = T0 - dt.timedelta(hours=2)
    stored = await submit(harness, code)
    # ...and one by no campaign four days before, in the week before (2027-W08).
    harness.clock.now = T0 - dt.timedelta(days=4)
    plain = await submit(harness, None, lang="ur")
    harness.clock.now = T0
    async with harness.client() as client:
        await _admin(harness, client)
        url = await claim_and_open(client, stored)
        assert await outreach_rows(db) == [(code, "pl", "2027-W09", 0, 0, 1, 0)]
        assert await pickup_rows(db) == [("pl", "2027-W09", "1-4h", 1)]
        await client.get(url)  # opening it again is not a second pick-up
        assert await pickup_rows(db) == [("pl", "2027-W09", "1-4h", 1)]
        assert await post_form(client, url, f"{url}/outcome", outcome="not_reached") == 303
        closed = await post_form(
            client, url, f"{url}/outcome", outcome="closed", reason="supported"
        )
        assert closed == 303
        await claim_and_open(client, plain)
    # Counted in the week of the pick-up, not of the request.
    assert await outreach_rows(db) == [
        ("-", "ur", "2027-W09", 0, 0, 1, 0),
        (code, "pl", "2027-W09", 0, 0, 1, 1),
    ]
    assert await outcome_rows(db) == [
        (code, "pl", "2027-W09", "closed:supported", 1),
        (code, "pl", "2027-W09", "not_reached", 1),
    ]
    assert await pickup_rows(db) == [
        ("pl", "2027-W09", "1-4h", 1),
        ("ur", "2027-W09", "3-7d", 1),
    ]
    await assert_nothing_links_a_count_to_a_request(db, [stored.reference], [code])

    # The report reads the same counters (each below 10: shown as such).
    async with db.sessions() as session:
        report = await report_tables(session, dt.date(2027, 3, 1), dt.date(2027, 3, 14))
    assert report.weeks == ("2027-W09", "2027-W10")
    picked = report.table("Picked up")
    assert picked.row_labels[:2] == ("Polish (pl)", "Urdu (ur)")
    assert picked.cells[-1][-1] == "fewer than 10"
    assert report.median.startswith("withheld")


async def test_a_request_that_does_not_open_is_counted_as_not_known(
    harness: PortalHarness,
) -> None:
    db = harness.db
    code = await new_campaign(harness)
    first, second = await submit(harness, code), await submit(harness, code)
    async with harness.client() as client:
        await _admin(harness, client)
        one = await claim_and_open(client, first)
        assert await outreach_rows(db) == [(code, "pl", "2027-W09", 0, 0, 1, 0)]
        # Its sealed document no longer opens (changed on disk): closed under "?".
        async with transaction(db.sessions) as session:
            row = await session.get(ContactRequest, first.request_id)
            assert row is not None
            broken = row.envelope[:-16] + bytes(16)
            await session.execute(
                update(ContactRequest)
                .where(ContactRequest.id == first.request_id)
                .values(envelope=broken)
            )
        done = await post_form(client, one, f"{one}/outcome", outcome="closed", reason="other")
        assert done == 303
        # A colleague with no key (never granted access) holds the other and records an
        # outcome: she cannot open it, so "?" too, never a guess.
        advocate_id, token = await harness.invite("Colleague bea")
        async with harness.client() as other:
            account = await set_up(harness, other, token, login="bea")
            assert await log_in(harness, other, account) == 303
            two = f"/portal/requests/{second.request_id}"
            assert await post_form(other, "/portal/inbox", f"{two}/claim") == 303
            done = await post_form(other, "/portal/inbox", f"{two}/outcome", outcome="contacted")
            assert done == 303
    assert await outreach_rows(db) == sorted(
        [("?", "pl", "2027-W09", 0, 0, 0, 1), (code, "pl", "2027-W09", 0, 0, 1, 0)]
    )
    assert await outcome_rows(db) == [
        ("?", "pl", "2027-W09", "closed:other", 1),
        ("?", "pl", "2027-W09", "contacted", 1),
    ]
    await assert_nothing_links_a_count_to_a_request(db, [advocate_id], [code])


async def test_a_request_sealed_before_campaigns_were_is_not_known(
    harness: PortalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = storage.requests.payload

    def older(*args: object, **kwargs: object) -> bytes:
        doc = json.loads(real(*args, **kwargs))  # type: ignore[arg-type]
        del doc["campaign"]
        return json.dumps(doc, sort_keys=True).encode()

    monkeypatch.setattr(storage.requests, "payload", older)
    stored = await submit(harness, None)
    monkeypatch.setattr(storage.requests, "payload", real)
    async with harness.client() as client:
        await _admin(harness, client)
        await claim_and_open(client, stored)
    # It opens (the format did not change), but says nothing about a campaign: "?", not "-".
    assert await outreach_rows(harness.db) == [("?", "pl", "2027-W09", 0, 0, 1, 0)]
