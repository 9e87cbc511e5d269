"""`safebot outreach ...` (registered by bot/cli.py): campaigns, their links and counters.

safebot outreach campaign add           make a campaign; print its (random, opaque) code
safebot outreach campaign list          codes, when made, whether retired
safebot outreach campaign retire CODE   its links start normally from now on, uncounted
safebot outreach link --campaign CODE --lang LANG
                                        print https://t.me/<bot>?start=<payload>
safebot outreach counts                 the counters, per campaign, language and ISO week,
                                        any count from 1 to 9 shown as "fewer than 10"
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import ConfigError, Settings, load_deployment
from flows import outreach as links

Command = Callable[..., argparse.ArgumentParser]

LINK_ENVIRONMENT = """
  SAFEBOT_BOT_USERNAME  the bot's @username, for the link (https://t.me/USERNAME?start=...)
"""
COUNTS_HELP = """
Counts from 1 to 9 are shown as "fewer than 10" (0 is shown as 0). No totals are printed:
a total can give away a small count it is made of (secondary suppression comes later).
"""
NO_USERNAME = (
    "SAFEBOT_BOT_USERNAME is not set: set it to the bot's @username (without the @), "
    "e.g. SAFEBOT_BOT_USERNAME=eastshire_help_bot"
)


def add_commands(sub: Any, command: Command, epilog: str) -> None:
    out = sub.add_parser("outreach", help="outreach campaigns, links and counters")
    outs = out.add_subparsers(dest="outreach", required=True)
    camp = outs.add_parser("campaign", help="outreach campaigns").add_subparsers(
        dest="campaign", required=True
    )
    command(camp, "add", "make a campaign; print its random code", _add, epilog)
    command(camp, "list", "list campaigns", _list, epilog)
    retire = command(
        camp, "retire", "retire a campaign: its links start normally, uncounted", _retire, epilog
    )
    retire.add_argument("code", metavar="CODE")
    link = command(
        outs,
        "link",
        "print a campaign's Telegram link in a language",
        _link,
        epilog + LINK_ENVIRONMENT,
    )
    link.add_argument("--campaign", required=True, metavar="CODE")
    link.add_argument("--lang", required=True, metavar="LANG", help="an enabled language code")
    command(
        outs,
        "counts",
        "print the counters per campaign, language and ISO week (no totals)",
        _counts,
        epilog + COUNTS_HELP,
    )


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    from storage.db import create_engine, session_factory
    from storage.opening import require_existing

    await require_existing(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _day(value: dt.datetime | None) -> str:
    return "-" if value is None else value.date().isoformat()


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with _database(settings) as sessions, transaction(sessions) as session:
        campaign = await outreach.add_campaign(session, _now())
        code = campaign.code
    print(code)
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with _database(settings) as sessions, transaction(sessions) as session:
        rows = [(c.code, c.created_at, c.retired_at) for c in await outreach.campaigns(session)]
    if not rows:
        print("no campaigns (`safebot outreach campaign add` makes one)")
    for code, created, retired in rows:
        status = "active" if retired is None else f"retired {_day(retired)}"
        print(f"{code}  created {_day(created)}  {status}")
    return 0


async def _retire(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with _database(settings) as sessions, transaction(sessions) as session:
        campaign = await outreach.retire(session, args.code, _now())
        if campaign is None:
            raise ConfigError(f"no campaign {args.code!r} (`safebot outreach campaign list`)")
    print(f"campaign {args.code} retired: its links now start normally and are not counted")
    return 0


async def _link(args: argparse.Namespace, settings: Settings) -> int:
    from storage.db import transaction
    from storage.models import Campaign

    if settings.bot_username is None:
        raise ConfigError(NO_USERNAME)
    deployment = load_deployment(settings.config_path)
    if args.lang not in deployment.languages:
        raise ConfigError(
            f"{args.lang!r} is not an enabled language of the deployment "
            f"({', '.join(deployment.languages)})"
        )
    code = args.campaign
    if not links.is_code(code):
        raise ConfigError(f"no campaign {code!r} (`safebot outreach campaign list`)")
    async with _database(settings) as sessions, transaction(sessions) as session:
        campaign = await session.get(Campaign, code)
        if campaign is None:
            raise ConfigError(f"no campaign {code!r} (`safebot outreach campaign list`)")
        if campaign.retired_at is not None:
            raise ConfigError(f"campaign {code!r} is retired: make a new one for a new link")
    print(f"https://t.me/{settings.bot_username}?start={links.encode(code, args.lang)}")
    return 0


async def _counts(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with _database(settings) as sessions, transaction(sessions) as session:
        rows = [
            (r.campaign, r.language, r.iso_week, r.started, r.requested, r.picked_up, r.closed)
            for r in await outreach.counts(session)
        ]
    if not rows:
        print("no counts yet")
        return 0
    header = ("campaign", "language", "week", "started", "requested", "picked up", "closed")
    table = [header] + [
        (campaign, language, week, *(links.shown(n) for n in numbers))
        for campaign, language, week, *numbers in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
