"""The emergency route (issue 12): anything unexpected gets ONE calm notice with the emergency
line and the screen again with "I need help now" on top, on every screen; answering that she
is in danger shows the help screen at once, and the form goes on from there."""

from __future__ import annotations

import pytest

from flows.definition import load_flow
from flows.events import CommandReceived, Event, NonTextReceived
from tests.unit.flows.conftest import (
    LANGUAGES,
    Drive,
    assert_help_row_added,
    at_question,
    at_summary,
    help_row,
    reach_step,
    resume_row,
)

FLOW = load_flow()
HELP = FLOW.help_step
# Every step a person can be on (`submitting` only between two events: any event there means
# the request was not sent, tests/unit/flows/test_engine.py).
STEPS = [sid for sid, s in FLOW.steps.items() if s.kind != "submitting"]
# Steps where typed text is not what the screen asks for.
TYPED = {"text", "phone", "email"}
BUTTONS_EXPECTED = [
    sid
    for sid in STEPS
    if FLOW.step(sid).kind not in ("status", "exit")  # a code is typed; typing restarts
    and FLOW.step(sid).input not in TYPED
    and not FLOW.step(sid).own_text
]
UNEXPECTED: dict[str, tuple[Event, tuple[str, ...]]] = {
    "photo": (NonTextReceived("photo"), ("not_text", "emergency_line")),
    "sticker": (NonTextReceived("sticker"), ("not_text", "emergency_line")),
    "edited": (NonTextReceived("edited"), ("edited", "emergency_line")),
    "unknown-command": (CommandReceived("xyz"), ("buttons_only", "emergency_line")),
}


def test_the_help_step_is_the_urgent_screen() -> None:
    assert HELP == "help.now"
    assert FLOW.step(HELP).kind == "screen" and FLOW.step(HELP).urgent


@pytest.mark.parametrize("sid", BUTTONS_EXPECTED)
def test_text_where_buttons_are_expected_offers_the_emergency_route(
    drive: Drive, lang: str, sid: str
) -> None:
    d = reach_step(drive, lang, sid)
    before, shown = d.state, d.screen
    d.text("please help me")
    assert len(d.replies) == 2  # ONE notice, then the screen
    assert d.replies[0].html == d.notice("buttons_only", "emergency_line")
    assert d.replies[0].buttons == ()
    assert d.state == before
    assert not d.effects
    if sid == HELP:
        assert d.screen == shown  # already there: no button to itself
    else:
        assert_help_row_added(d, shown)
        d.press(data=help_row(d)[0].data)
        assert d.step_id == HELP
        assert d.tr(FLOW.step(HELP).title) in d.screen.html


@pytest.mark.parametrize("what", UNEXPECTED)
@pytest.mark.parametrize("sid", STEPS)
def test_non_text_and_unknown_commands_offer_the_emergency_route_everywhere(
    drive: Drive, lang: str, sid: str, what: str
) -> None:
    event, keys = UNEXPECTED[what]
    d = reach_step(drive, lang, sid)
    before, shown = d.state, d.screen
    d.send(event)
    assert len(d.replies) == 2
    assert d.replies[0].html == d.notice(*keys)
    assert d.state == before
    if sid == HELP:
        assert d.screen == shown
    else:
        assert_help_row_added(d, shown)


def test_the_emergency_line_gives_999_and_55(drive: Drive, lang: str) -> None:
    d = drive(lang)
    line = d.msg("emergency_line")
    english = FLOW.string("emergency_line")
    assert "999" in english and "55" in english and "mobile" in english
    assert "999" in line and "55" in line


def test_help_now_is_offered_once_and_not_kept(drive: Drive, lang: str) -> None:
    d = drive(lang)
    d.text("hello")
    assert d.screen.buttons[0] == help_row(d)
    d.data("g:privacy")  # the next screen is an ordinary one again
    assert not d.has(data=f"g:{HELP}")
    d.press(data="m")  # the menu has its own "I need help now", once
    assert [b.data for b in d.buttons()].count(f"g:{HELP}") == 1


# ---- "Are you in danger now, or soon?" -> Yes ---------------------------------------------


def test_danger_yes_shows_help_now_at_once(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "risk.urgent")
    answers = dict(d.answers)
    d.answer("yes")
    assert d.step_id == HELP
    assert dict(d.answers) == {**answers, "urgent": "yes"}  # recorded
    assert d.tr(FLOW.step(HELP).title) in d.screen.html
    assert d.ltr("0808 2000 247") in d.screen.html
    assert d.screen.buttons[0] == resume_row(d)
    assert d.state.resume == "risk.threats"
    d.press(d.label("resume"))
    assert d.step_id == "risk.threats"
    assert dict(d.answers) == {**answers, "urgent": "yes"}


def test_danger_yes_then_talk_to_a_support_worker_also_goes_on(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "risk.urgent")
    d.answer("yes")
    d.press(d.tr("Talk to a support worker"))
    assert d.step_id == "risk.threats"
    assert d.answers["urgent"] == "yes"


def test_danger_no_goes_straight_on(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "risk.urgent")
    d.answer("no")
    assert d.step_id == "risk.threats"
    assert d.answers["urgent"] == "no"


def test_danger_yes_while_changing_the_answer_comes_back_to_the_summary(
    drive: Drive, lang: str
) -> None:
    d = at_summary(drive, lang, urgent="no")
    answers = dict(d.answers)
    d.answer("change")
    d.press(d.tr("In danger now or soon"))
    d.answer("yes")
    assert d.step_id == HELP
    d.press(d.label("resume"))
    assert d.step_id == "contact.summary"
    assert dict(d.answers) == {**answers, "urgent": "yes"}
    d.answer("confirm")
    assert d.effects[0].urgent  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_walker_follows_the_danger_route(drive: Drive, lang: str) -> None:
    d = drive(lang)
    moves = list(d.walk({"consent": "yes", "method": "email", "urgent": "yes"}))
    shown = [m.step for m in moves if m.step == HELP]
    assert shown == [HELP]


def test_text_typed_after_quick_exit_starts_again_with_the_emergency_route(
    drive: Drive, lang: str
) -> None:
    d = reach_step(drive, lang, FLOW.entry)
    d.quick_exit()
    assert FLOW.step(d.step_id).kind == "exit"
    d.text("help me please")
    assert d.step_id == FLOW.entry
    assert d.replies[0].html == d.notice("buttons_only", "emergency_line")
    d.press(data=help_row(d)[0].data)
    assert d.step_id == HELP
