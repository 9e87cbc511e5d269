"""Outreach campaigns and their counters, inside the caller's transaction.

A campaign is an opaque random code (flows/outreach.py says what one looks like); its
counters are per campaign, language and ISO week, and each event only adds one to a counter
with an upsert. No row here says who, or when to finer than the week.

What is counted, and where (each in the transaction of the event it counts):
    started    a new conversation (bot/service.py, under NO_CAMPAIGN), or one opened by a
               live campaign link (under its campaign); never both for one turn
    requested  every stored request, under her campaign or NO_CAMPAIGN
    picked_up  the portal's first opening of a request (bot/portal/work.py), with a
               PickupTime bucket; closed, and an OutcomeCount per outcome, as it is recorded
The portal reads a request's campaign from its sealed payload (UNKNOWN_CAMPAIGN if it cannot
be opened then): no clear column holds it, and no count row names a request.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.outreach import BUCKET_KEYS, CODE_ALPHABET, CODE_LENGTH, iso_week
from storage.dialect import conflict_insert
from storage.models import Campaign, OutcomeCount, OutreachCount, PickupTime

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
    """Retire a campaign: its links start normally from now on, not counted for it. None if
    unknown."""
    campaign = await session.get(Campaign, code)
    if campaign is not None and campaign.retired_at is None:
        campaign.retired_at = now
        await session.flush()
    return campaign


async def is_active(session: AsyncSession, code: str) -> bool:
    campaign = await session.get(Campaign, code)
    return campaign is not None and campaign.retired_at is None


async def add_one(
    session: AsyncSession,
    campaign: str,
    language: str,
    counter: Counter,
    now: dt.datetime,
    by: int = 1,
) -> None:
    """Add one (or `by`) to `counter` of (campaign, language, this ISO week): one upsert, so
    concurrent turns add up."""
    if counter not in COUNTERS:
        raise ValueError(f"not a counter: {counter!r}")
    if by < 1:
        raise ValueError("a counter only goes up")
    table = OutreachCount.__table__
    row = {name: 0 for name in COUNTERS} | {counter: by}
    stmt = conflict_insert(session, OutreachCount).values(
        campaign=campaign, language=language, iso_week=iso_week(now), **row
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign", "language", "iso_week"],
        set_={counter: table.c[counter] + by},
    )
    await session.execute(stmt)


def outcome_key(outcome: str, reason: str | None) -> str:
    """How an outcome is counted: "contacted", "not_reached", "closed:<reason>"."""
    return f"closed:{reason}" if outcome == "closed" else outcome


async def add_outcome(
    session: AsyncSession, campaign: str, language: str, outcome: str, now: dt.datetime
) -> None:
    """Add one to the count of `outcome` (see `outcome_key`) this ISO week."""
    table = OutcomeCount.__table__
    stmt = conflict_insert(session, OutcomeCount).values(
        campaign=campaign, language=language, iso_week=iso_week(now), outcome=outcome, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign", "language", "iso_week", "outcome"],
        set_={"count": table.c["count"] + 1},
    )
    await session.execute(stmt)


async def add_pickup_time(
    session: AsyncSession, language: str, bucket: str, now: dt.datetime
) -> None:
    """Add one to the requests picked up this ISO week after a wait in `bucket`
    (flows.outreach.PICKUP_BUCKETS)."""
    if bucket not in BUCKET_KEYS:
        raise ValueError(f"not a pick-up bucket: {bucket!r}")
    table = PickupTime.__table__
    stmt = conflict_insert(session, PickupTime).values(
        language=language, iso_week=iso_week(now), bucket=bucket, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["language", "iso_week", "bucket"],
        set_={"count": table.c["count"] + 1},
    )
    await session.execute(stmt)


async def counts(
    session: AsyncSession, campaign: str | None = None, weeks: Sequence[str] | None = None
) -> Sequence[OutreachCount]:
    """The counter rows (of one campaign; of these ISO weeks), in a stable order."""
    stmt = select(OutreachCount)
    if campaign is not None:
        stmt = stmt.where(OutreachCount.campaign == campaign)
    if weeks is not None:
        stmt = stmt.where(OutreachCount.iso_week.in_(list(weeks)))
    result = await session.scalars(
        stmt.order_by(OutreachCount.campaign, OutreachCount.iso_week, OutreachCount.language)
    )
    return result.all()


async def outcome_counts(session: AsyncSession, weeks: Sequence[str]) -> Sequence[OutcomeCount]:
    result = await session.scalars(
        select(OutcomeCount)
        .where(OutcomeCount.iso_week.in_(list(weeks)))
        .order_by(
            OutcomeCount.campaign,
            OutcomeCount.iso_week,
            OutcomeCount.language,
            OutcomeCount.outcome,
        )
    )
    return result.all()


async def pickup_times(session: AsyncSession, weeks: Sequence[str]) -> Sequence[PickupTime]:
    result = await session.scalars(
        select(PickupTime)
        .where(PickupTime.iso_week.in_(list(weeks)))
        .order_by(PickupTime.iso_week, PickupTime.language, PickupTime.bucket)
    )
    return result.all()
