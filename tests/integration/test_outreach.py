"""Outreach counters on SQLite and PostgreSQL: upserts that add up under concurrent turns,
ISO-week buckets, a campaign start and a request counted through the turn runner, and no
per-person data in the outreach tables."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from bot.config import ConfigError, bundled_deployment_path, load_settings
from bot.outreach import campaign_link, campaign_links
from flows import Started
from flows.outreach import encode
from storage import outreach
from storage.db import transaction
from storage.models import Campaign, Conversation, OutreachCount
from tests.integration.support import Database, all_values, cells_containing
from tests.integration.test_service import (  # noqa: F401  (fixtures)
    OTHER_USER_ID,
    Victim,
    ctx,
    fill_form,
    org_keys,
    server_secrets,
    service,
)

AT = dt.datetime(2027, 3, 3, 12, 0, tzinfo=dt.UTC)  # 2027-W09


async def new_campaign(db: Database) -> str:
    async with transaction(db.sessions) as session:
        return (await outreach.add_campaign(session, AT)).code


async def count_rows(db: Database) -> list[tuple[str, str, str, int, int, int, int]]:
    async with db.sessions() as session:
        return [
            (r.campaign, r.language, r.iso_week, r.started, r.requested, r.picked_up, r.closed)
            for r in await outreach.counts(session)
        ]


async def test_concurrent_upserts_add_up(db: Database) -> None:
    code = await new_campaign(db)

    async def turns(n: int) -> None:
        for _ in range(n):
            async with transaction(db.sessions) as session:
                await outreach.add_one(session, code, "pl", "started", AT)
                await asyncio.sleep(0)

    await asyncio.gather(turns(15), turns(15), turns(5))
    assert await count_rows(db) == [(code, "pl", "2027-W09", 35, 0, 0, 0)]


async def test_counts_are_bucketed_by_iso_week_and_language(db: Database) -> None:
    code = await new_campaign(db)
    sunday = dt.datetime(2027, 3, 7, 23, 59, tzinfo=dt.UTC)  # still W09
    monday = dt.datetime(2027, 3, 8, 0, 0, tzinfo=dt.UTC)  # W10
    new_year = dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)  # ISO 2026-W53
    async with transaction(db.sessions) as session:
        for at in (AT, sunday, monday, new_year):
            await outreach.add_one(session, code, "pl", "started", at)
        await outreach.add_one(session, code, "ur", "requested", monday)
    assert await count_rows(db) == [
        (code, "pl", "2026-W53", 1, 0, 0, 0),
        (code, "pl", "2027-W09", 2, 0, 0, 0),
        (code, "pl", "2027-W10", 1, 0, 0, 0),
        (code, "ur", "2027-W10", 0, 1, 0, 0),
    ]


async def test_campaign_codes_are_random_and_retire(db: Database) -> None:
    codes = {await new_campaign(db) for _ in range(20)}
    assert len(codes) == 20 and all(len(c) == 8 and c.isalnum() for c in codes)
    one = sorted(codes)[0]
    async with transaction(db.sessions) as session:
        assert await outreach.is_active(session, one)
        assert await outreach.retire(session, one, AT) is not None
        assert not await outreach.is_active(session, one)
        assert await outreach.retire(session, "Nope1234", AT) is None


async def test_starts_and_a_request_are_counted_and_nothing_else_is_kept(
    db: Database,
    service: object,  # noqa: F811  (the fixture)
) -> None:
    from bot.service import ConversationService
    from flows.outreach import iso_week

    assert isinstance(service, ConversationService)
    live, retired = await new_campaign(db), await new_campaign(db)
    async with transaction(db.sessions) as session:
        await outreach.retire(session, retired, AT)
    her, other, third = Victim(service), Victim(service, OTHER_USER_ID), Victim(service, "555")
    fourth = Victim(service, "556")
    link = encode(live, "pl")
    # People open the links at once: every start counts.
    turns = await asyncio.gather(
        her.send(Started(encode(live, "en"), "ar")),
        other.send(Started(link, "en")),
        fourth.send(Started(link, "en")),
    )
    assert all(t.replies for t in turns)
    this_week = iso_week(service.clock())
    started = [(live, "en", this_week, 1, 0, 0, 0), (live, "pl", this_week, 2, 0, 0, 0)]
    assert await count_rows(db) == started
    # Retired, unknown and malformed links start normally, in the phone's language, not for
    # any campaign: her conversation is counted once, under no campaign ("-"), and starting
    # it again is not a new conversation.
    for payload in (encode(retired, "pl"), encode("Zz9Zz9Zz", "pl"), link + "x", link * 3):
        await third.send(Started(payload, "ar"))
    async with db.sessions() as session:
        row = await session.get(Conversation, third.chat_key)
        assert row is not None and row.language == "ar" and row.draft is None
        mine = await session.get(Conversation, other.chat_key)
        assert mine is not None and mine.language == "pl" and mine.draft is not None
    no_campaign = ("-", "ar", this_week, 1, 0, 0, 0)
    assert await count_rows(db) == [no_campaign, *started]

    # She sends a request after her campaign start: counted once, and the campaign goes.
    await fill_form(her)
    await her.press("✅ Send")
    assert await count_rows(db) == [
        no_campaign,
        (live, "en", this_week, 1, 1, 0, 0),
        (live, "pl", this_week, 2, 0, 0, 0),
    ]
    await her.send(Started("", "en"))
    await fill_form(her)
    await her.press("✅ Send")  # a second request, no longer from the campaign: under "-"
    assert await count_rows(db) == [
        no_campaign,
        ("-", "en", this_week, 0, 1, 0, 0),
        (live, "en", this_week, 1, 1, 0, 0),
        (live, "pl", this_week, 2, 0, 0, 0),
    ]

    async with db.sessions() as session:
        cells = await all_values(session)
        campaigns = (await session.scalars(select(Campaign))).all()
        counters = (await session.scalars(select(OutreachCount))).all()
    # Only the counters and the codes: no chat key, owner key or payload anywhere near them.
    assert {c.code for c in campaigns} == {live, retired} and len(counters) == 4
    assert cells_containing(cells, link) == []
    for key in (her.chat_key, other.chat_key, third.chat_key, fourth.chat_key):
        outreach_cells = [
            (t, c) for t, c, v in cells if t in {"campaigns", "outreach_counts"} and v == key
        ]
        assert outreach_cells == []
    # The code in a person's row is only inside the sealed draft, never in a clear column.
    clear = [(t, c) for t, c, v in cells if t == "conversations" and c != "draft" and v == live]
    assert (
        clear == []
        and cells_containing([(t, c, v) for t, c, v in cells if t == "conversations"], live) == []
    )


async def test_campaign_links_are_the_links_of_live_campaigns(db: Database) -> None:
    """`bot.outreach.campaign_links`, which `safebot outreach link` and `poster` both use."""
    env = {
        "DATABASE_URL": db.url,
        "SAFEBOT_CONFIG": str(bundled_deployment_path()),
        "SAFEBOT_BOT_USERNAME": "eastshire_help_bot",
    }
    settings = load_settings(env)
    live, retired = await new_campaign(db), await new_campaign(db)
    async with transaction(db.sessions) as session:
        await outreach.retire(session, retired, AT)
    start = "https://t.me/eastshire_help_bot?start="
    assert await campaign_links(settings, live, ["pl", "zh_Hant"]) == {
        "pl": f"{start}{encode(live, 'pl')}",
        "zh_Hant": f"{start}{encode(live, 'zh_Hant')}",
    }
    assert await campaign_link(settings, live, "ur") == f"{start}c-{live}-ur"
    refusals = {
        (retired, "pl"): "is retired",
        ("Zz9Zz9Zz", "pl"): "no campaign 'Zz9Zz9Zz'",
        (live, "de"): "'de' is not an enabled language",
    }
    for (code, language), words in refusals.items():
        with pytest.raises(ConfigError, match=words):
            await campaign_link(settings, code, language)
    with pytest.raises(ConfigError, match="SAFEBOT_BOT_USERNAME"):
        await campaign_link(load_settings({**env, "SAFEBOT_BOT_USERNAME": ""}), live, "pl")
