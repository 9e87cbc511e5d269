"""The callback data carried by inline buttons: what a press asks for, as at most 64 bytes.

    x            quick exit            l        language list        m       menu
    l:<n>        page n of the language list (1-99; "l" is the first page)
    r            continue my request (back to the form step she was on)
    L:<code>     set language          g:<id>   go to a screen that some button leads to
    a:<seq>:<v>  answer/act on the current screen (question option, skip, confirm, e.<n>...)

Data comes back from the client, so `decode` trusts nothing: it returns None for anything
that is not exactly one of these formats. Whether a decoded press is *allowed* (a language
the deployment has, a step some button leads to, the current screen's sequence number) is
the engine's decision, not the codec's.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum

CALLBACK_DATA_MAX_BYTES = 64  # Telegram refuses the whole message above this
# `a:` presses carry the screen's sequence number in base 36, wrapped to six digits so that
# the data stays short however long a conversation runs.
SEQ_DIGITS = 6
SEQ_MODULUS: int = 36**SEQ_DIGITS
LONGEST_SEQ = SEQ_MODULUS - 1  # the widest sequence number: for worst-case length checks

_B36 = string.digits + string.ascii_lowercase
# Only the canonical spelling encode_seq produces: "00" or "A" would decode to the same number
# as "0" or "a" and let a forged press through.
_CANONICAL_SEQ = re.compile(rf"0|[1-9a-z][0-9a-z]{{0,{SEQ_DIGITS - 1}}}")

QUICK_EXIT_DATA = "x"
LANGUAGES_DATA = "l"
MENU_DATA = "m"
RESUME_DATA = "r"
_SET_LANGUAGE = "L:"
_LANGUAGE_PAGE = LANGUAGES_DATA + ":"
_PAGE = re.compile(r"[1-9][0-9]?")  # canonical only: "l:01" is not "l:1"
_GO_TO = "g:"
_ACT = "a:"
_EDIT = "e."


class Action(StrEnum):
    """The fixed values of `a:` presses (question options use their own values)."""

    SKIP = "skip"
    CONFIRM = "confirm"
    CHANGE = "change"
    CANCEL = "cancel"
    YES = "yes"
    NO = "no"
    DONE = "done"  # a `choices` question: these are all
    DELETE = "delete"  # "Cancel and delete", confirmed
    KEEP = "keep"  # ... or not


@dataclass(frozen=True)
class QuickExit:
    pass


@dataclass(frozen=True)
class OpenLanguages:
    page: int = 0


@dataclass(frozen=True)
class OpenMenu:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class SetLanguage:
    code: str


@dataclass(frozen=True)
class GoTo:
    step: str


@dataclass(frozen=True)
class Act:
    """An action on the screen numbered `seq`; stale on any other screen."""

    seq: int
    value: str

    def is_for(self, seq: int) -> bool:
        return self.seq % SEQ_MODULUS == seq % SEQ_MODULUS


Callback = QuickExit | OpenLanguages | OpenMenu | Resume | SetLanguage | GoTo | Act

_FIXED: dict[str, Callback] = {
    QUICK_EXIT_DATA: QuickExit(),
    LANGUAGES_DATA: OpenLanguages(),
    MENU_DATA: OpenMenu(),
    RESUME_DATA: Resume(),
}


def encode(callback: Callback) -> str:
    match callback:
        case QuickExit():
            return QUICK_EXIT_DATA
        case OpenLanguages(page):
            return f"{LANGUAGES_DATA}:{page}" if page else LANGUAGES_DATA
        case OpenMenu():
            return MENU_DATA
        case Resume():
            return RESUME_DATA
        case SetLanguage(code):
            return _SET_LANGUAGE + code
        case GoTo(step):
            return _GO_TO + step
        case Act(seq, value):
            return f"{_ACT}{encode_seq(seq)}:{value}"


def decode(data: str) -> Callback | None:
    """The press `data` asks for, or None when it is not exactly one of the formats."""
    if data in _FIXED:
        return _FIXED[data]
    if data.startswith(_LANGUAGE_PAGE) and _PAGE.fullmatch(data[len(_LANGUAGE_PAGE) :]):
        return OpenLanguages(int(data[len(_LANGUAGE_PAGE) :]))
    if data.startswith(_SET_LANGUAGE):
        return SetLanguage(data[len(_SET_LANGUAGE) :])
    if data.startswith(_GO_TO):
        return GoTo(data[len(_GO_TO) :])
    if data.startswith(_ACT):
        seq, _, value = data[len(_ACT) :].partition(":")
        if not value or not _CANONICAL_SEQ.fullmatch(seq):
            return None
        return Act(int(seq, 36), value)
    return None


def is_action(data: str) -> bool:
    """Data of the `a:` kind, well-formed or not: a press meant to answer the current screen."""
    return data.startswith(_ACT)


def encode_seq(seq: int) -> str:
    """`seq` in base 36, wrapped to SEQ_DIGITS digits."""
    n = seq % SEQ_MODULUS
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def edit_value(index: int) -> str:
    """The summary's "change the answer to question `index` of the form" action."""
    return f"{_EDIT}{index}"


def edit_index(value: str) -> int | None:
    """The form index an edit action names; None unless `value` is `e.` and ASCII digits."""
    digits = value[len(_EDIT) :]
    # str.isdigit() alone accepts "²" and "١"; int() refuses the first and reads the second.
    if value.startswith(_EDIT) and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def fits(data: str) -> bool:
    """Whether Telegram accepts `data` as a button's callback data (counted in bytes)."""
    return len(data.encode()) <= CALLBACK_DATA_MAX_BYTES
