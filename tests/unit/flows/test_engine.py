"""The conversation engine, driven event by event in every shipped language."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.callbacks import encode_seq
from flows.context import Context
from flows.effects import CheckStatus, DeleteConversation, ForgetMe, SubmitRequest
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    Forgotten,
    NonTextReceived,
    QuickExitRequested,
    RequestFailed,
    RequestStored,
    Started,
    StatusChecked,
    TextReceived,
)
from flows.form import choices_answer
from flows.i18n import is_rtl, native_name
from flows.state import ConversationState
from flows.text import FSI, PDI
from flows.validators import Valid, validate
from tests.unit.flows.conftest import (
    EMAIL,
    LANGUAGES,
    METHODS,
    OPTIONAL_FIELDS,
    PHONE_E164,
    PHONE_SHOWN,
    PHONE_TYPED,
    REFERENCE,
    REFERENCE_SHOWN,
    Driver,
    answer_until_summary,
    assert_help_row_added,
    at_question,
    at_summary,
    form_plan,
    stored_answer,
)

Drive = Callable[..., Driver]

FORM_CALL = [
    "contact.consent",
    "contact.method",
    "contact.phone",
    "contact.times",
    "contact.voicemail",
    "contact.someone_else",
    "contact.codeword",
    "contact.language",
    "contact.interpreter",
    "risk.urgent",
    "risk.threats",
    "risk.documents",
    "risk.children",
    "contact.organisation",
    "contact.message",
]
EXPECTED_FORM = {
    "call": FORM_CALL,
    "sms": [s for s in FORM_CALL if s != "contact.someone_else"],
    "whatsapp": [s for s in FORM_CALL if s != "contact.someone_else"],
    "email": [
        s if s != "contact.phone" else "contact.email"
        for s in FORM_CALL
        if s not in {"contact.voicemail", "contact.someone_else"}
    ],
}
NATIVE_NAMES = {code: native_name(code) for code in LANGUAGES}


def language_buttons(d: Drive) -> dict[str, str]:
    """Every language button of the list, page by page (▶ wraps round to the first)."""
    found: dict[str, str] = {}
    while True:
        page = {
            b.label: b.data for row in d.screen.buttons for b in row if b.data.startswith("L:")
        }
        if set(page) <= set(found):
            return found
        found |= page
        if not d.has("▶"):
            return found
        d.press("▶")


def expected_answers(ctx: Context, visited: list[str], plan: dict[str, str | None]) -> dict:
    out = {}
    for sid in visited:
        fld = ctx.flow.step(sid).field
        assert fld is not None
        value = plan[fld]
        if value is not None:
            out[fld] = stored_answer(ctx.flow.step(sid), value)
    return out


def submitted(d: Driver) -> SubmitRequest:
    effects = [e for e in d.effects if isinstance(e, SubmitRequest)]
    assert len(effects) == 1 and len(d.effects) == 1, d.effects
    return effects[0]


# ---- starting ---------------------------------------------------------------------------------


def test_start_with_a_language_hint_shows_the_welcome_in_that_language(
    drive: Drive, lang: str
) -> None:
    d = drive(None)
    d.start(hint=lang)
    assert d.step_id == "welcome"
    assert d.state.language == lang
    assert d.screen.html.startswith(f"<b>{d.tr('Welcome')}</b>")
    assert d.tr("Hello. Here you can find information and support, in your language.") in (
        d.screen.html
    )
    assert d.screen.rtl == is_rtl(lang)


@pytest.mark.parametrize("hint", ["xx", "sw-KE", "de_DE", "", None, "../../etc", "e" * 300])
def test_start_with_an_unknown_hint_offers_the_language_list(
    drive: Drive, hint: str | None
) -> None:
    d = drive(None)
    d.start(hint=hint)
    assert d.step_id == "language"
    assert d.state.language == "en"
    assert language_buttons(d) == {name: f"L:{code}" for code, name in NATIVE_NAMES.items()}


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("pl-PL", "pl"),
        ("pl_PL", "pl"),
        ("PL", "pl"),
        ("ar-EG", "ar"),
        ("ar_SA", "ar"),
        ("en-GB", "en"),
        ("EN-us", "en"),
    ],
)
def test_start_normalises_regional_hints(drive: Drive, hint: str, expected: str) -> None:
    d = drive(None)
    d.start(hint=hint)
    assert (d.step_id, d.state.language) == ("welcome", expected)


@pytest.mark.parametrize("payload", LANGUAGES)
def test_start_payload_naming_a_language_picks_it(drive: Drive, payload: str) -> None:
    d = drive(None)
    d.start(hint="xx", payload=payload)
    assert (d.step_id, d.state.language) == ("welcome", payload)
    # also over a language chosen earlier
    other = next(code for code in LANGUAGES if code != payload)
    d2 = drive(other)
    d2.start(payload=payload)
    assert (d2.step_id, d2.state.language) == ("welcome", payload)


def test_start_again_keeps_the_chosen_language(drive: Drive) -> None:
    d = drive("pl")
    d.start(hint="ar")
    assert (d.step_id, d.state.language) == ("welcome", "pl")
    d.start(payload="not-a-language")
    assert (d.step_id, d.state.language) == ("welcome", "pl")


# ---- screens ----------------------------------------------------------------------------------


def test_every_screen_reachable_from_the_menu_renders(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.press(data="m")
    seen: dict[str, str] = {}
    todo = ["menu"]
    while todo:
        target = todo.pop()
        if target in seen:
            continue
        d.data("m" if target == "menu" else f"g:{target}")
        assert d.step_id == target
        screen = d.screen
        seen[target] = screen.html
        assert html.unescape(screen.html).strip(), target
        assert d.has(data="x"), target
        assert d.has(data="l"), target
        if target != "menu":
            assert d.has(data="m"), target
        for button in d.buttons():
            assert len(button.data.encode()) <= 64
            if button.data.startswith("g:"):
                todo.append(button.data[2:])
    assert {"help.now", "safe.report", "safe.first", "privacy", "specialist", "rights"} <= set(seen)
    assert {"contact.consent", "status", "forget"} <= set(seen)
    # the screens that show deployment content
    assert "0808 2000 247" in seen["help.now"]
    assert "0808 2000 247" in seen["specialist"]
    assert "Eastshire Migrant Women" in seen["specialist.local"]
    assert "<blockquote>" in seen["safe.words"]
    assert d.ltr("30") in seen["privacy.request"]  # the retention period
    assert d.ltr("60") in seen["privacy"]  # how long an unfinished form is kept
    assert {"safe.exception", "safe.words", "privacy.request", "privacy.delete"} <= set(seen)
    assert {"specialist.more", "specialist.local", "rights.more"} <= set(seen)
    # the original wording is offered only where the policy is shown translated
    assert ("safe.original" in seen) == (lang != d.ctx.deployment.policy.language)


def test_language_screen_names_each_language_in_itself(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.press(data="l")
    assert d.step_id == "language"
    assert d.screen.html.strip()
    assert language_buttons(d) == {name: f"L:{code}" for code, name in NATIVE_NAMES.items()}
    assert d.has(data="x")
    assert not d.has(data="l")


def test_welcome_and_menu_buttons(drive: Drive, lang: str) -> None:
    d = drive(lang)
    assert d.has(data="x") and d.has(data="l") and d.has(data="m")
    d.press(d.tr("Continue"))
    assert d.step_id == "menu"
    assert d.has(data="x") and d.has(data="l")
    assert not d.has(data="m")  # already there


# ---- the contact request ----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("skip_optional", [False, True], ids=["answer-all", "skip-optional"])
def test_contact_request_walk(drive: Drive, lang: str, method: str, skip_optional: bool) -> None:
    plan = form_plan(method, organisation="eastshire-hub")
    if skip_optional:
        plan.update(dict.fromkeys(OPTIONAL_FIELDS))
    d = drive(lang)
    visited = d.fill_form(plan)
    assert visited == EXPECTED_FORM[method]
    assert d.step_id == "contact.summary"
    answers = expected_answers(d.ctx, visited, plan)
    assert dict(d.answers) == answers

    summary = d.screen.html
    assert d.tr("Check your answers") in summary
    if method == "email":
        assert d.ltr(EMAIL) in summary
        assert d.tr("Safe phone number") not in summary
    else:
        assert d.ltr(PHONE_SHOWN) in summary
        assert d.tr("Email") + "</b>" not in summary
    assert (d.tr("If someone else answers") in summary) == (method == "call")
    assert d.tr("Evenings") in summary
    assert "Polski" in summary
    assert "Eastshire Migrant Women&#x27;s" in summary or "Eastshire Migrant Women's" in summary
    if skip_optional:
        assert d.msg("not_answered") in summary
        assert "bluebird" not in summary
    else:
        assert "bluebird" in summary
        assert "Please call after 6pm." in summary
        assert d.tr("Yes, needed") in summary  # the option's `summary` wording
        assert d.tr("Yes, I need an interpreter") not in summary

    d.answer("confirm")
    assert d.step_id == "contact.submitting"
    request = submitted(d)
    assert dict(request.answers) == answers
    assert request.language == lang
    assert request.urgent is (not skip_optional)  # plan says urgent = yes
    assert request.organisation == "eastshire-hub"
    done_title = d.tr("Your request was sent")
    assert all(done_title not in r.html for r in d.replies)
    assert all(REFERENCE_SHOWN not in r.html for r in d.replies)

    d.send(RequestStored(REFERENCE))
    assert d.step_id == "contact.done"
    assert done_title in d.screen.html
    assert d.ltr(REFERENCE_SHOWN) in d.screen.html
    assert d.msg("reference_intro") in d.screen.html
    assert dict(d.answers) == {"reference": REFERENCE, "routed_to": "eastshire-hub"}
    assert d.has(data="x")


def test_nothing_says_received_before_request_stored(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    said = [r.html for o in d.history for r in o.replies]
    d.answer("confirm")
    said += [r.html for r in d.replies]
    for text in said:
        assert d.tr("Your request was sent") not in text
        assert d.msg("reference_intro") not in text


@pytest.mark.parametrize(
    ("urgent", "expected"), [("yes", True), ("no", False), (None, False)], ids=str
)
def test_urgent_flag_follows_the_urgent_answer(
    drive: Drive, urgent: str | None, expected: bool
) -> None:
    d = at_summary(drive, "en", urgent=urgent)
    d.answer("confirm")
    assert submitted(d).urgent is expected


@pytest.mark.parametrize(
    ("lang", "choice", "expected"),
    [
        ("pl", "none", "polska-pomoc"),
        ("en", "none", "eastshire-hub"),
        ("ar", "none", "eastshire-hub"),
        ("pl", "eastshire-hub", "eastshire-hub"),
        ("en", "polska-pomoc", "polska-pomoc"),
    ],
)
def test_organisation_routing(drive: Drive, lang: str, choice: str, expected: str) -> None:
    d = at_summary(drive, lang, organisation=choice)
    d.answer("confirm")
    assert submitted(d).organisation == expected


def test_organisation_question_lists_receiving_organisations(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.organisation", method="email")
    d.find("Eastshire Migrant Women's Advice Service (fictional)", prefix="a:")
    d.find("Polska Pomoc Eastshire (fictional)", prefix="a:")
    d.find(d.label("no_preference"), prefix="a:")
    assert not d.has(d.label("skip"))  # not optional


def test_request_failed_returns_to_the_summary_with_answers_kept(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    before = dict(d.answers)
    old_confirm = d.find(prefix="a:", data=f"a:{encode_seq(d.state.seq)}:confirm")
    d.answer("confirm")
    d.send(RequestFailed())
    assert d.replies[0].html == d.msg("submit_failed")
    assert d.ltr("0808 2000 247") in d.replies[0].html
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == before
    assert d.ltr(PHONE_SHOWN) in d.screen.html
    assert all(d.tr("Your request was sent") not in r.html for r in d.replies)
    # the old summary's Send is stale; the new one sends again
    d.data(old_confirm.data)
    assert d.replies[0].html == d.msg("stale_button") and not d.effects
    d.answer("confirm")
    assert dict(submitted(d).answers) == before


def test_old_send_button_after_stored_does_not_submit_twice(drive: Drive) -> None:
    d = at_summary(drive, "en")
    confirm = d.find(data=f"a:{encode_seq(d.state.seq)}:confirm")
    d.press(data=confirm.data)
    d.send(RequestStored(REFERENCE))
    d.data(confirm.data)
    assert not d.effects
    assert d.replies[0].html == d.msg("stale_button")
    assert d.step_id == "contact.done"


def test_change_an_answer_from_the_summary(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    d.answer("change")
    assert d.step_id == "contact.summary"
    assert d.screen.html == d.msg("change_which")
    labels = [b.label for b in d.buttons() if b.data.startswith("a:")]
    assert html.unescape(d.tr("Safe phone number")) in labels
    assert html.unescape(d.tr("Safe email")) not in labels  # does not apply to a call
    d.press(html.unescape(d.tr("Safe phone number")))
    assert d.step_id == "contact.phone"
    assert d.state.editing
    assert d.ltr(PHONE_SHOWN) in d.screen.html  # the current answer is shown
    d.text("07400 123456")
    assert d.step_id == "contact.summary"
    assert not d.state.editing
    assert d.answers["phone"] == "+447400123456"
    assert d.ltr("07400 123456") in d.screen.html
    assert PHONE_SHOWN not in d.screen.html
    d.answer("confirm")
    assert submitted(d).answers["phone"] == "+447400123456"


def test_change_a_choice_from_the_summary(drive: Drive) -> None:
    d = at_summary(drive, "en")
    d.answer("change")
    d.press("Safe times")
    assert d.state.editing
    d.answer("evenings")  # unpick the old answer
    d.answer("weekends")
    assert d.step_id == "contact.times"
    d.answer("done")
    assert d.step_id == "contact.summary"
    assert d.answers["times"] == choices_answer(["weekends"], "")
    assert "Weekends" in d.screen.html
    assert "Evenings" not in d.screen.html


def test_changing_method_drops_answers_that_no_longer_apply(drive: Drive) -> None:
    d = at_summary(drive, "en", "call")
    assert {"phone", "someone_else", "leave_message"} <= set(d.answers)
    d.answer("change")
    d.press("How to contact me")
    d.answer("email")
    # gone at once, not only when sent: the draft keeps nothing that no longer applies
    assert not {"phone", "someone_else", "leave_message"} & set(d.answers)
    answer_until_summary(d, form_plan("email", times="any"))
    assert PHONE_SHOWN not in d.screen.html
    d.answer("confirm")
    answers = submitted(d).answers
    assert answers["method"] == "email" and answers["email"] == EMAIL
    assert answers["times"] == choices_answer(["evenings"], "")  # still stands: not asked again
    assert not {"phone", "someone_else", "leave_message"} & set(answers)


def test_changing_method_asks_only_the_questions_that_now_apply(drive: Drive) -> None:
    d = at_summary(drive, "en", "call")
    d.answer("change")
    d.press("How to contact me")
    d.answer("email")
    assert d.step_id == "contact.email"  # newly needed
    assert d.state.editing
    d.text(EMAIL)
    # nothing else became necessary: straight back to the summary, other answers kept
    assert d.step_id == "contact.summary"
    assert not d.state.editing
    assert d.ltr(EMAIL) in d.screen.html
    assert d.answers["times"] == choices_answer(["evenings"], "")


def test_changing_method_to_another_phone_method_keeps_the_phone(drive: Drive) -> None:
    d = at_summary(drive, "en", "call")
    d.answer("change")
    d.press("How to contact me")
    d.answer("sms")
    # the phone number and the voicemail answer still apply; "someone else answers" does not
    assert d.step_id == "contact.summary"
    assert d.answers["phone"] == PHONE_E164
    assert "someone_else" not in d.answers
    d.answer("confirm")
    answers = submitted(d).answers
    assert (answers["method"], answers["phone"]) == ("sms", PHONE_E164)


def test_withdrawing_from_the_summary_goes_through_the_confirmed_cancel(drive: Drive) -> None:
    # Consent is not in the change list: withdrawing is "Cancel and delete", which asks.
    d = at_summary(drive, "en")
    d.answer("change")
    assert not d.has("Contact me")
    d = at_summary(drive, "en")
    d.answer("cancel")
    assert d.answers and not d.effects
    d.answer("delete")
    assert d.step_id == "menu"
    assert dict(d.answers) == {}
    assert not d.state.editing
    assert not d.effects
    # nothing is left to send: the form starts again from the beginning
    d.data("g:contact.consent")
    assert d.step_id == "contact.consent"
    assert dict(d.answers) == {}


def test_cancel_from_the_summary_clears_answers_once_confirmed(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    d.answer("cancel")
    assert d.step_id == "contact.summary"  # asked first, nothing deleted yet
    assert d.answers
    d.answer("delete")
    assert d.step_id == "menu"
    assert dict(d.answers) == {}
    assert d.state.resume is None
    assert not d.effects


def test_talk_to_a_support_worker_resumes_the_draft(drive: Drive) -> None:
    d = at_summary(drive, "en")
    answers = dict(d.answers)
    d.press(data="m")
    d.data("g:contact.consent")
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == answers


def test_declining_consent_goes_back_to_the_menu(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.data("g:contact.consent")
    d.answer("no")
    assert d.step_id == "menu"


# ---- typed input ------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["12", "abc", "999", "+44", "0" * 30, "   "])
def test_invalid_phone_is_refused(drive: Drive, lang: str, typed: str) -> None:
    d = at_question(drive, lang, "contact.phone")
    before = d.state
    d.text(typed)
    assert d.replies[0].html == d.msg("invalid_phone")
    assert d.step_id == "contact.phone"
    assert "phone" not in d.answers
    assert d.state == before
    assert d.screen.html == d.history[-2].replies[-1].html  # the question again


@pytest.mark.parametrize(
    "typed", ["07911 123456", "+44 7911 123456", "0044 7911 123456", "(07911) 123-456"]
)
def test_phone_formats_are_stored_in_e164(drive: Drive, typed: str) -> None:
    d = at_question(drive, "en", "contact.phone")
    d.text(typed)
    assert d.answers["phone"] == PHONE_E164
    assert d.step_id == "contact.times"


def test_phone_numbers_the_flow_shows_are_accepted(drive: Drive, lang: str) -> None:
    """Any example number in the phone question or its error message must pass the validator
    (the flow once showed Ofcom's drama number 07700 900123, which phonenumbers refuses)."""
    d = at_question(drive, lang, "contact.phone")
    shown = d.screen.html
    d.text("12")
    assert d.replies[0].html == d.msg("invalid_phone")
    shown += d.replies[0].html
    plain = html.unescape(shown).replace(FSI, "").replace(PDI, "")
    assert "07700 900123" not in plain
    for example in re.findall(r"\+?\d[\d ()-]{6,}\d", plain):
        assert isinstance(validate("phone", example, max_length=40), Valid), example


@pytest.mark.parametrize("typed", ["nobody", "a@b", "a@@example.org", "@example.org", "x@y.z"])
def test_invalid_email_is_refused(drive: Drive, lang: str, typed: str) -> None:
    d = at_question(drive, lang, "contact.email", method="email")
    before = d.state
    d.text(typed)
    assert d.replies[0].html == d.msg("invalid_email")
    assert d.state == before


def test_huge_text_on_the_message_question_is_too_long(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.message")
    before = d.state
    d.text("x" * 10_000)
    assert d.replies[0].html == d.msg("too_long", limit="500")
    assert d.step_id == "contact.message"
    assert "message" not in d.answers
    assert d.state == before
    d.text("y" * 501)
    assert d.replies[0].html == d.msg("too_long", limit="500")
    assert "message" not in d.answers
    d.text("y" * 500)
    assert d.answers["message"] == "y" * 500


def test_huge_text_on_an_info_screen_asks_for_buttons(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.data("g:privacy")
    before = d.state
    d.text("x" * 10_000)
    assert d.replies[0].html == d.notice("buttons_only", "emergency_line")
    assert d.state == before
    assert d.screen.html == d.history[-2].replies[-1].html
    assert_help_row_added(d, d.history[-2].replies[-1])


def test_html_typed_into_the_form_is_escaped(drive: Drive) -> None:
    evil = '<b>x</b> & <script>alert("hi")</script> <a href="javascript:x">y</a>'
    d = at_summary(drive, "en", message=evil, codeword="<i>&amp;")
    summary = d.screen.html
    assert "<script>" not in summary
    assert "&lt;script&gt;" in summary
    assert "&lt;b&gt;x&lt;/b&gt; &amp; " in summary
    assert "&lt;i&gt;&amp;amp;" in summary
    assert "<a " not in summary
    d.answer("confirm")
    assert submitted(d).answers["message"] == evil  # stored as typed, escaped only on screen


def test_control_characters_are_stripped_from_answers(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.codeword")
    d.text("  blue\x00bird\x07 ")
    assert d.answers["codeword"] == "bluebird"


def test_bidi_controls_are_stripped_from_answers(drive: Drive) -> None:
    # overrides and isolates could make a message read differently where it is shown
    d = at_question(drive, "en", "contact.message")
    d.text("\u202ecall me\u202c after \u20666pm\u2069, \u202bnot\u202a before")
    assert d.answers["message"] == "call me after 6pm, not before"


def test_blank_text_on_an_optional_question(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.codeword")
    d.text(" \x00\x01 ")
    assert d.replies[0].html == d.msg("invalid_text")
    assert d.step_id == "contact.codeword"
    d.answer("skip")
    assert "codeword" not in d.answers
    assert d.step_id == "contact.language"


def test_skip_is_refused_on_a_required_question(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.method")
    d.data(f"a:{encode_seq(d.state.seq)}:skip")
    assert d.replies[0].html == d.msg("stale_button")
    assert d.step_id == "contact.method"


def test_typing_on_a_choice_question_asks_for_buttons(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.method")
    d.text("call")
    assert d.replies[0].html == d.notice("buttons_only", "emergency_line")
    assert d.step_id == "contact.method"
    assert "method" not in d.answers


# ---- untrusted buttons ------------------------------------------------------------------------


def test_stale_question_button_is_answered_as_stale(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.data("g:contact.consent")
    old_yes = d.find(data=f"a:{encode_seq(d.state.seq)}:yes")
    d.answer("yes")
    assert d.step_id == "contact.method"
    before, shown = d.state, d.screen
    d.data(old_yes.data)
    assert d.replies[0].html == d.msg("stale_button")
    assert d.state == before
    assert d.screen == shown
    assert len(d.replies) == 2


@pytest.mark.parametrize(
    "data",
    [
        "a:zz:yes",
        "a:0:yes",
        "a:",
        "a",
        "g:nonexistent",
        "g:contact.done",
        "g:contact.submitting",
        "g:",
        "",
        "L:xx",
        "L:",
        "L:en:extra",
        "X",
        "x ",
        "\x00",
        "é" * 100,
        "q" * 200,
        "a:" + "9" * 200 + ":yes",
    ],
)
def test_forged_button_data_is_stale(drive: Drive, lang: str, data: str) -> None:
    d = at_question(drive, lang, "contact.method")
    before = d.state
    d.data(data)
    assert d.replies[0].html == d.msg("stale_button")
    assert d.state == before
    assert not d.effects


@pytest.mark.parametrize("value", ["e.99", "e.-1", "e.", "e.x", "bogus", "e.1.2"])
def test_forged_summary_actions_are_stale(drive: Drive, value: str) -> None:
    d = at_summary(drive, "en")
    before = d.state
    d.data(f"a:{encode_seq(d.state.seq)}:{value}")
    assert d.replies[0].html == d.msg("stale_button")
    assert d.state == before
    assert not d.effects


def test_editing_a_question_that_does_not_apply_is_stale(drive: Drive) -> None:
    d = at_summary(drive, "en", "email")
    index = d.ctx.flow.form.index("contact.phone")
    d.data(f"a:{encode_seq(d.state.seq)}:e.{index}")
    assert d.replies[0].html == d.msg("stale_button")
    assert d.step_id == "contact.summary"


# str.isdigit() accepts "²" and "①" (int() refuses them) and "١" (int() takes it as 1).
@pytest.mark.parametrize("value", ["e.²", "e.①", "e.١", "e.۱", "e.１"])
def test_forged_summary_action_with_unicode_digits_is_stale(drive: Drive, value: str) -> None:
    d = at_summary(drive, "en")
    before = d.state
    d.data(f"a:{encode_seq(d.state.seq)}:{value}")
    assert d.replies[0].html == d.msg("stale_button")
    assert d.state == before
    assert not d.effects


GLOBAL_STATES = ["welcome", "menu", "question", "summary", "done", "status", "forget", "exit"]
GLOBAL_STATES += ["language", "change-list", "cancel-confirm", "help-now"]


def reach(drive: Drive, lang: str, where: str) -> Driver:
    if where in {"question", "summary", "done", "change-list", "cancel-confirm"}:
        d = (
            at_summary(drive, lang)
            if where != "question"
            else at_question(drive, lang, "contact.times")
        )
        if where == "done":
            d.answer("confirm")
            d.send(RequestStored(REFERENCE))
        if where == "change-list":
            d.answer("change")
        if where == "cancel-confirm":
            d.answer("cancel")
        return d
    d = drive(lang)
    if where == "menu":
        d.press(data="m")
    elif where in {"status", "forget"}:
        d.command(where)
    elif where == "exit":
        d.quick_exit()
    elif where == "language":
        d.press(data="l")
    elif where == "help-now":
        d.text("help")
        d.press(data="g:help.now")
    return d


@pytest.mark.parametrize("where", GLOBAL_STATES)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_global_buttons_work_from_every_state(drive: Drive, lang: str, where: str) -> None:
    for data, expected in (("x", "exit"), ("l", "language"), ("m", "menu")):
        d = reach(drive, lang, where)
        answers = dict(d.answers)
        d.data(data)
        assert d.step_id == expected, (where, data)
        if data == "x":
            assert d.effects == (DeleteConversation(),)
            assert dict(d.answers) == {}
        elif where == "done":
            # the reference code is kept only while its screen is shown
            assert dict(d.answers) == {}
        else:
            assert dict(d.answers) == answers


# ---- non-text messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("photo", "not_text"),
        ("sticker", "not_text"),
        ("voice", "not_text"),
        ("location", "not_text"),
        ("document", "not_text"),
        ("edited", "edited"),
    ],
)
@pytest.mark.parametrize("where", ["question", "menu", "summary"])
def test_non_text_gets_a_calm_reply_and_the_screen_again(
    drive: Drive, lang: str, kind: str, key: str, where: str
) -> None:
    d = reach(drive, lang, where)
    before, shown = d.state, d.screen
    d.non_text(kind)
    assert len(d.replies) == 2  # one notice, then the screen
    assert d.replies[0].html == d.notice(key, "emergency_line")
    assert d.replies[0].buttons == ()
    assert d.state == before
    assert d.screen.html == shown.html
    assert_help_row_added(d, shown)
    assert not d.effects


# ---- quick exit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [QuickExitRequested(), ButtonPressed("x"), CommandReceived("exit")],
    ids=["event", "button", "command"],
)
def test_quick_exit_mid_form(drive: Drive, lang: str, how: Event) -> None:
    d = at_question(drive, lang, "contact.codeword")
    assert d.answers
    d.send(how)
    assert d.effects == (DeleteConversation(),)
    assert dict(d.answers) == {}
    assert d.step_id == "exit"
    assert len(d.replies) == 1
    assert d.replies[0].buttons == ()
    assert not d.replies[0].protect
    assert PHONE_SHOWN not in d.replies[0].html
    d.text("hello")
    assert d.step_id == "welcome"
    assert d.state.language == lang
    assert not d.effects


def test_old_question_button_after_quick_exit_restarts(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.times")
    old = d.find(data=f"a:{encode_seq(d.state.seq)}:evenings")
    d.quick_exit()
    d.data(old.data)
    assert d.step_id == "welcome"
    assert "times" not in d.answers


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(QuickExitRequested(), id="event"),
        pytest.param(ButtonPressed("x"), id="button"),
        pytest.param(CommandReceived("exit"), id="command"),
    ],
)
def test_quick_exit_while_submitting(drive: Drive, how: Event) -> None:
    d = at_summary(drive, "en")
    d.answer("confirm")
    assert d.step_id == "contact.submitting"
    d.send(how)
    assert d.effects == (DeleteConversation(),)
    assert d.step_id == "exit"
    assert dict(d.answers) == {}
    assert all(PHONE_SHOWN not in r.html for r in d.replies)
    assert all(d.msg("submit_interrupted") != r.html for r in d.replies)


# ---- languages --------------------------------------------------------------------------------


# Every language to a few others (29 x 29 would be 841 runs of the form): one of each
# script and direction, and the first language of the list's last page.
TARGETS = ("en", "pl", "ar", "ur", "ti", "zh_Hant", "cy")


@pytest.mark.parametrize("target", TARGETS)
def test_language_change_mid_form_keeps_answers(drive: Drive, lang: str, target: str) -> None:
    d = at_question(drive, lang, "contact.codeword")
    answers = dict(d.answers)
    d.press(data="l")
    d.choose_language(target)
    assert d.state.language == target
    assert d.step_id == "menu"
    assert dict(d.answers) == answers
    assert d.replies[0].html == d.msg("language_changed")
    assert d.tr("How can I help?") in d.screen.html
    assert all(r.rtl == is_rtl(target) for r in d.replies)
    d.data("g:privacy")
    assert d.screen.rtl == is_rtl(target)


def test_arabic_isolates_numbers_and_codes(drive: Drive) -> None:
    d = at_summary(drive, "ar")
    assert all(r.rtl for r in d.replies)
    assert f"{FSI}{PHONE_SHOWN}{PDI}" in d.screen.html
    d.answer("confirm")
    d.send(RequestStored(REFERENCE))
    assert d.screen.rtl
    assert f"{FSI}{REFERENCE_SHOWN}{PDI}" in d.screen.html
    d.data("g:help.now")
    assert f"{FSI}0808 2000 247{PDI}" in d.screen.html
    d.data("g:privacy.request")
    assert f"{FSI}30{PDI}" in d.screen.html
    d.data("g:privacy")
    assert f"{FSI}60{PDI}" in d.screen.html


@pytest.mark.parametrize("lang", ["en", "pl"])
def test_left_to_right_languages_have_no_isolates(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    d.answer("confirm")
    d.send(RequestStored(REFERENCE))
    for outcome in d.history:
        for reply in outcome.replies:
            assert not reply.rtl
            assert FSI not in reply.html and PDI not in reply.html


# ---- status and forget ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "key"),
    [
        ("new", "status_waiting"),
        ("picked_up", "status_picked_up"),
        ("closed", "status_closed"),
        ("withdrawn", "status_withdrawn"),
        (None, "status_unknown"),
        ("something-else", "status_unknown"),
        ("", "status_unknown"),
    ],
)
def test_status_command_with_a_code(drive: Drive, lang: str, status: str | None, key: str) -> None:
    d = drive(lang)
    d.command("status", " 1234 5678-9012 3456 ")
    assert d.effects == (CheckStatus(REFERENCE),)
    assert d.replies == ()
    assert d.step_id == "welcome"
    d.send(StatusChecked(status))
    assert d.replies[0].html == d.msg(key)
    assert d.step_id == "menu"
    assert d.screen.html != d.replies[0].html


def test_status_screen_then_typed_code(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.command("status")
    assert d.step_id == "status"
    assert d.has(data="x")
    d.text("12")
    assert d.replies[0].html == d.msg("status_bad_code")
    assert d.step_id == "status"
    assert not d.effects
    d.text("1234-5678-9012-3456")
    assert d.effects == (CheckStatus(REFERENCE),)


@pytest.mark.parametrize("argument", ["12", "no digits here", "1" * 33])
def test_status_command_with_a_bad_code(drive: Drive, argument: str) -> None:
    d = drive("en")
    d.command("status", argument)
    assert not d.effects
    assert d.replies[0].html == d.msg("status_bad_code")
    assert d.step_id == "status"


@pytest.mark.parametrize(
    "typed",
    ["١٢٣٤ ٥٦٧٨ ٩٠١٢ ٣٤٥٦", "۱۲۳۴۵۶۷۸۹۰۱۲۳۴۵۶", "١٢٣٤-5678 ۹۰۱۲ 3456", "１２３４5678９０１２3456"],
)
def test_status_code_in_other_scripts_digits(drive: Drive, typed: str) -> None:
    d = drive("ar")
    d.command("status", typed)
    assert d.effects == (CheckStatus(REFERENCE),)
    d2 = drive("ar")
    d2.command("status")
    d2.text(typed)
    assert d2.effects == (CheckStatus(REFERENCE),)


@pytest.mark.parametrize("typed", ["²²²²²²²²²²", "①②③④⑤⑥⑦⑧⑨"])
def test_status_code_of_digit_like_signs_is_a_bad_code(drive: Drive, typed: str) -> None:
    d = drive("en")
    d.command("status", typed)
    assert not d.effects
    assert d.replies[0].html == d.msg("status_bad_code")


@pytest.mark.parametrize("withdrawn", [True, False])
def test_forget(drive: Drive, lang: str, withdrawn: bool) -> None:
    d = at_question(drive, lang, "contact.times")
    d.command("forget")
    assert d.step_id == "forget"
    assert d.find(d.label("yes"), prefix="a:")
    d.answer("yes")
    # the chat is cleared as by quick exit, then everything stored is deleted
    assert d.effects == (DeleteConversation(), ForgetMe())
    assert d.replies == ()
    seq = d.state.seq
    d.send(Forgotten(withdrawn=withdrawn))
    assert len(d.replies) == 2
    assert d.replies[0].html == d.msg("forgotten_withdrawn" if withdrawn else "forgotten")
    assert d.step_id == "menu"
    assert d.tr("How can I help?") in d.screen.html  # the menu, so the person can go on
    assert d.state.seq > seq  # old buttons are stale
    assert dict(d.answers) == {}
    assert not d.state.editing
    assert d.state.language == lang


def test_forget_no_goes_back_to_the_menu(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.times")
    d.data("g:forget")
    d.answer("no")
    assert d.step_id == "menu"
    assert not d.effects
    assert d.answers


def test_unknown_command_asks_for_buttons(drive: Drive) -> None:
    d = drive("en")
    shown = d.screen
    d.command("xyz")
    assert d.replies[0].html == d.notice("buttons_only", "emergency_line")
    assert d.step_id == "welcome"
    assert_help_row_added(d, shown)
    for name in ("menu", "help"):
        d.command(name)
        assert d.step_id == "menu"
    d.command("language")
    assert d.step_id == "language"


# ---- stored states ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        ConversationState(step="gone.step", language="pl", seq=7, answers={"phone": "+44"}),
        ConversationState(step="contact.phone", language="pl", seq=7, flow_version=0),
        ConversationState(step="contact.phone", language="pl", seq=7, flow_version=99),
        ConversationState(step="", language="de", seq=3),
    ],
    ids=["step-gone", "older-flow", "newer-flow", "unknown-language"],
)
@pytest.mark.parametrize("event", [TextReceived("hello"), ButtonPressed("a:7:yes")], ids=str)
def test_outdated_stored_state_restarts_at_the_menu(
    drive: Drive, stored: ConversationState, event: Event
) -> None:
    d = drive(None, state=stored)
    d.send(event)
    assert d.step_id == "menu"
    assert d.state.flow_version == d.ctx.flow.version
    assert dict(d.answers) == {}
    assert d.state.language == (stored.language if stored.language != "de" else None)
    assert d.replies
    assert d.tr("How can I help?") in d.screen.html


def test_restored_state_round_trip_continues(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.times")
    restored = ConversationState.restore(d.state.routing(), d.state.draft())
    assert restored == d.state
    d2 = drive(None, state=restored)
    d2.screen_replies = d.screen_replies
    d2.answer("evenings")
    assert d2.step_id == "contact.times"
    d2.answer("done")
    assert d2.step_id == "contact.voicemail"
    assert d2.answers["times"] == choices_answer(["evenings"], "")


# ---- a draft lost in the middle of the form ---------------------------------------------------
# The storage layer drops the draft when it expires (or cannot be decrypted) but keeps the
# routing state: the person is still on a later question, or the summary, with no answers.


def draft_lost(d: Driver) -> Driver:
    """The same conversation, resumed from storage after its draft was dropped."""
    lost = Driver(d.ctx, d.state.with_(answers={}))
    lost.screen_replies = d.screen_replies  # the same buttons are still on screen
    return lost


def assert_draft_expired(d: Driver) -> None:
    assert d.replies[0].html == d.msg("draft_expired")
    assert d.step_id == "menu"
    assert d.tr("How can I help?") in d.screen.html
    assert dict(d.answers) == {}
    assert not d.state.editing
    assert not d.effects


def test_draft_expired_message_says_nothing_was_sent(ctx: Context) -> None:
    assert ctx.flow.string("draft_expired") == (
        "To keep you safe, your unfinished answers were deleted {draft_minutes} minutes after "
        "your last answer. Nothing was sent. You can start again at any time."
    )


@pytest.mark.parametrize(
    ("where", "act"),
    [
        ("contact.method", lambda d: d.answer("call")),
        ("contact.phone", lambda d: d.text(PHONE_TYPED)),
        ("contact.times", lambda d: d.answer("evenings")),
        ("contact.codeword", lambda d: d.answer("skip")),
        ("contact.codeword", lambda d: d.text("bluebird")),
        ("contact.message", lambda d: d.text("hello")),
        ("contact.times", lambda d: d.data("a:zz:evenings")),  # stale or forged: still gone
    ],
    ids=["method", "phone", "times", "skip", "codeword", "message", "forged"],
)
def test_answering_after_the_draft_was_lost_starts_again(
    drive: Drive, lang: str, where: str, act: Callable[[Driver], object]
) -> None:
    d = draft_lost(at_question(drive, lang, where))
    act(d)
    assert_draft_expired(d)
    d.data("g:contact.consent")  # and the form starts from its first question
    assert d.step_id == "contact.consent"


@pytest.mark.parametrize("action", ["confirm", "change", "e.2", "cancel"])
def test_summary_after_the_draft_was_lost_sends_nothing(
    drive: Drive, lang: str, action: str
) -> None:
    d = draft_lost(at_summary(drive, lang))
    d.data(f"a:{encode_seq(d.state.seq)}:{action}")  # "e.2" is on the change list
    assert_draft_expired(d)


def test_editing_after_the_draft_was_lost_sends_nothing(drive: Drive) -> None:
    d = at_summary(drive, "en")
    d.answer("change")
    d.press("Safe times")
    assert d.state.editing
    d = draft_lost(d)
    d.answer("weekends")
    assert_draft_expired(d)


def test_first_question_is_answered_normally_without_a_draft(drive: Drive, lang: str) -> None:
    d = draft_lost(at_question(drive, lang, "contact.consent"))
    d.answer("yes")
    assert d.step_id == "contact.method"
    assert dict(d.answers) == {"consent": "yes"}
    assert d.replies[0].html != d.msg("draft_expired")


@pytest.mark.parametrize(
    "event",
    [ButtonPressed("m"), ButtonPressed("l"), CommandReceived("status"), NonTextReceived("photo")],
    ids=repr,
)
def test_navigation_after_the_draft_was_lost_is_not_an_answer(drive: Drive, event: Event) -> None:
    d = draft_lost(at_question(drive, "en", "contact.times"))
    d.send(event)
    assert all(r.html != d.msg("draft_expired") for r in d.replies)


def test_quick_exit_after_the_draft_was_lost_still_deletes(drive: Drive) -> None:
    d = draft_lost(at_question(drive, "en", "contact.times"))
    d.quick_exit()
    assert d.effects == (DeleteConversation(),)
    assert d.step_id == "exit"


@pytest.mark.parametrize("missing", ["method", "phone", "times", "language"])
def test_send_with_a_required_answer_missing_sends_nothing(drive: Drive, missing: str) -> None:
    d = at_summary(drive, "en")
    answers = dict(d.answers)
    del answers[missing]
    incomplete = Driver(d.ctx, d.state.with_(answers=answers))
    incomplete.screen_replies = d.screen_replies
    incomplete.answer("confirm")
    assert_draft_expired(incomplete)


def test_send_with_optional_answers_missing_is_sent(drive: Drive) -> None:
    d = at_summary(drive, "en")
    answers = {k: v for k, v in d.answers.items() if k not in OPTIONAL_FIELDS}
    trimmed = Driver(d.ctx, d.state.with_(answers=answers))
    trimmed.screen_replies = d.screen_replies
    trimmed.answer("confirm")
    assert dict(submitted(trimmed).answers) == answers


@pytest.mark.parametrize(
    "event",
    [
        TextReceived("hello"),
        ButtonPressed("m"),
        ButtonPressed("a:0:confirm"),
        NonTextReceived("photo"),
        Started(),
        CommandReceived("menu"),
        CommandReceived("status", REFERENCE),
        StatusChecked("new"),
        Forgotten(),
    ],
    ids=repr,
)
def test_any_event_while_submitting_means_it_was_not_sent(drive: Drive, event: Event) -> None:
    d = at_summary(drive, "en")
    answers = dict(d.answers)
    d.answer("confirm")
    assert d.step_id == "contact.submitting"
    d.send(event)
    assert d.replies[0].html == d.msg("submit_interrupted")
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == answers
    assert not d.effects
    assert d.ltr(PHONE_SHOWN) in d.screen.html


# ---- property: any sequence of events ---------------------------------------------------------

AWAITING = (SubmitRequest, CheckStatus, ForgetMe)
texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),
    st.sampled_from(
        [
            "x" * 10_000,
            "07911 123456",
            "+48 512 345 678",
            "safe@example.org",
            "1234 5678 9012 3456",
            "<b>x</b> & <script>",
            "مرحبا \u202e abc \u2066",
            "👩‍👧‍👦" * 300,
            "",
            " ",
        ]
    ),
)
forged = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["x", "l", "m", "L:pl", "L:ar", "L:en", "L:xx", "g:menu", "a:0:yes", ""]),
    st.builds(lambda s: "g:" + s, st.text(max_size=30)),
    st.builds(lambda s: "a:0:" + s, st.text(max_size=30)),
)


FITTING = {"phone": ["07911 123456", "+48 512 345 678", "12"], "email": [EMAIL, "nope"]}
FITTING["text"] = ["bluebird", "Please call after 6pm.", "<b>x</b> & <script>"]


def pick_event(data: st.DataObject, d: Driver, seen: list[str]) -> Event:
    """One event, biased towards moving the form on so that the summary and the submission
    are reached; `seen` holds the callback data of every button shown so far."""
    kind = data.draw(st.integers(0, 19), label="kind")
    buttons = d.buttons()
    current = d.ctx.flow.step(d.step_id)
    if kind <= 9:
        if current.kind == "question" and current.input in FITTING:
            return TextReceived(data.draw(st.sampled_from(FITTING[current.input]), label="fit"))
        actions = [b for b in buttons if b.data.startswith(f"a:{encode_seq(d.state.seq)}:")]
        if actions or buttons:
            pressed = data.draw(st.sampled_from(actions or buttons), label="action")
            return ButtonPressed(pressed.data)
    if kind <= 11 and buttons:
        return ButtonPressed(data.draw(st.sampled_from(buttons), label="button").data)
    if kind == 12:
        return ButtonPressed(data.draw(forged, label="forged"))
    if kind == 13 and seen:
        return ButtonPressed(data.draw(st.sampled_from(seen), label="old"))
    if kind <= 15:
        return TextReceived(data.draw(texts, label="text"))
    if kind == 16:
        name = st.sampled_from(["menu", "help", "language", "status", "forget", "exit", "xyz"])
        argument = st.one_of(st.just(""), st.just(REFERENCE), st.text(max_size=40))
        return CommandReceived(data.draw(name, label="cmd"), data.draw(argument, label="arg"))
    if kind == 17:
        kinds = st.sampled_from(["photo", "sticker", "voice", "location", "edited", "?"])
        return NonTextReceived(data.draw(kinds, label="non-text"))
    if kind == 18:
        return QuickExitRequested()
    return Started(
        payload=data.draw(st.sampled_from(["", "pl", "ar", "xx"]), label="payload"),
        language_hint=data.draw(st.sampled_from([None, "en", "pl-PL", "ar", "zz"]), label="hint"),
    )


def result_for(data: st.DataObject, effect: object) -> Event:
    if isinstance(effect, SubmitRequest):
        return data.draw(
            st.sampled_from([RequestStored(REFERENCE), RequestFailed()]), label="stored"
        )
    if isinstance(effect, CheckStatus):
        status = st.sampled_from([None, "new", "picked_up", "closed", "withdrawn"])
        return StatusChecked(data.draw(status, label="status"))
    return Forgotten(withdrawn=data.draw(st.booleans(), label="withdrawn"))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_sequence_of_events_is_handled(ctx: Context, data: st.DataObject) -> None:
    d = Driver(ctx)  # Driver.send checks HTML, lengths, callback data and the step
    openings = ["fresh", "started", "summary", "submitting", "draft-lost"]
    opening = data.draw(st.sampled_from(openings))
    if opening != "fresh":
        d.start(data.draw(st.sampled_from(LANGUAGES), label="language"))
    if opening in {"summary", "submitting", "draft-lost"}:
        method = data.draw(st.sampled_from(METHODS), label="method")
        skipped = data.draw(st.sets(st.sampled_from(OPTIONAL_FIELDS)), label="skipped")
        d.fill_form(form_plan(method, **dict.fromkeys(skipped)))
    if opening == "submitting":  # as a crash between the two commits leaves it
        d.answer("confirm")
    if opening == "draft-lost":  # the draft expired on the summary
        d.state = d.state.with_(answers={})
    done_title = "Your request was sent"
    seen: list[str] = []
    for _ in range(data.draw(st.integers(1, 40), label="length")):
        previous_step = d.step_id
        outcome = d.send(pick_event(data, d, seen))
        seen.extend(b.data for r in outcome.replies for row in r.buttons for b in row)
        awaiting = [e for e in outcome.effects if isinstance(e, AWAITING)]
        assert len(awaiting) <= 1
        if not awaiting:
            assert outcome.replies, (previous_step, outcome)
        for submit in (e for e in outcome.effects if isinstance(e, SubmitRequest)):
            assert previous_step == "contact.summary"
            # never without consent, a way to be contacted and where to be contacted
            assert submit.answers.get("consent") == "yes", submit.answers
            method = submit.answers.get("method")
            assert method in METHODS, submit.answers
            assert ("email" if method == "email" else "phone") in submit.answers, submit.answers
            assert outcome.state.step == "contact.submitting"
            assert all(done_title not in r.html for r in outcome.replies)
        if outcome.state.step == "contact.done":  # only RequestStored leads there
            assert previous_step == "contact.done", (previous_step, outcome)
        if awaiting:
            outcome = d.send(result_for(data, awaiting[0]))
            assert outcome.replies
            assert not any(isinstance(e, AWAITING) for e in outcome.effects)
        assert d.state.step != "contact.submitting"
