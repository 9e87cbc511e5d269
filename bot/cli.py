"""The `safebot` command.

safebot run                     serve: web server, Telegram (polling or webhook), jobs
safebot chat [--lang LANG]      the conversation in this terminal
safebot migrate                 apply database migrations
safebot check-flows             list problems in the flow and catalogues (exit 1 if any)
safebot keys generate --org ORG --out FILE [--passphrase-file F]
safebot keys list
safebot handoffs export --org ORG --identity FILE [--identity FILE ...] [--passphrase-file F]
safebot purge                   run the retention job once
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

NO_TOKEN_HELP = """\
safebot run: TELEGRAM_BOT_TOKEN is not set, so there is no bot to connect to Telegram.

To get a token: open Telegram, talk to @BotFather, send /newbot and follow the steps.
Then run:

    TELEGRAM_BOT_TOKEN=123456:ABC... safebot run

To try the conversation without a token, in this terminal:

    safebot chat
"""


def main(argv: Sequence[str] | None = None) -> int:
    # PTB's RetryAfter warns on every 429 unless it may use timedeltas.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    args = _parser().parse_args(argv)
    from bot.config import ConfigError, load_settings
    from flows.errors import FlowError
    from storage.errors import StorageError

    try:
        settings = load_settings()
        _logging(settings.log_level)
        return int(asyncio.run(args.func(args, settings)) or 0)
    except (ConfigError, FlowError, StorageError) as exc:
        print(f"safebot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    # PTB and httpx log request parameters, updates and the token at DEBUG/INFO: keep them quiet.
    # aiosqlite and SQLAlchemy log statements with their parameters (hashes, steps) at DEBUG.
    quiet = (
        "telegram",
        "httpx",
        "aiohttp.access",
        "apscheduler",
        "alembic",
        "aiosqlite",
        "sqlalchemy",
    )
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safebot", description="Safe reporting pathway bot")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve the bot and the web server").set_defaults(func=_run)
    chat = sub.add_parser("chat", help="walk the conversation in this terminal")
    chat.add_argument("--lang", help="language code, e.g. en, pl, ar")
    chat.set_defaults(func=_chat)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    sub.add_parser("check-flows", help="check the flow and catalogues").set_defaults(func=_check)
    sub.add_parser("flows-graph", help="print the flow as a Mermaid diagram").set_defaults(
        func=_graph
    )
    sub.add_parser("purge", help="run the retention job once").set_defaults(func=_purge)

    keys = sub.add_parser("keys", help="organisation keys").add_subparsers(
        dest="keys", required=True
    )
    gen = keys.add_parser("generate", help="make a key pair; register its public key")
    gen.add_argument("--org", required=True)
    gen.add_argument("--out", required=True, type=Path, help="where to write the private key")
    gen.add_argument("--passphrase-file", type=Path)
    gen.set_defaults(func=_keys_generate)
    keys.add_parser("list", help="show registered keys").set_defaults(func=_keys_list)

    hand = sub.add_parser("handoffs", help="contact requests").add_subparsers(
        dest="handoffs", required=True
    )
    exp = hand.add_parser("export", help="open an organisation's requests offline, as JSON lines")
    exp.add_argument("--org", required=True)
    exp.add_argument("--identity", required=True, type=Path, action="append")
    exp.add_argument("--passphrase-file", type=Path)
    exp.set_defaults(func=_handoffs_export)
    return p


async def _run(args: argparse.Namespace, settings: object) -> int:
    from bot.app import serve
    from bot.config import Settings

    assert isinstance(settings, Settings)
    if not settings.token:
        print(NO_TOKEN_HELP, file=sys.stderr)
        return 2
    await serve(settings)
    return 0


async def _chat(args: argparse.Namespace, settings: object) -> int:
    from bot.app import build_core
    from bot.config import Settings
    from bot.terminal import chat

    assert isinstance(settings, Settings)
    if not os.environ.get("SAFEBOT_LOG_LEVEL"):
        logging.getLogger().setLevel(logging.WARNING)  # keep the conversation readable
    core = await build_core(settings)
    try:
        await chat(core.service, args.lang)
    finally:
        await core.close()
    return 0


async def _migrate(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from storage.migrate import upgrade_async

    assert isinstance(settings, Settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await upgrade_async(settings.database_url)
    print("database is up to date")
    return 0


async def _check(args: argparse.Namespace, settings: object) -> int:
    from bot.app import build_context
    from bot.config import Settings
    from flows.check import check_flow

    assert isinstance(settings, Settings)
    issues = check_flow(build_context(settings, check=False))
    for issue in issues:
        print(issue)
    print(f"{len(issues)} issue(s)")
    return 1 if issues else 0


async def _graph(args: argparse.Namespace, settings: object) -> int:
    from flows.definition import load_flow
    from flows.graph import mermaid

    print(mermaid(load_flow()), end="")
    return 0


async def _purge(args: argparse.Namespace, settings: object) -> int:
    from bot.app import build_core
    from bot.config import Settings
    from storage.retention import purge

    assert isinstance(settings, Settings)
    core = await build_core(settings)
    try:
        closed = dt.timedelta(days=core.ctx.deployment.closed_retention_days)
        report = await purge(
            core.engine, core.sessions, dt.datetime.now(dt.UTC), closed_retention=closed
        )
        print(report)
    finally:
        await core.close()
    return 0


def _passphrase(path: Path | None, *, confirm: bool) -> bytes:
    from storage.keys import read_passphrase_file

    if path is not None:
        return read_passphrase_file(path)
    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != first:
        raise SystemExit("safebot: the passphrases differ")
    return first.encode()


async def _keys_generate(args: argparse.Namespace, settings: object) -> int:
    from bot.app import build_context
    from bot.config import Settings
    from bot.keyring import create_identity, register_public_key
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade_async

    assert isinstance(settings, Settings)
    deployment = build_context(settings).deployment
    if args.org not in {o.id for o in deployment.receiving_organisations}:
        print(
            f"safebot: {args.org!r} is not an organisation that receives requests in "
            f"{settings.config_path}",
            file=sys.stderr,
        )
        return 2
    passphrase = _passphrase(args.passphrase_file, confirm=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await upgrade_async(settings.database_url)
    _, public = await create_identity(args.org, args.out, passphrase)
    engine = create_engine(settings.database_url)
    try:
        await register_public_key(session_factory(engine), args.org, public)
    finally:
        await engine.dispose()
    print(f"key {public.key_id} ({public.suite}) for {args.org}; private key in {args.out}")
    return 0


async def _keys_list(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from storage import queries
    from storage.db import create_engine, session_factory, transaction
    from storage.migrate import upgrade_async

    assert isinstance(settings, Settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            rows = await queries.list_keys(session)
    finally:
        await engine.dispose()
    print(f"{'organisation':<24} {'key id':<18} {'suite':<44} {'created (UTC)':<20} active")
    for r in rows:
        created = r.created_at.strftime("%Y-%m-%d %H:%M")
        active = "yes" if r.active else "no"
        print(f"{r.organisation:<24} {r.key_id:<18} {r.suite:<44} {created:<20} {active}")
    return 0


async def _handoffs_export(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from bot.handoffs import export_requests

    assert isinstance(settings, Settings)
    passphrase = _passphrase(args.passphrase_file, confirm=False)
    count, failed = await export_requests(
        settings.database_url, args.org, args.identity, passphrase, out=sys.stdout
    )
    print(f"exported {count} request(s), {failed} could not be opened", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
