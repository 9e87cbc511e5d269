"""What a person types: phone numbers, email addresses, free text, reference codes."""

from __future__ import annotations

import pytest

from flows.validators import (
    HARD_LIMIT,
    Invalid,
    Valid,
    ascii_digits,
    clean_text,
    display_phone,
    reference_code,
    validate,
)


def phone(text: str) -> Valid | Invalid:
    return validate("phone", text, max_length=200)


def email(text: str) -> Valid | Invalid:
    return validate("email", text, max_length=254)


@pytest.mark.parametrize(
    "typed",
    [
        "07911 123456",
        "07911123456",
        "+44 7911 123456",
        "+447911123456",
        "0044 7911 123456",
        "(07911) 123-456",
        "07911-123-456",
        "+44 (0)7911 123456",
        " 07911 123456 \n",
        "07911\x00123456",
        "٠٧٩١١ ١٢٣٤٥٦",  # Arabic-Indic digits
        "۰۷۹۱۱ ۱۲۳۴۵۶",  # Persian (Extended Arabic-Indic): Persian, Dari, Urdu, Pashto
        "০৭৯১১ ১২৩৪৫৬",  # Bengali
        "੦੭੯੧੧ ੧੨੩੪੫੬",  # Gurmukhi
        "૦૭૯૧૧ ૧૨૩૪૫૬",  # Gujarati
        "०७९११ १२३४५६",  # Devanagari
        "０７９１１ １２３４５６",  # full-width (Chinese input)
    ],
)
def test_uk_mobile_formats_become_e164(typed: str) -> None:
    assert phone(typed) == Valid("+447911123456")


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("020 7946 0018", "+442079460018"),
        ("0808 2000 247", "+448082000247"),
        ("+48 512 345 678", "+48512345678"),
        ("0048 512 345 678", "+48512345678"),
        ("+48512345678", "+48512345678"),
    ],
)
def test_other_numbers_become_e164(typed: str, e164: str) -> None:
    assert phone(typed) == Valid(e164)


@pytest.mark.parametrize(
    "typed",
    [
        "999",
        "112",
        "12",
        "abc",
        "",
        "   ",
        "+44",
        "0" * 30,
        "07911 12345",
        "+48 512 345",
        "1" * 300,
    ],
)
def test_not_phone_numbers(typed: str) -> None:
    assert phone(typed) == Invalid("invalid_phone")


def test_huge_phone_input_is_too_long() -> None:
    assert phone("0" * (HARD_LIMIT + 1)) == Invalid("too_long")


def test_display_phone() -> None:
    assert display_phone("+447911123456") == "07911 123456"
    assert display_phone("+442079460018") == "020 7946 0018"
    assert display_phone("+48512345678") == "+48 512 345 678"
    assert display_phone("not a number") == "not a number"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("safe@example.org", "safe@example.org"),
        ("  safe@example.org  ", "safe@example.org"),
        ("safe @ example.org", "safe@example.org"),
        ("first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk"),
        ("kasia@przykład.pl", "kasia@przykład.pl"),
        ("a\x00b@example.org", "ab@example.org"),
    ],
)
def test_valid_email(typed: str, stored: str) -> None:
    assert email(typed) == Valid(stored)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "nobody",
        "a@b",
        "a@@example.org",
        "@example.org",
        "a@example.c",
        "a@example.",
        "x" * 65 + "@example.org",
        "a@" + "b" * 250 + ".org",
        "a@b@c.org",
    ],
)
def test_invalid_email(typed: str) -> None:
    assert email(typed) == Invalid("invalid_email")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  hello  ", "hello"),
        ("a\x00b\x07c\x1bd\x7fe", "abcde"),
        ("line one\nline two\tend", "line one\nline two\tend"),
        ("\ufdd0x", "x"),  # a noncharacter (Cn)
        ("\ue000x", "x"),  # private use (Co)
        ("zażółć مرحبا 👩‍👧", "zażółć مرحبا 👩‍👧"),  # joiners kept
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


# Embeddings, overrides and isolates: U+202A..U+202E and U+2066..U+2069.
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_clean_text_drops_bidi_controls(control: str) -> None:
    assert clean_text(f"abc{control}def") == "abcdef"
    assert clean_text(f"{control} abc {control}") == "abc"


def test_clean_text_keeps_joiners_and_marks() -> None:
    # ZWNJ in Persian words and ZWJ in emoji sequences carry meaning.
    kept = "می\u200cخواهم 👩\u200d👧"
    assert clean_text(kept) == kept


def test_text_limits() -> None:
    assert validate("text", "x" * 40, max_length=40) == Valid("x" * 40)
    assert validate("text", "x" * 41, max_length=40) == Invalid("too_long")
    assert validate("text", "x" * 161, max_length=40) == Invalid("too_long")
    # counted after cleaning: spaces around do not count
    assert validate("text", "  " + "x" * 40 + "  ", max_length=40) == Valid("x" * 40)
    assert validate("text", "x" * (HARD_LIMIT + 1), max_length=10_000) == Invalid("too_long")


@pytest.mark.parametrize("typed", ["", "   ", "\x00\x01", "\n\t"])
def test_blank_text_is_invalid(typed: str) -> None:
    assert validate("text", typed, max_length=40) == Invalid("invalid_text")


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("1234 5678 9012 3456", "1234567890123456"),
        (" 1234-5678-9012-3456 ", "1234567890123456"),
        ("١٢٣٤ ٥٦٧٨ ٩٠١٢ ٣٤٥٦", "1234567890123456"),
        ("۱۲۳۴۵۶۷۸", "12345678"),  # 8 digits: the shortest looked up
        ("১২৩৪ ৫৬৭৮ ৯০১২ ৩৪৫৬", "1234567890123456"),  # Bengali
        ("੧੨੩੪ ੫੬੭੮ ੯੦੧੨ ੩੪੫੬", "1234567890123456"),  # Gurmukhi
        ("૧૨૩૪ ૫૬૭૮ ૯૦૧૨ ૩૪૫૬", "1234567890123456"),  # Gujarati
        ("1" * 32, "1" * 32),  # 32: the longest
        ("1" * 7, None),
        ("1" * 33, None),
        ("no digits here", None),
        ("²²²²²²²²²²", None),  # digit-like signs are not digits
    ],
)
def test_reference_code(typed: str, code: str | None) -> None:
    assert reference_code(typed) == code


def test_ascii_digits() -> None:
    assert ascii_digits("a١b2۳①") == "123"
