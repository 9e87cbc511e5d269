"""Outreach campaigns and their counters, inside the caller's transaction.

A campaign is an opaque random code (flows/outreach.py says what one looks like); its
counters are per campaign, language and ISO week, and each event only adds one to a counter
with an upsert. No row here says who, or when to finer than the week.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.outreach import CODE_ALPHABET, CODE_LENGTH, iso_week
from storage.dialect import conflict_insert
from storage.models import Campaign, OutreachCount

Counter = Literal["started", "requested", "picked_up", "closed"]
COUNTERS: tuple[Counter, ...] = ("started", "requested", "picked_up", "closed")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def add_campaign(session: AsyncSession, now: dt.datetime) -> Campaign:
    while True:
        code = new_code()
        if await session.get(Campaign, code) is None:
            break
    campaign = Campaign(code=code, created_at=now, retired_at=None)
    session.add(campaign)
    await session.flush()
    return campaign


async def campaigns(session: AsyncSession) -> Sequence[Campaign]:
    result = await session.scalars(select(Campaign).order_by(Campaign.created_at, Campaign.code))
    return result.all()


async def retire(session: AsyncSession, code: str, now: dt.datetime) -> Campaign | None:
    """Retire a campaign: its links start normally from now on, uncounted. None if unknown."""
    campaign = await session.get(Campaign, code)
    if campaign is not None and campaign.retired_at is None:
        campaign.retired_at = now
        await session.flush()
    return campaign


async def is_active(session: AsyncSession, code: str) -> bool:
    campaign = await session.get(Campaign, code)
    return campaign is not None and campaign.retired_at is None


async def add_one(
    session: AsyncSession, campaign: str, language: str, counter: Counter, now: dt.datetime
) -> None:
    """Add one to `counter` of (campaign, language, this ISO week): one upsert, so concurrent
    turns add up."""
    if counter not in COUNTERS:
        raise ValueError(f"not a counter: {counter!r}")
    table = OutreachCount.__table__
    row = {name: 0 for name in COUNTERS} | {counter: 1}
    stmt = conflict_insert(session, OutreachCount).values(
        campaign=campaign, language=language, iso_week=iso_week(now), **row
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign", "language", "iso_week"],
        set_={counter: table.c[counter] + 1},
    )
    await session.execute(stmt)


async def counts(session: AsyncSession) -> Sequence[OutreachCount]:
    result = await session.scalars(
        select(OutreachCount).order_by(
            OutreachCount.campaign, OutreachCount.iso_week, OutreachCount.language
        )
    )
    return result.all()
