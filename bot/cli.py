"""The `safebot` command.

safebot run                     serve: web server, Telegram (polling or webhook), jobs
safebot chat [--lang LANG]      the conversation in this terminal
safebot migrate                 apply database migrations
safebot check                   list problems in the flow, catalogues, deployment and keys
                                (exit 1 if any); `check-flows` is the same
safebot translations check [--lang CODE ...]
                                list every problem in the catalogues (exit 1 if any)
safebot translations report [--png FILE]
                                a table per language; also as a picture for board papers
safebot keys generate --org ORG --out FILE [--passphrase-file F]
safebot keys rotate --org ORG --out FILE [--passphrase-file F]
                                a new key, sealed to the advocates with access; old ones stay
safebot keys list               which key new requests go to, pins, the request-signing key
safebot keys revoke --key-id ID never seal to this key again
safebot handoffs export --org ORG --identity FILE [--identity FILE ...] [--passphrase-file F]
                        [--format jsonl|text]
safebot purge                   run the retention job once
safebot advocates add --org ORG --name NAME [--admin | --role outreach] | list [--org ORG]
                                | remove ID
safebot audit verify            check the portal's hash-chained audit log
safebot outreach campaign add | list | retire CODE
safebot outreach link --campaign CODE --lang LANG
safebot outreach counts         counters per campaign, language and week, with totals,
                                disclosure-controlled (1-9 as "fewer than 10")
safebot report --from YYYY-MM-DD --to YYYY-MM-DD [--out DIR]
                                the transparency report: report.md, report.csv and a chart
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

NO_TOKEN_HELP = (
    "safebot run: TELEGRAM_BOT_TOKEN is not set: get one from @BotFather in Telegram (/newbot)"
    " and run TELEGRAM_BOT_TOKEN=123456:ABC... safebot run, or try `safebot chat` without one"
)


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
TRANSLATIONS = """\
environment:
  SAFEBOT_CONFIG    the deployment TOML (default: the bundled fictional example)

Reads the installed catalogues (locales/<code>/LC_MESSAGES/messages.po).
Never creates a database (it needs none).
"""
ROTATE_ENVIRONMENT = """\
  SAFEBOT_PORTAL_KEY  the portal's server secret (default: portal.key in SAFEBOT_SECRETS_DIR,
                    else SAFEBOT_DATA_DIR), to check the advocates' public keys first
"""


def _audit_key(settings: Any) -> bytes:
    """The audit chain's key (outside the database), so an export is logged like a view."""
    from bot.portal.config import load_portal_secrets

    return load_portal_secrets(settings).audit


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
        "matplotlib",  # `translations report --png`: its font cache, at INFO
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

    trans = sub.add_parser(
        "translations", help="check the catalogues, or report where each language stands"
    ).add_subparsers(dest="translations", required=True)
    tcheck = command(
        trans,
        "check",
        "list every problem in the catalogues (missing or fuzzy entries, placeholders, HTML, "
        "lengths, review status, deployment texts); exit 1 if any",
        _translations_check,
        TRANSLATIONS,
    )
    tcheck.add_argument(
        "--lang",
        nargs="+",
        action="extend",
        metavar="CODE",
        help="only these languages (their screens are checked even if not enabled)",
    )
    treport = command(
        trans,
        "report",
        "a table per language: coverage, review status, longest screen",
        _translations_report,
        TRANSLATIONS,
    )
    treport.add_argument("--png", type=Path, metavar="FILE", help="also write the table as a PNG")

    keys = sub.add_parser("keys", help="organisation keys").add_subparsers(
        dest="keys", required=True
    )
    gen = command(
        keys, "generate", "make a key pair; register its public key", _keys_generate, NEEDS
    )
    gen.add_argument("--org", required=True)
    gen.add_argument("--out", required=True, type=Path, help="where to write the private key")
    gen.add_argument("--passphrase-file", type=Path)
    rot = command(
        keys,
        "rotate",
        "make a new key pair; seal it to the advocates who have access; keep the old keys",
        _keys_rotate,
        NEEDS.replace("\nNeeds", ROTATE_ENVIRONMENT + "\nNeeds", 1),
    )
    rot.add_argument("--org", required=True)
    rot.add_argument("--out", required=True, type=Path, help="where to write the new private key")
    rot.add_argument("--passphrase-file", type=Path)
    command(keys, "list", "show registered keys", _keys_list, NEEDS)
    rev = command(keys, "revoke", "never seal a request to this key again", _keys_revoke, NEEDS)
    rev.add_argument("--key-id", required=True)

    hand = sub.add_parser("handoffs", help="contact requests").add_subparsers(
        dest="handoffs", required=True
    )
    exp = command(
        hand,
        "export",
        "open an organisation's requests offline, as JSON lines or text",
        _handoffs_export,
        NEEDS,
    )
    exp.add_argument("--org", required=True)
    exp.add_argument("--identity", required=True, type=Path, action="append")
    exp.add_argument("--passphrase-file", type=Path)
    exp.add_argument("--format", choices=("jsonl", "text"), default="jsonl")

    from bot.outreach import add_commands as add_outreach
    from bot.portal.commands import add_commands
    from bot.report import add_command as add_report

    add_commands(sub, command, NEEDS)
    add_outreach(sub, command, NEEDS)
    add_report(sub, command, NEEDS)
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


async def _translations_check(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from bot.translations import check_from_settings

    assert isinstance(settings, Settings)
    findings = check_from_settings(settings, args.lang)
    for line in findings.lines():
        print(line)
    count = len(findings.problems)
    print(f"{count} problem(s)" if count else "no problems")
    return 1 if count else 0


async def _translations_report(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings
    from bot.translations import check_from_settings, check_png_path, format_table, write_png

    assert isinstance(settings, Settings)
    png: Path | None = args.png
    if png is not None:
        check_png_path(png)  # before the work, so a wrong path fails at once
    findings = check_from_settings(settings, None)
    print(format_table(findings), end="")
    if png is not None:
        write_png(findings, png, dt.date.today())
        print(f"wrote {png}")
    return 0


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


def _check_strength(passphrase: bytes, org: str) -> None:
    """The same bar as the portal's passphrases (bot/portal/passphrases.py)."""
    from bot.config import ConfigError
    from bot.portal.passphrases import passphrase_problem

    problem = passphrase_problem(passphrase.decode("utf-8", errors="replace"), [org])
    if problem:
        raise ConfigError(f"the passphrase was refused: {problem}")


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
    _check_strength(passphrase, args.org)
    await upgrade_async(settings.database_url)
    _, public = await create_identity(args.org, out, passphrase)
    engine = create_engine(settings.database_url)
    try:
        await register_public_key(session_factory(engine), args.org, public)
    finally:
        await engine.dispose()
    print(f"key {public.key_id} ({public.suite}) for {args.org}; private key in {out}")
    pins = [*deployment.organisation(args.org).key_fingerprints, public.fingerprint]
    quoted = ", ".join(f'"{p}"' for p in dict.fromkeys(pins))
    print(f"pin it: under [[organisations]] id = {args.org!r} in {settings.config_path}, put")
    print(f"key_fingerprints = [{quoted}]")
    return 0


async def _keys_rotate(args: argparse.Namespace, settings: object) -> int:
    """A new organisation key: its identity file as `keys generate` writes it, its public key
    registered, and the key sealed to every advocate who has access (re-wrapping needs only
    their public keys). The old keys stay registered: requests sealed to them still open."""
    from sqlalchemy import select

    from bot.app import build_context
    from bot.config import ConfigError, Settings
    from bot.keyring import create_identity
    from bot.portal.accounts import rotate_key
    from bot.portal.config import have_portal_secrets, load_portal_secrets
    from storage import org_keys
    from storage import portal as q
    from storage.db import create_engine, session_factory, transaction
    from storage.migrate import upgrade_async
    from storage.models import OrganisationKey
    from storage.opening import require_existing

    assert isinstance(settings, Settings)
    deployment = build_context(settings).deployment
    org: str = args.org
    if org not in {o.id for o in deployment.receiving_organisations}:
        raise ConfigError(
            f"{org!r} is not an organisation that receives requests in {settings.config_path}"
        )
    out: Path = args.out
    _check_out(out)
    await require_existing(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            registered = (
                await session.scalars(
                    select(OrganisationKey).where(OrganisationKey.organisation == org)
                )
            ).all()
            with_access = await q.granted_advocates(session, org)
    finally:
        await engine.dispose()
    if not registered:
        raise ConfigError(
            f"{org} has no key to rotate: run `safebot keys generate --org {org}` first"
        )
    if with_access and not have_portal_secrets(settings):
        raise ConfigError(
            "the portal's server key is not here (SAFEBOT_PORTAL_KEY, or portal.key in "
            f"{settings.secret_files}), so the advocates' keys cannot be checked: run this "
            "with the server's SAFEBOT_PORTAL_KEY or its secrets directory"
        )
    # Everything that can fail without the passphrase fails before it is asked for.
    passphrase = _passphrase(args.passphrase_file, confirm=True)
    _check_strength(passphrase, org)
    await upgrade_async(settings.database_url)
    private, public = await create_identity(org, out, passphrase)
    engine = create_engine(settings.database_url)
    try:
        done = await rotate_key(
            session_factory(engine),
            load_portal_secrets(settings),
            private,
            org,
            dt.datetime.now(dt.UTC),
        )
    finally:
        await engine.dispose()
    print(f"key {public.key_id} ({public.suite}) for {org}; private key in {out}")
    print(f"fingerprint {public.fingerprint}")
    print(
        f"sealed to {len(done.granted)} advocate(s) with access; their grants for the old keys stay"
    )
    for a in done.refused:
        print(
            f"NOT sealed to advocate {a.id} ({a.display_name}): her public key does not carry "
            "the portal key's MAC (changed in the database, or not the server's portal key)"
        )
    if done.without_access:
        print(
            f"{len(done.without_access)} set-up advocate(s) without access were left out, as "
            "before: an admin grants access in the portal"
        )
    pins = deployment.key_pins(org)
    if pins is None:  # fictional and unpinned: the newest active key is used already
        older = [
            k.fingerprint
            for k in (org_keys.public_key(r) for r in registered if r.active)
            if k is not None
        ]
        print(
            f"{org} pins no keys (fictional only): new requests go to the new key from now on. "
            f"To pin them, under [[organisations]] id = {org!r} in {settings.config_path}, put"
        )
    else:
        older = list(deployment.organisation(org).key_fingerprints)
        print(
            "new requests still go to the old key. To make the new one current, under "
            f"[[organisations]] id = {org!r} in {settings.config_path}, put"
        )
    quoted = ", ".join(f'"{p}"' for p in dict.fromkeys([public.fingerprint, *older]))
    print(f"key_fingerprints = [{quoted}]")
    if pins is not None:
        print(
            "then restart `safebot run`: new requests go to the newest pinned key. Keep the old "
            "fingerprints: the portal opens earlier requests only with pinned keys"
        )
    print(
        "keep the old identity file and its passphrase: it still opens the requests sealed "
        f"before (`safebot handoffs export --identity OLD --identity {out}`)"
    )
    print("advocates logged in now do not hold the new key: they log in again (after the restart)")
    return 0


async def _keys_list(args: argparse.Namespace, settings: object) -> int:
    from bot.config import Settings, load_deployment
    from storage import org_keys
    from storage.db import create_engine, session_factory, transaction
    from storage.dialect import aware
    from storage.opening import require_existing
    from storage.server_secrets import read_signing_key

    assert isinstance(settings, Settings)
    deployment = load_deployment(settings.config_path)
    await require_existing(settings.database_url)
    pins = {o.id: deployment.key_pins(o.id) for o in deployment.receiving_organisations}
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            keys = await org_keys.describe(session, pins)
    finally:
        await engine.dispose()
    print(
        f"{'organisation':<24} {'key id':<18} {'suite':<44} {'created (UTC)':<17} "
        f"{'active':<7} {'pinned':<7} new requests"
    )
    # A key older than its organisation's current one was rotated out: it still opens the
    # requests sealed to it (its identity file always; the portal while it is pinned).
    current_since = {k.row.organisation: aware(k.row.created_at) for k in keys if k.current}
    old = [
        k
        for k in keys
        if not k.current
        and k.row.organisation in current_since
        and aware(k.row.created_at) <= current_since[k.row.organisation]
    ]
    for k in keys:
        r = k.row
        created = r.created_at.strftime("%Y-%m-%d %H:%M")
        active = "yes" if r.active else "revoked"
        pinned = {True: "yes", False: "NO", None: "-"}[k.pinned]
        current = "yes" if k.current else "old (opens earlier requests)" if k in old else ""
        print(
            f"{r.organisation:<24} {r.key_id:<18} {r.suite:<44} {created:<17} "
            f"{active:<7} {pinned:<7} {current}"
        )
    for org, org_pins in pins.items():
        if org_pins is None:
            print(f"note: {org} pins no key_fingerprints (fictional: its newest key is used)")
        elif not any(k.current for k in keys if k.row.organisation == org):
            print(f"note: {org} has NO pinned active key: its requests cannot be sealed")
    for k in old:
        if k.row.active and k.pinned is False:
            print(
                f"note: old key {k.row.key_id} of {k.row.organisation} is not pinned: the portal "
                "does not open the requests sealed to it (its identity file does, with "
                "`safebot handoffs export`)"
            )
    signer = read_signing_key(settings.data_dir, settings.signing_key)
    if signer is None:
        print("request-signing key: none yet (`safebot run` makes it)")
    else:
        verify = signer.verify_key
        pinned_signer = verify.to_text() in deployment.request_signing_keys
        print(
            f"request-signing key {verify.signer_id} "
            f"({'pinned' if pinned_signer else 'not pinned'}); pin it under [deployment]:"
        )
        print(f'request_signing_keys = ["{verify.to_text()}"]')
    return 0


async def _keys_revoke(args: argparse.Namespace, settings: object) -> int:
    from bot.config import ConfigError, Settings, load_deployment
    from storage import org_keys
    from storage.db import create_engine, session_factory, transaction
    from storage.opening import require_existing

    assert isinstance(settings, Settings)
    deployment = load_deployment(settings.config_path)
    await require_existing(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            row = await org_keys.revoke(session, args.key_id)
            if row is None:
                raise ConfigError(f"no key {args.key_id!r} is registered (`safebot keys list`)")
            org = row.organisation
            known = {o.id for o in deployment.organisations}
            pins = deployment.key_pins(org) if org in known else None
            left = org_keys.choose(await org_keys.active_keys(session, org), pins)
    finally:
        await engine.dispose()
    print(
        f"key {args.key_id} of {org} revoked: no new request is sealed to it; requests sealed "
        "to it still open with its identity file"
    )
    key = org_keys.public_key(row)
    if key is not None and key.fingerprint in (pins or ()):
        print(f"remove {key.fingerprint} from key_fingerprints in {settings.config_path}")
    if left is None:
        print(f"{org} has no key left for new requests: run `safebot keys generate --org {org}`")
    return 0


async def _handoffs_export(args: argparse.Namespace, settings: object) -> int:
    from bot.config import ConfigError, Settings, load_deployment
    from bot.handoffs import export_requests
    from bot.keyring import trusted_signers
    from flows.definition import load_flow
    from storage.opening import require_existing
    from storage.server_secrets import read_signing_key

    assert isinstance(settings, Settings)
    _check_identities(args.identity)
    deployment = load_deployment(settings.config_path)
    await require_existing(settings.database_url)
    signer = read_signing_key(settings.data_dir, settings.signing_key)
    verify_keys = trusted_signers(deployment, signer)
    if not verify_keys:
        raise ConfigError(
            "no request-signing key to check requests against: pin request_signing_keys in "
            "[deployment] (`safebot keys list` on the server prints the line)"
        )
    passphrase = _passphrase(args.passphrase_file, confirm=False)
    count, failed = await export_requests(
        settings.database_url,
        args.org,
        args.identity,
        passphrase,
        out=sys.stdout,
        verify_keys=verify_keys,
        flow=load_flow(),
        deployment=deployment,
        fmt=args.format,
        audit_key=_audit_key(settings),
    )
    print(f"exported {count} request(s), {failed} could not be opened", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
