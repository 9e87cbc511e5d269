"""`safebot outreach ...` (registered by bot/cli.py): campaigns, their links and counters.

safebot outreach campaign add           make a campaign; print its (random, opaque) code
safebot outreach campaign list          codes, when made, whether retired
safebot outreach campaign retire CODE   its links start normally from now on, as no campaign
safebot outreach link --campaign CODE --lang LANG
                                        print https://t.me/<bot>?start=<payload>
safebot outreach poster --campaign CODE --lang LANG | --all-languages --format pdf|png|svg
                        [--size a4|a5|card] [--out PATH]
                                        a printable poster of that link (bot/poster.py);
                                        every enabled language into a folder with
                                        --all-languages
safebot outreach counts                 per campaign, the counters by language and ISO
                                        week (months if many), with totals, as the portal's
                                        campaign page shows them (disclosure-controlled)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import ConfigError, Settings, load_deployment
from flows import outreach as links
from storage.opening import existing_database

if TYPE_CHECKING:
    from bot.poster import Format, PosterWords, Size

Command = Callable[..., argparse.ArgumentParser]

LINK_ENVIRONMENT = """
  SAFEBOT_BOT_USERNAME  the bot's @username, for the link (https://t.me/USERNAME?start=...)
"""
COUNTS_HELP = """
One block per campaign ("no campaign": conversations that came by no campaign link; "not
known": requests whose campaign the portal could not read), a table per counter: languages by
ISO week (by month when there are more than 13 weeks), with row, column and grand totals.
Counts from 1 to 9 are shown as "fewer than 10" (0 is shown as 0), and more are "withheld"
where a hidden count could be worked out from the totals.
"""
POSTER_HELP = """
The words come from the catalogues (the [poster] table of flows/content/victim.toml): a
language whose catalogue lacks any of them is refused. Needs Debian's Noto fonts
(fonts-noto-core, fonts-noto-cjk), the Pango libraries WeasyPrint loads and, for PNG and SVG,
poppler-utils; ./dev setup installs them. Without --out: poster-CODE-LANG-SIZE.FORMAT here.
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
        camp,
        "retire",
        "retire a campaign: its links start normally, counted as no campaign",
        _retire,
        epilog,
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
    poster = command(
        outs,
        "poster",
        "write a printable poster of a campaign's link: QR code and words, in a language",
        _poster,
        epilog + LINK_ENVIRONMENT + POSTER_HELP,
    )
    poster.add_argument("--campaign", required=True, metavar="CODE")
    which = poster.add_mutually_exclusive_group(required=True)
    which.add_argument("--lang", metavar="LANG", help="an enabled language code")
    which.add_argument(
        "--all-languages",
        action="store_true",
        help="one poster per enabled language, into the --out folder",
    )
    poster.add_argument("--format", required=True, choices=("pdf", "png", "svg"))
    poster.add_argument(
        "--size",
        choices=("a4", "a5", "card"),
        default="a4",
        help="a4 (the default), a5, or card: an A7 handout, 74 x 105 mm",
    )
    poster.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="the file (or a folder for it); with --all-languages the folder "
        "(default: the current folder)",
    )
    command(
        outs,
        "counts",
        "print the counters per campaign, by language and ISO week, with totals",
        _counts,
        epilog + COUNTS_HELP,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _day(value: dt.datetime | None) -> str:
    return "-" if value is None else value.date().isoformat()


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        campaign = await outreach.add_campaign(session, _now())
        code = campaign.code
    print(code)
    return 0


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from storage import outreach
    from storage.db import transaction

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
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

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        campaign = await outreach.retire(session, args.code, _now())
        if campaign is None:
            raise ConfigError(f"no campaign {args.code!r} (`safebot outreach campaign list`)")
    print(f"campaign {args.code} retired: its links now start normally, counted as no campaign")
    return 0


async def campaign_links(settings: Settings, code: str, languages: Sequence[str]) -> dict[str, str]:
    """language -> the campaign's Telegram link in it. ConfigError, in one line, unless the
    bot's username is set, each language is enabled, and the campaign exists, not retired."""
    from storage.db import transaction
    from storage.models import Campaign

    if settings.bot_username is None:
        raise ConfigError(NO_USERNAME)
    deployment = load_deployment(settings.config_path)
    for language in languages:
        if language not in deployment.languages:
            raise ConfigError(
                f"{language!r} is not an enabled language of the deployment "
                f"({', '.join(deployment.languages)})"
            )
    if not links.is_code(code):
        raise ConfigError(f"no campaign {code!r} (`safebot outreach campaign list`)")
    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        campaign = await session.get(Campaign, code)
        if campaign is None:
            raise ConfigError(f"no campaign {code!r} (`safebot outreach campaign list`)")
        if campaign.retired_at is not None:
            raise ConfigError(f"campaign {code!r} is retired: make a new one for a new link")
    start = f"https://t.me/{settings.bot_username}?start="
    return {language: start + links.encode(code, language) for language in languages}


async def campaign_link(settings: Settings, code: str, language: str) -> str:
    """The campaign's Telegram link in `language` (see `campaign_links`)."""
    return (await campaign_links(settings, code, [language]))[language]


async def _link(args: argparse.Namespace, settings: Settings) -> int:
    print(await campaign_link(settings, args.campaign, args.lang))
    return 0


# ---- posters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    words: PosterWords
    link: str
    path: Path


def poster_name(code: str, language: str, size: str, fmt: str) -> str:
    return f"poster-{code}-{language}-{size}.{fmt}"


async def _poster(args: argparse.Namespace, settings: Settings) -> int:
    """`safebot outreach poster`: every refusal is one line and exit 1."""
    from bot.poster import PosterError
    from flows.errors import FlowError
    from storage.errors import StorageError

    try:
        return await _posters(args, settings)
    except (ConfigError, PosterError, FlowError, StorageError) as exc:
        print(f"safebot: {exc}", file=sys.stderr)
        return 1


async def _posters(args: argparse.Namespace, settings: Settings) -> int:
    from bot import poster
    from flows.definition import load_flow
    from flows.i18n import load_catalogs

    fmt: Format = args.format
    size: Size = args.size
    code: str = args.campaign
    if args.all_languages:
        folder = Path(".") if args.out is None else args.out
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder (--out, with --all-languages)")
        _check_folder(folder)
        languages = list(load_deployment(settings.config_path).languages)
        paths = {lang: folder / poster_name(code, lang, size, fmt) for lang in languages}
    else:
        path = _poster_path(args.out, poster_name(code, args.lang, size, fmt), fmt)
        _check_folder(path.parent)
        languages = [args.lang]
        paths = {args.lang: path}
    found = await campaign_links(settings, code, languages)

    flow, catalogs = load_flow(), load_catalogs()
    jobs, untranslated = [], []
    for language in languages:
        try:
            words = poster.poster_words(flow, catalogs, language)
        except poster.PosterError:
            if not args.all_languages:
                raise
            untranslated.append(language)
            continue
        jobs.append(_Job(words, found[language], paths[language]))
    # WeasyPrint's own log lines (its steps, from its import on, and any CSS warning) are not
    # for this terminal; a character no font has is caught by bot/poster.py, refused in one line.
    logging.getLogger("weasyprint").propagate = False
    # The system parts, before any work: one line saying what to install.
    poster.weasyprint()
    if fmt != "pdf":
        poster.pdftocairo()

    await asyncio.to_thread(_write_posters, jobs, fmt, size)
    if untranslated:
        raise ConfigError(
            f"no poster in {', '.join(untranslated)}: the poster words are not translated "
            f"there yet (locales/<code>/LC_MESSAGES/messages.po); "
            f"the other {len(jobs)} were written"
        )
    return 0


def _poster_path(out: Path | None, name: str, fmt: str) -> Path:
    """Where a single poster goes: --out, or `name` in the --out folder or here."""
    if out is None:
        return Path(name)
    if out.is_dir():
        return out / name
    if out.suffix.lower() != f".{fmt}":
        raise ConfigError(f"{out} does not end in .{fmt} (--out, with --format {fmt})")
    return out


def _check_folder(folder: Path) -> None:
    """ConfigError unless a file can be made in `folder` (tried, so that root's view of a
    read-only place or a full disk is found before the work, not after)."""
    if not folder.is_dir():
        raise ConfigError(f"folder {folder} does not exist (--out)")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".poster-"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write in {folder}: {exc.strerror or exc} (--out)") from None


def _write_posters(jobs: Sequence[_Job], fmt: Format, size: Size) -> None:
    """Render and write each poster (a worker thread: rendering is CPU-bound), with a
    progress bar on stderr when it is a terminal, and say where each one went."""
    from tqdm import tqdm

    from bot.poster import render_poster

    bar = tqdm(jobs, desc="posters", unit="poster", file=sys.stderr, disable=None, leave=False)
    for job in bar:
        bar.set_postfix_str(job.words.language)
        data = render_poster(job.words, job.link, fmt=fmt, size=size)
        _write(job.path, data)
        tqdm.write(f"wrote {job.path}", file=sys.stdout)
    bar.close()


def _write(path: Path, data: bytes) -> None:
    """`data` into `path` whole or not at all: a temporary file beside it, then renamed."""
    try:
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".poster-", delete=False)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc} (--out)") from None
    try:
        with handle:
            handle.write(data)
        os.replace(handle.name, path)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc} (--out)") from None


async def _counts(args: argparse.Namespace, settings: Settings) -> int:
    from bot.outreach_tables import all_campaign_tables, format_counts
    from storage.db import transaction

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        per_campaign = await all_campaign_tables(session)
    print(format_counts(per_campaign), end="")
    return 0
