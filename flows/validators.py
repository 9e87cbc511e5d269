"""Checks for what a person types: answers to the contact form and reference codes. Pure; the
form's checks return the cleaned value or the key of the string that explains the problem."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

# Telegram delivers up to 4096 characters; anything far beyond a field's limit is refused
# before any work is done on it.
HARD_LIMIT = 4096
# Reference codes have 16 digits (storage/requests.py). A typed code of 8 to 32 digits is
# looked up; anything else is answered as mistyped without a lookup.
REFERENCE_MIN_DIGITS, REFERENCE_MAX_DIGITS = 8, 32
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class Valid:
    value: str


@dataclass(frozen=True)
class Invalid:
    reason: str  # a key of the flow's [strings]


# Bidirectional embeddings, overrides and isolates: they can disguise what was typed and
# break the engine's own isolates around numbers. Joiners (U+200C, U+200D) stay: Persian
# words and emoji need them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str) -> str:
    """Drop control characters and bidi controls (keeping line breaks), trim spaces."""
    kept = [
        ch
        for ch in text
        if ch in "\n\t"
        or (unicodedata.category(ch) not in {"Cc", "Cs", "Co", "Cn"} and ch not in _BIDI_CONTROLS)
    ]
    return "".join(kept).strip()


def validate(kind: str, text: str, *, max_length: int, region: str = "GB") -> Valid | Invalid:
    if len(text) > HARD_LIMIT or len(text) > max_length * 4:
        return Invalid("too_long")
    value = clean_text(text)
    if kind == "phone":
        return _phone(value, region)
    if kind == "email":
        value = value.replace(" ", "")
        return (
            Valid(value) if _EMAIL.match(value) and len(value) <= 254 else Invalid("invalid_email")
        )
    if not value:
        return Invalid("invalid_text")
    if len(value) > max_length:
        return Invalid("too_long")
    return Valid(value)


def _phone(value: str, region: str) -> Valid | Invalid:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return Invalid("invalid_phone")
    if not phonenumbers.is_valid_number(number):
        return Invalid("invalid_phone")
    return Valid(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def display_phone(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, fmt)


def ascii_digits(text: str) -> str:
    """Digits in any script ("١٢٣", "۱۲۳") as ASCII; everything else dropped."""
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


def reference_code(text: str) -> str | None:
    """The reference code typed in `text`, in any script and with any spacing; None unless it
    has a plausible number of digits."""
    code = ascii_digits(text)
    return code if REFERENCE_MIN_DIGITS <= len(code) <= REFERENCE_MAX_DIGITS else None
