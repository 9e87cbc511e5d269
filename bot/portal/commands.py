"""`safebot advocates ...` and `safebot audit verify` (registered by bot/cli.py).

safebot advocates add --org ORG --name NAME [--admin | --role outreach]
                                                        prints a one-time set-up link
safebot advocates list [--org ORG]
safebot advocates remove ID                             sessions and wrapped key go at once
safebot audit verify                                    checks the audit chain; one line
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

from bot.config import ConfigError, Settings, load_deployment
from storage.opening import existing_database

PORTAL_ENVIRONMENT = """
  SAFEBOT_PUBLIC_URL  origin of set-up links (default: SAFEBOT_WEBHOOK_URL's origin, else
                      http://SAFEBOT_HOST:SAFEBOT_PORT)
  SAFEBOT_PORTAL_KEY  the portal's server secret (default: generated into SAFEBOT_DATA_DIR)
"""

Command = Callable[..., argparse.ArgumentParser]


def add_commands(sub: Any, command: Command, epilog: str) -> None:
    advocates = sub.add_parser("advocates", help="advocates of the portal").add_subparsers(
        dest="advocates", required=True
    )
    epilog += PORTAL_ENVIRONMENT
    add = command(advocates, "add", "add an advocate; print a one-time set-up link", _add, epilog)
    add.add_argument("--org", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--admin", action="store_true", help="an admin of the organisation")
    add.add_argument(
        "--role",
        choices=("advocate", "outreach"),
        default="advocate",
        help="outreach: an outreach worker, who sees campaigns and their counts only (never a "
        "request, a key, the team or the audit log)",
    )
    listed = command(advocates, "list", "list advocates", _list, epilog)
    listed.add_argument("--org")
    remove = command(
        advocates, "remove", "remove an advocate: sessions and wrapped key at once", _remove, epilog
    )
    remove.add_argument("advocate_id", metavar="ID")
    audit = sub.add_parser("audit", help="the portal's audit log").add_subparsers(
        dest="audit", required=True
    )
    command(audit, "verify", "check the audit log's hash chain", _verify, epilog)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.portal.accounts import invite
    from bot.portal.config import load_portal_secrets, load_portal_settings

    deployment = load_deployment(settings.config_path)
    if args.org not in {o.id for o in deployment.receiving_organisations}:
        raise ConfigError(
            f"{args.org!r} is not an organisation that receives requests in {settings.config_path}"
        )
    name = args.name.strip()
    if not name or len(name) > 120:
        raise ConfigError("--name must be 1 to 120 characters")
    if args.admin and args.role == "outreach":
        raise ConfigError("an outreach worker cannot be an admin: give --admin or --role outreach")
    portal_settings = load_portal_settings(settings)
    async with existing_database(settings.database_url) as sessions:
        advocate, link = await invite(
            sessions,
            portal_settings,
            load_portal_secrets(settings),
            organisation=args.org,
            name=name,
            is_admin=args.admin,
            now=_now(),
            role=args.role,
        )
    hours = int(portal_settings.setup_link_lifetime.total_seconds() // 3600)
    role = "admin" if args.admin else args.role
    print(f"{role} {advocate.id} added to {args.org}")
    print(f"one-time set-up link (works once, for {hours} hours); give it by a safe route:")
    print(link)
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import portal as q
    from storage.db import transaction

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        rows = await q.list_advocates(session, args.org)
        granted = {a.id for a in rows if a.id in await q.granted_advocates(session, a.organisation)}
    print(f"{'id':<17} {'organisation':<24} {'role':<9} {'account':<8} {'access':<7} name")
    for a in rows:
        role = "outreach" if a.role == "outreach" else "admin" if a.is_admin else "advocate"
        account = "set up" if a.set_up_at else "invited"
        access = "yes" if a.id in granted else "no"
        print(
            f"{a.id:<17} {a.organisation:<24} {role:<9} {account:<8} {access:<7} {a.display_name}"
        )
    return 0


async def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from bot.portal.accounts import remove
    from bot.portal.config import load_portal_secrets

    async with existing_database(settings.database_url) as sessions:
        removed = await remove(sessions, load_portal_secrets(settings), args.advocate_id, _now())
    if removed is None:
        raise ConfigError(f"no advocate {args.advocate_id!r} (`safebot advocates list`)")
    print(
        f"advocate {removed.id} removed from {removed.organisation}: their sessions, wrapped key "
        "and access are gone"
    )
    return 0


async def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from bot.portal.config import load_portal_secrets
    from storage import audit
    from storage.db import transaction

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        report = await audit.verify(session, load_portal_secrets(settings).audit)
    if report.ok:
        print(f"audit log intact: {report.entries} entries, head {report.head}")
        return 0
    print(f"audit log BROKEN: {'; '.join(report.problems)} ({report.entries} entries)")
    return 1
