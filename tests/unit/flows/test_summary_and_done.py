"""The summary in words (issue 12) and the screen after Send: who received the request, when
to expect contact, the reference number; and the three kinds of code never share a name."""

from __future__ import annotations

import html
import re

import pytest
from babel.lists import format_list

from flows.definition import load_flow
from flows.events import RequestStored
from flows.form import picked
from flows.text import format_reference
from tests.unit.flows.conftest import (
    METHODS,
    REFERENCE,
    Drive,
    Driver,
    at_summary,
)

FLOW = load_flow()
_LINE = re.compile(r"^<b>(?P<label>[^<]+)</b>: (?P<shown>.*)$")


def summary_lines(d: Driver) -> dict[str, str]:
    """The summary's answers: label -> the answer as shown (HTML)."""
    lines = {}
    for line in d.screen.html.split("\n"):
        match = _LINE.match(line)
        if match:
            lines[match["label"]] = match["shown"]
    return lines


def said(d: Driver, sid: str, value: str) -> str:
    """How the summary must say option `value` of choice question `sid`."""
    option = next(o for o in FLOW.step(sid).options if o.value == value)
    return d.tr(option.summary or option.label)


OPTION_QUESTIONS = [
    sid for sid in FLOW.form if FLOW.step(sid).options and FLOW.step(sid).in_summary
]
CODE_VALUES = {o.value for sid in FLOW.form for o in FLOW.step(sid).options}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("someone_else", ["hang_up", "wrong_number"])
def test_the_summary_says_every_answer_in_words(
    drive: Drive, lang: str, method: str, someone_else: str
) -> None:
    d = at_summary(drive, lang, method, someone_else=someone_else, times="mornings+any")
    lines = summary_lines(d)
    answers = d.answers
    for sid in OPTION_QUESTIONS:
        q = FLOW.step(sid)
        label = d.tr(q.summary_label)
        if q.field not in answers:
            assert label not in lines or lines[label] == d.msg("not_answered"), sid
            continue
        if q.input == "choices":
            values, _ = picked(answers[q.field])
            expected = format_list([said(d, sid, v) for v in values], locale=lang)
            if lang == "cy":  # CLDR's "a(c)": "ac" before a vowel, "a" before a consonant
                expected = re.sub(
                    r"a\(c\) (\w)",
                    lambda m: ("ac " if m[1].lower() in "aeiouwyâêîôûŵŷ" else "a ") + m[1],
                    expected,
                )
            assert lines[label] == expected
        else:
            assert lines[label] == said(d, sid, answers[q.field or ""]), sid


def test_the_summary_never_shows_a_code(drive: Drive, lang: str) -> None:
    for method in METHODS:
        d = at_summary(drive, lang, method, someone_else="wrong_number")
        visible = html.unescape(re.sub(r"<[^>]+>", "", d.screen.html))
        typed = {"07911 123456", "safe.person@example.org", "bluebird", "Please call after 6pm."}
        for answer in typed:
            visible = visible.replace(answer, "")
        for value in CODE_VALUES | {"eastshire-hub", "polska-pomoc", "none", "whatsapp"}:
            if "_" in value or "-" in value or value in ("none", "whatsapp", "evenings"):
                assert value not in visible, (method, value)
        assert '"picked"' not in visible and "{" not in visible
        # the consent question is not listed: "Yes, go on" is not an answer to show
        assert html.unescape(d.tr("Yes, go on")) not in visible


def test_the_summary_hides_the_consent_question(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    assert d.answers["consent"] == "yes"
    assert d.tr("Contact me") not in summary_lines(d)
    assert not FLOW.step("contact.consent").in_summary
    assert [sid for sid in FLOW.form if not FLOW.step(sid).in_summary] == ["contact.consent"]


def test_voicemail_is_said_as_an_answer(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang, leave_message="yes")
    assert summary_lines(d)[d.tr("Leave a message")] == d.tr("Yes, it is safe")


# ---- after Send ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "choice", "org"),
    [
        ("en", "none", "eastshire-hub"),  # the default
        ("ar", "none", "eastshire-hub"),
        ("pl", "none", "polska-pomoc"),  # routed by language
        ("pl", "eastshire-hub", "eastshire-hub"),  # her choice first
        ("en", "polska-pomoc", "polska-pomoc"),
        ("ar", "polska-pomoc", "polska-pomoc"),
    ],
)
def test_the_done_screen_names_the_organisation_and_when(
    drive: Drive, lang: str, choice: str, org: str
) -> None:
    d = at_summary(drive, lang, organisation=choice)
    d.answer("confirm")
    d.send(RequestStored(REFERENCE))
    assert d.step_id == "contact.done"
    receiver = d.ctx.deployment.organisation(org)
    assert receiver.contact_within_days
    expected = d.plural("contact_within", receiver.contact_within_days, org=receiver.name)
    screen = d.screen.html
    assert expected in screen
    assert html.escape(receiver.name, quote=False) in screen
    others = [o for o in d.ctx.deployment.receiving_organisations if o.id != org]
    assert all(html.escape(o.name, quote=False) not in screen for o in others)
    assert d.ltr(format_reference(REFERENCE)) in screen
    assert d.msg("after_send") in screen
    assert d.answers["routed_to"] == org


def test_contact_within_is_said_in_working_days() -> None:
    singular, plural = FLOW.plurals["contact_within"]
    assert "{n} working day," in singular and "{n} working days," in plural
    assert "{org}" in singular and "{org}" in plural


@pytest.mark.parametrize(("days", "form"), [(1, 0), (2, 1), (5, 1)])
def test_contact_within_one_day_is_singular_in_english(drive: Drive, days: int, form: int) -> None:
    d = drive("en")
    said = d.plural("contact_within", days, org="X")
    assert said == FLOW.plurals["contact_within"][form].format(org="X", n=days)


def test_the_done_screen_forgets_the_organisation_once_left(drive: Drive) -> None:
    d = at_summary(drive, "en")
    d.answer("confirm")
    d.send(RequestStored(REFERENCE))
    d.press(data="m")
    assert dict(d.answers) == {}


# ---- three kinds of code -------------------------------------------------------------------
# A reference number (to check a request), a code word (so she knows the worker is real) and
# the locking of her answers (a key, never a "code"): the English never mixes their names.


def english_texts() -> list[str]:
    texts = list(FLOW.source_strings())
    texts += [form for pair in FLOW.plurals.values() for form in pair]
    texts += list(FLOW.commands.values())
    return texts


def test_the_reference_number_is_never_called_a_code() -> None:
    about_reference = [t for t in english_texts() if "reference" in t.lower()]
    assert about_reference
    for text in about_reference:
        assert "code" not in text.lower(), text


def test_the_locking_is_never_called_a_code() -> None:
    about_locking = [t for t in english_texts() if re.search(r"\block|\bkey\b", t, re.I)]
    assert about_locking
    for text in about_locking:
        assert "code" not in text.lower(), text
        assert "reference" not in text.lower(), text


def test_code_means_only_the_code_word() -> None:
    # The printed poster is the one place "code" means the QR code: nothing on it is a
    # reference number or a code word, and nothing in the chat calls the QR a code.
    poster = set(FLOW.poster.values())
    assert any("code" in text for text in poster)
    for text in english_texts():
        if text in poster:
            continue
        rest = re.sub(r"code word", "", text, flags=re.I)
        assert "code" not in rest.lower(), text
