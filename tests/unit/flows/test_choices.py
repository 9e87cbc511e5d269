"""A `choices` question (issue 12: safe times): options toggle, typed words are her own answer,
Done moves on, and the summary says it all in words, joined as her language joins a list."""

from __future__ import annotations

import html

from babel.lists import format_list

from flows.callbacks import encode_seq
from flows.form import choices_answer, picked
from flows.render import NOT_PICKED, PICKED
from tests.unit.flows.conftest import Drive, Driver, answer_until_summary, at_question, form_plan

TIMES = ["mornings", "afternoons", "evenings", "weekends", "any"]
LABELS = {
    "mornings": "Weekday mornings",
    "afternoons": "Weekday afternoons",
    "evenings": "Evenings",
    "weekends": "Weekends",
    "any": "Any time",
}


def marks(d: Driver) -> dict[str, str]:
    """value -> the mark its button shows now."""
    seq = encode_seq(d.state.seq)
    out = {}
    for value in TIMES:
        label = d.find(data=f"a:{seq}:{value}").label
        word = html.unescape(d.tr(LABELS[value]))
        assert label in (PICKED + word, NOT_PICKED + word), label
        out[value] = label[: -len(word)]
    return out


def test_nothing_is_picked_at_first_and_done_is_not_offered(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    assert marks(d) == dict.fromkeys(TIMES, NOT_PICKED)
    assert not d.has(d.label("done"))
    assert "times" not in d.answers


def test_an_option_toggles_on_and_off(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    d.answer("evenings")
    assert d.step_id == "contact.times"
    assert marks(d) == {**dict.fromkeys(TIMES, NOT_PICKED), "evenings": PICKED}
    assert d.answers["times"] == choices_answer(["evenings"], "")
    assert d.find(d.label("done")).data == f"a:{encode_seq(d.state.seq)}:done"
    d.answer("evenings")
    assert marks(d) == dict.fromkeys(TIMES, NOT_PICKED)
    assert "times" not in d.answers
    assert not d.has(d.label("done"))


def test_picks_keep_the_options_order(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    for value in ("weekends", "mornings", "evenings"):
        d.answer(value)
    assert picked(d.answers["times"]) == (["mornings", "evenings", "weekends"], "")
    d.answer("done")
    assert d.step_id == "contact.voicemail"
    assert d.answers["times"] == choices_answer(["mornings", "evenings", "weekends"], "")


def test_an_old_toggle_is_stale(drive: Drive) -> None:
    d = at_question(drive, "en", "contact.times")
    old = d.find(data=f"a:{encode_seq(d.state.seq)}:evenings")
    d.answer("mornings")
    d.data(old.data)
    assert d.replies[0].html == d.msg("stale_button")
    assert picked(d.answers["times"]) == (["mornings"], "")


def test_typed_words_are_her_own_answer(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    d.answer("mornings")
    d.text("  Tuesdays   after 10 ")
    assert d.step_id == "contact.times"
    assert picked(d.answers["times"]) == (["mornings"], "Tuesdays after 10")
    assert d.msg("own_answer", answer="Tuesdays after 10") in d.screen.html
    assert marks(d)["mornings"] == PICKED  # the picks stay
    d.text("<b>Fridays</b>")  # typed again: replaces her words, escaped on screen
    assert picked(d.answers["times"]) == (["mornings"], "<b>Fridays</b>")
    assert d.msg("own_answer", answer="<b>Fridays</b>") in d.screen.html
    assert "<b>Fridays" not in d.screen.html
    d.answer("done")
    assert d.step_id == "contact.voicemail"


def test_own_words_alone_are_enough(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    d.text("Tuesdays after 10")
    assert d.has(d.label("done"))
    d.answer("done")
    assert d.step_id == "contact.voicemail"
    assert d.answers["times"] == choices_answer([], "Tuesdays after 10")


def test_own_words_too_long_or_blank_are_refused(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    d.answer("evenings")
    before = d.state
    d.text("x" * 101)
    assert d.replies[0].html == d.msg("too_long", limit="100")
    assert d.state == before
    d.text(" \x00 ")
    assert d.replies[0].html == d.msg("invalid_text")
    assert d.state == before


def test_done_with_nothing_is_refused(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    d.data(f"a:{encode_seq(d.state.seq)}:done")  # forged: the button is not shown yet
    assert d.replies[0].html == d.msg("choose_one")
    assert d.step_id == "contact.times"
    assert "times" not in d.answers
    d.answer("any")
    assert d.has(d.label("done"))
    d.answer("any")  # picked, then unpicked: nothing again, and no Done button
    assert not d.has(d.label("done"))
    d.data(f"a:{encode_seq(d.state.seq)}:done")
    assert d.replies[0].html == d.msg("choose_one")
    assert d.step_id == "contact.times"


def test_the_summary_says_every_pick_and_her_words_in_her_language(drive: Drive, lang: str) -> None:
    d = at_question(drive, lang, "contact.times")
    for value in ("evenings", "mornings", "weekends"):
        d.answer(value)
    d.text("not Fridays")
    d.answer("done")
    answer_until_summary(d, form_plan("call", urgent="no"))
    assert d.step_id == "contact.summary"
    words = [d.tr(LABELS[v]) for v in ("mornings", "evenings", "weekends")] + ["“not Fridays”"]
    joined = format_list(words, locale=lang)
    assert f"<b>{d.tr('Safe times')}</b>: {joined}" in d.screen.html
    assert "mornings" not in d.screen.html.replace("Weekday mornings", "")
    assert '"picked"' not in d.screen.html and "{" not in d.screen.html
