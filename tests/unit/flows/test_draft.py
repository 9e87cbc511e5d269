"""The draft survives leaving the form (issue 12): "Continue my request" goes back to the very
question (or the summary) with every answer kept; only an explicit, confirmed cancel, consent
"No, not now", /forget or quick exit deletes it."""

from __future__ import annotations

import pytest

from flows.callbacks import edit_value, encode_seq
from flows.definition import load_flow
from flows.effects import DeleteConversation, ForgetMe
from flows.events import Forgotten
from tests.unit.flows.conftest import (
    LANGUAGES,
    Drive,
    Driver,
    at_question,
    at_summary,
    help_row,
    resume_row,
)

FLOW = load_flow()



def leave_by(d: Driver, how: str) -> None:
    """Leave the form one of the ways that must keep the draft."""
    if how == "menu":
        d.press(data="m")
        assert d.step_id == "menu"
    elif how == "menu-command":
        d.command("menu")
        assert d.step_id == "menu"
    elif how == "screen":
        d.data("g:privacy")
        assert d.step_id == "privacy"
    elif how == "language":
        d.press(data="l")
        d.choose_language(d.language)  # the same language again, or...
        assert d.step_id == "menu"
    elif how == "other-language":
        other = next(code for code in LANGUAGES if code != d.language)
        d.press(data="l")
        d.choose_language(other)
        assert (d.step_id, d.language) == ("menu", other)
    elif how == "start":
        d.start()
        assert d.step_id == "welcome"
    else:
        raise AssertionError(how)


LEAVING = ["menu", "menu-command", "screen", "language", "other-language", "start"]
# Where she was: a question with answers before it, the choices question (mid-pick) and the
# summary with the whole form answered.
WHERE = ["contact.codeword", "contact.times", "contact.summary"]


def reach_form(drive: Drive, lang: str, where: str) -> Driver:
    if where == "contact.summary":
        return at_summary(drive, lang)
    d = at_question(drive, lang, where)
    if where == "contact.times":
        d.answer("evenings")  # picked, not yet Done: kept all the same
        assert d.step_id == "contact.times"
    return d


@pytest.mark.parametrize("how", LEAVING)
@pytest.mark.parametrize("where", WHERE)
def test_leaving_keeps_the_draft_and_continue_goes_back(
    drive: Drive, lang: str, where: str, how: str
) -> None:
    d = reach_form(drive, lang, where)
    answers, question = dict(d.answers), d.screen
    leave_by(d, how)
    assert dict(d.answers) == answers
    assert d.state.resume == where
    # every information screen she passes offers the way back, first
    assert d.screen.buttons[0] == resume_row(d)
    d.press(d.label("resume"))
    assert d.step_id == where
    assert dict(d.answers) == answers
    if how != "other-language":
        assert d.screen.html == question.html  # the same question, as she left it
    assert not d.effects


@pytest.mark.parametrize("where", WHERE)
def test_talk_to_a_support_worker_resumes_rather_than_starting_again(
    drive: Drive, lang: str, where: str
) -> None:
    d = reach_form(drive, lang, where)
    answers = dict(d.answers)
    d.press(data="m")
    d.press(d.tr("Talk to a support worker"))
    assert d.step_id == where
    assert dict(d.answers) == answers


def test_every_information_screen_offers_continue_while_a_draft_is_kept(
    drive: Drive, lang: str
) -> None:
    d = at_question(drive, lang, "contact.codeword")
    for sid, step in d.ctx.flow.steps.items():
        if step.kind != "screen":
            continue
        if sid == d.ctx.flow.entry:
            d.start()
        else:
            d.data("m" if sid == d.ctx.flow.menu else f"g:{sid}")
        assert d.step_id == sid
        assert d.screen.buttons[0] == resume_row(d), sid
        assert d.find(d.label("resume")).data == "r"
    for other in ("language", "status", "forget"):  # not information screens
        d.command(other)
        assert not d.has(d.label("resume")), other


def test_no_continue_without_a_draft(drive: Drive, lang: str) -> None:
    d = drive(lang)
    for sid, step in d.ctx.flow.steps.items():
        if step.kind == "screen" and sid in d.ctx.flow.nav_targets:
            d.data(f"g:{sid}")
            assert not d.has(data="r"), sid
    d.press(data="m")
    assert not d.has(data="r")


def test_the_first_answer_already_makes_a_draft(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.data("g:contact.consent")
    d.answer("yes")
    assert d.step_id == "contact.method"
    d.press(data="m")
    d.press(d.label("resume"))
    assert d.step_id == "contact.method"
    assert dict(d.answers) == {"consent": "yes"}


def test_continue_after_the_draft_is_gone_says_so(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.codeword")
    d.press(data="m")
    resume = d.find(d.label("resume"))
    gone = Driver(d.ctx, d.state.with_(answers={}))  # expired in storage meanwhile
    gone.screen_replies = d.screen_replies
    gone.press(data=resume.data)
    assert gone.replies[0].html == gone.msg("draft_gone")
    assert gone.step_id == "menu"
    assert gone.tr("How can I help?") in gone.screen.html
    assert dict(gone.answers) == {} and gone.state.resume is None
    assert not gone.has(data="r")


@pytest.mark.parametrize("where", WHERE)
def test_continue_from_help_now(drive: Drive, lang: str, where: str) -> None:
    d = reach_form(drive, lang, where)
    answers = dict(d.answers)
    d.press(data="m")
    d.text("help")  # typed where a button is expected
    # the menu has its own "I need help now": offered once, after "Continue my request"
    assert d.screen.buttons[0] == resume_row(d)
    helps = [b for row in d.screen.buttons for b in row if b.data == help_row(d)[0].data]
    assert len(helps) == 1
    d.press(data=help_row(d)[0].data)
    assert d.step_id == "help.now"
    d.press(d.label("resume"))
    assert d.step_id == where
    assert dict(d.answers) == answers


# ---- cancel, confirmed --------------------------------------------------------------------


def test_cancel_asks_first(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    answers, seq = dict(d.answers), d.state.seq
    d.press(d.label("cancel"))
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == answers
    assert not d.effects
    assert d.screen.html == d.msg("delete_confirm")
    assert d.state.seq > seq  # a new screen: the summary's buttons are stale now
    yes, no = d.find(d.label("delete_yes")), d.find(d.label("delete_no"))
    assert yes.data == f"a:{encode_seq(d.state.seq)}:delete"
    assert no.data == f"a:{encode_seq(d.state.seq)}:keep"
    assert d.has(data="x") and d.has(data="m") and d.has(data="l")


def test_no_keep_them_goes_back_to_the_summary_with_every_answer(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    answers, summary = dict(d.answers), d.screen.html
    d.press(d.label("cancel"))
    d.press(d.label("delete_no"))
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == answers
    assert d.screen.html == summary
    assert not d.effects
    d.press(d.label("confirm"))  # and it can still be sent
    assert d.step_id == "contact.submitting"


def test_yes_delete_them_deletes_the_draft(drive: Drive, lang: str) -> None:
    d = at_summary(drive, lang)
    d.press(d.label("cancel"))
    d.press(d.label("delete_yes"))
    assert d.replies[0].html == d.msg("draft_deleted")
    assert d.step_id == "menu"
    assert dict(d.answers) == {}
    assert d.state.resume is None and not d.state.editing
    assert not d.effects  # nothing was sent, nothing else to delete
    assert not d.has(data="r")
    d.press(d.tr("Talk to a support worker"))  # a fresh start
    assert d.step_id == "contact.consent"
    assert dict(d.answers) == {}


def test_the_summary_buttons_are_stale_on_the_confirm_screen(drive: Drive) -> None:
    d = at_summary(drive, "en")
    send = d.find(d.label("confirm"))
    d.press(d.label("cancel"))
    d.data(send.data)
    assert d.replies[0].html == d.msg("stale_button")
    assert not d.effects and d.answers


# ---- what does delete the draft -----------------------------------------------------------


def test_consent_is_not_offered_as_an_answer_to_change(drive: Drive, lang: str) -> None:
    # Saying "no" to consent from the summary would drop every answer without asking: the
    # change list leaves it out, and a forged press for it changes nothing.
    d = at_summary(drive, lang)
    d.answer("change")
    assert not d.has(label=d.tr("Contact me"))
    consent = FLOW.form.index("contact.consent")
    kept = dict(d.answers)
    d.data(f"a:{encode_seq(d.state.seq)}:{edit_value(consent)}")
    assert d.step_id == "contact.summary" and dict(d.answers) == kept


def test_forget_deletes_the_draft(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.codeword")
    d.command("forget")
    d.answer("yes")
    assert d.effects == (DeleteConversation(), ForgetMe())
    d.send(Forgotten(withdrawn=False))
    assert dict(d.answers) == {} and d.state.resume is None
    assert not d.has(data="r")


def test_quick_exit_deletes_the_draft(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.codeword")
    d.quick_exit()
    assert dict(d.answers) == {} and d.state.resume is None
    d.start()
    assert not d.has(data="r")
    d.data("r")  # an old "Continue" press
    assert d.replies[0].html == d.msg("draft_gone")
    assert d.step_id == "menu"


def test_the_draft_and_where_she_was_are_kept_together(drive: Drive) -> None:
    """`resume` is part of the encrypted draft, never of the routing data in the clear."""
    d = at_question(drive, "en", "contact.codeword")
    d.press(data="m")
    assert d.state.draft()["resume"] == "contact.codeword"
    assert "resume" not in d.state.routing()
    assert "contact.codeword" not in d.state.routing().values()
