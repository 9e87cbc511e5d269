"""The `safebot` command.

safebot run                     serve: web server, Telegram (polling or webhook), jobs
safebot chat [--lang LANG]      the conversation in this terminal
safebot migrate                 apply database migrations
safebot check                   list problems in the flow, catalogues, deployment and keys
                                (exit 1 if any); `check-flows` is the same
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
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NO_TOKEN_HELP = """\
safebot run: TELEGRAM_BOT_TOKEN is not set, so there is no bot to connect to Telegram.

To get a token: open Telegram, talk to @BotFather, send /newbot and follow the steps.
Then run:

    TELEGRAM_BOT_TOKEN=123456:ABC... safebot run

To try the conversation without a token, in this terminal:

    safebot chat
"""


# Named in the --help of every command that touches the database.
ENVIRONMENT = """\
environment:
  DATABASE_URL      the database: sqlite:///PATH or postgresql://USER@HOST/DB
                    (default: SQLite in $SAFEBOT_DATA_DIR/safebot.db)
  SAFEBOT_DATA_DIR  the SQLite database and the generated secrets, owner-only
                    (default: ./safebot-data)
  SAFEBOT_CONFIG    the deployment TOML (default: the bundled fictional example)
"""
CREATES = ENVIRONMENT + "\nCreates the database if there is none, and migrates it.\n"
NEEDS = (
    ENVIRONMENT + "\nNeeds an existing database: run `safebot migrate` or `safebot run` first.\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    # PTB's RetryAfter warns on every 429 unless it may use timedeltas.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    # Everything safebot writes (the database and the -wal and -shm SQLite makes later,
    # secrets, identities) is for its owner only, whatever the shell's umask.
    os.umask(0o077)
    args = _parser().parse_args(argv)
    from telegram.error import TelegramError

    from bot.config import ConfigError, load_settings
    from flows.errors import FlowError
    from storage.errors import StorageError

    try:
        settings = load_settings()
        _logging(settings.log_level)
        return int(asyncio.run(args.func(args, settings)) or 0)
    except (ConfigError, FlowError, StorageError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or type(exc).__name__}{where}")
    except TelegramError as exc:
        # Its text is not shown: PTB puts the token into some of them.
        return _fail(f"a Telegram call failed at start-up ({type(exc).__name__})")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug: one line, and the traceback only for whoever asks for it.
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        return _fail(f"unexpected {type(exc).__name__}; SAFEBOT_LOG_LEVEL=DEBUG shows where")


def _fail(message: str) -> int:
    print(f"safebot: {message}", file=sys.stderr)
    return 2


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

    def command(
        parent: Any, name: str, help: str, func: Any, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(func=func)
        return parser

    command(sub, "run", "serve the bot and the web server", _run, CREATES)
    chat = command(sub, "chat", "walk the conversation in this terminal", _chat, CREATES)
    chat.add_argument("--lang", help="language code, e.g. en, pl, ar")
    command(sub, "migrate", "apply database migrations", _migrate, CREATES)
    checks = "check the flow, catalogues, deployment and organisation keys"
    command(sub, "check", checks, _check, ENVIRONMENT + "\nNever creates a database.\n")
    command(sub, "check-flows", "the same as `check`", _check, ENVIRONMENT)
    command(sub, "flows-graph", "print the flow as a Mermaid diagram", _graph)
    command(sub, "purge", "run the retention job once", _purge, NEEDS)

    keys = sub.add_parser("keys", help="organisation keys").add_subparsers(
        dest="keys", required=True
    )
    gen = command(
        keys, "generate", "make a key pair; register its public key", _keys_generate, NEEDS
    )
    gen.add_argument("--org", required=True)
    gen.add_argument("--out", required=True, type=Path, help="where to write the private key")
    gen.add_argument("--passphrase-file", type=Path)
    command(keys, "list", "show registered keys", _keys_list, NEEDS)

    hand = sub.add_parser("handoffs", help="contact requests").add_subparsers(
        dest="handoffs", required=True
    )
    exp = command(
        hand,
        "export",
        "open an organisation's requests offline, as JSON lines",
        _handoffs_export,
        NEEDS,
    )
    exp.add_argument("--org", required=True)
    exp.add_argument("--identity", required=True, type=Path, action="append")
    exp.add_argument("--passphrase-file", type=Path)
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
    from bot.app import make_data_dir
    from bot.config import Settings
    from storage.migrate import upgrade_async

    assert isinstance(settings, Settings)
    make_data_dir(settings.data_dir)
    await upgrade_async(settings.database_url)
    print("database is up to date")
    return 0


async def _check(args: argparse.Namespace, settings: object) -> int:
    from bot.checks import check_all
    from bot.config import Settings

    assert isinstance(settings, Settings)
    problems = await check_all(settings)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)" if problems else "no problems")
    return 1 if problems else 0


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
    core = await build_core(settings, migrate=False)
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
    from bot.config import ConfigError
    from storage.keys import read_passphrase_file

    if path is not None:
        try:
            return read_passphrase_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != first:
        raise SystemExit("safebot: the passphrases differ")
    return first.encode()


def _check_out(out: Path) -> None:
    from bot.config import ConfigError

    if out.exists() or out.is_symlink():
        raise ConfigError(f"refusing to overwrite {out} (--out)")
    if not out.parent.is_dir():
        raise ConfigError(f"directory {out.parent} does not exist (--out {out})")


def _check_identities(paths: Sequence[Path]) -> None:
    from bot.config import ConfigError

    for path in paths:
        if not path.is_file():
            raise ConfigError(f"identity file not found: {path} (--identity)")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"cannot read the identity file {path} (--identity)")


async def _keys_generate(args: argparse.Namespace, settings: object) -> int:
    from bot.app import build_context
    from bot.config import ConfigError, Settings
    from bot.keyring import create_identity, register_public_key
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade_async
    from storage.opening import require_existing

    assert isinstance(settings, Settings)
    deployment = build_context(settings).deployment
    if args.org not in {o.id for o in deployment.receiving_organisations}:
        raise ConfigError(
            f"{args.org!r} is not an organisation that receives requests in {settings.config_path}"
        )
    out: Path = args.out
    _check_out(out)
    # Everything that can fail without the passphrase fails before it is asked for.
    await require_existing(settings.database_url)
    passphrase = _passphrase(args.passphrase_file, confirm=True)
    await upgrade_async(settings.database_url)
    _, public = await create_identity(args.org, out, passphrase)
    engine = create_engine(settings.database_url)
    try:
        await register_public_key(session_factory(engine), args.org, public)
    finally:
        await engine.dispose()
    print(f"key {public.key_id} ({public.suite}) for {args.org}; private key in {out}")
    return 0


async def _keys_list(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from storage import queries
    from storage.db import create_engine, session_factory, transaction
    from storage.opening import require_existing

    assert isinstance(settings, Settings)
    await require_existing(settings.database_url)
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
    from storage.opening import require_existing

    assert isinstance(settings, Settings)
    _check_identities(args.identity)
    await require_existing(settings.database_url)
    passphrase = _passphrase(args.passphrase_file, confirm=False)
    count, failed = await export_requests(
        settings.database_url, args.org, args.identity, passphrase, out=sys.stdout
    )
    print(f"exported {count} request(s), {failed} could not be opened", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
