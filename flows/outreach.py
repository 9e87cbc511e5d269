"""Outreach deep links: a campaign's code and a language in a Telegram start payload.

    encode(code, language) -> "c-<code>-<language>"
    decode(payload)        -> Link(code, language), or None for anything else

Telegram passes a start payload of at most 64 characters of `[A-Za-z0-9_-]`. A campaign code
is opaque: random letters and digits (`bot/outreach.py` makes them), never a place name or
anything that tells an onlooker who the link was for. A language is a deployment code, with
`_` allowed (`zh_Hant`, `fa_AF`). A bare language code (`pl`) is not a campaign link: it
keeps opening that language, counted for no campaign (`flows/transitions.py:_started`).

Pure functions: whether a code is a live campaign is the edges' question (`OpenCampaign`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_PAYLOAD = 64  # Telegram's limit on a start parameter
CODE_LENGTH = 8
# New codes leave out what is misread when typed from a poster (I l 1, O o 0); a code made
# before that, with any letters and digits, still works.
AMBIGUOUS = "Il1Oo0"
CODE_ALPHABET = "".join(
    c
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if c not in AMBIGUOUS
)
MAX_LANGUAGE = 16  # the width of the language columns
PREFIX = "c-"

_CODE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
_LANGUAGE = re.compile(rf"[A-Za-z0-9_]{{1,{MAX_LANGUAGE}}}")
_PAYLOAD = re.compile(rf"c-([A-Za-z0-9]{{{CODE_LENGTH}}})-([A-Za-z0-9_]{{1,{MAX_LANGUAGE}}})")
_TELEGRAM = re.compile(r"[A-Za-z0-9_-]{0,64}")


@dataclass(frozen=True)
class Link:
    code: str
    language: str


def is_code(code: str) -> bool:
    return _CODE.fullmatch(code) is not None


def is_language(language: str) -> bool:
    return _LANGUAGE.fullmatch(language) is not None


def encode(code: str, language: str) -> str:
    """The start payload for campaign `code` in `language`; ValueError if either is not one."""
    if not is_code(code):
        raise ValueError(f"not a campaign code: {code!r}")
    if not is_language(language):
        raise ValueError(f"not a language code: {language!r}")
    payload = f"{PREFIX}{code}-{language}"
    assert is_telegram_payload(payload)
    return payload


def decode(payload: str) -> Link | None:
    """The campaign and language a payload names; None when it is not exactly one."""
    if len(payload) > MAX_PAYLOAD or not payload.isascii():
        return None
    match = _PAYLOAD.fullmatch(payload)
    return None if match is None else Link(match.group(1), match.group(2))


def is_telegram_payload(payload: str) -> bool:
    """What Telegram accepts as a start parameter."""
    return _TELEGRAM.fullmatch(payload) is not None and payload.isascii()


def iso_week(day: dt.date | dt.datetime) -> str:
    """The ISO week a moment falls in, "YYYY-Www": the finest time a counter keeps."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


# How long a request waited to be picked up, in coarse buckets (storage.models.PickupTime):
# (key, the wait it is under; None for the last). The one place these are defined.
PICKUP_BUCKETS: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("<1h", dt.timedelta(hours=1)),
    ("1-4h", dt.timedelta(hours=4)),
    ("4-24h", dt.timedelta(hours=24)),
    ("1-3d", dt.timedelta(days=3)),
    ("3-7d", dt.timedelta(days=7)),
    (">7d", None),
)
BUCKET_KEYS: tuple[str, ...] = tuple(key for key, _ in PICKUP_BUCKETS)


def pickup_bucket(waited: dt.timedelta) -> str:
    """The bucket of a wait: "<1h" under an hour, "1-4h" from 1 hour to under 4, ...; a wait
    below zero (a clock set back) is "<1h"."""
    for key, under in PICKUP_BUCKETS:
        if under is None or waited < under:
            return key
    raise AssertionError("the last bucket has no bound")


def shown(count: int) -> str:
    """A count as it may be shown: any count from 1 to 9 is "fewer than 10"."""
    return "fewer than 10" if 0 < count < 10 else str(count)
