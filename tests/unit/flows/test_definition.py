"""Loading flows: the bundled one loads; a broken one is refused with every problem named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.definition import (
    CALLBACK_DATA_MAX_BYTES,
    REQUIRED_PLURALS,
    REQUIRED_STRINGS,
    build_flow,
    load_flow,
)
from flows.errors import FlowError

FlowToml = Callable[[], dict[str, Any]]


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowError) as raised:
        build_flow(data)
    problems = raised.value.problems
    assert problems
    for problem in problems:  # the message lists each problem
        assert problem in str(raised.value)
    return problems


def assert_named(problems: list[str], *needles: str) -> None:
    """Some single problem mentions every needle."""
    assert any(all(n in p for n in needles) for p in problems), (needles, problems)


# ---- the bundled flow -------------------------------------------------------------------------


def test_bundled_flow_loads() -> None:
    flow = load_flow()
    assert flow.id == "victim"
    assert flow.entry == "welcome" and flow.menu == "menu"
    assert flow.entry in flow.steps and flow.menu in flow.steps
    assert REQUIRED_STRINGS <= set(flow.strings)
    assert "retention_days" in flow.plurals
    assert flow.form[0] == "contact.consent"
    assert flow.form[-1] == "contact.message"
    assert all(flow.step(s).kind == "question" for s in flow.form)
    for kind in ("summary", "submitting", "done", "language", "status", "forget", "exit"):
        assert sum(s.kind == kind for s in flow.steps.values()) == 1


def test_bundled_flow_builds_from_its_parsed_toml(flow_toml: FlowToml) -> None:
    assert build_flow(flow_toml()) == load_flow()


def test_source_strings_cover_what_the_engine_shows() -> None:
    flow = load_flow()
    sources = flow.source_strings()
    assert len(sources) == len(set(sources))
    assert set(flow.strings.values()) <= set(sources)
    for s in flow.steps.values():
        assert {x for x in (s.title, *s.text, s.summary_label) if x} <= set(sources)
        assert {b.label for b in s.buttons} <= set(sources)
        assert {o.label for o in s.options} <= set(sources)


def test_bundled_callback_data_fits(flow_toml: FlowToml) -> None:
    flow = load_flow()
    longest_seq = "zzzzzz"
    for s in flow.steps.values():
        for b in s.buttons:
            assert len(f"g:{b.goto}".encode()) <= CALLBACK_DATA_MAX_BYTES
        for o in s.options:
            assert len(f"a:{longest_seq}:{o.value}".encode()) <= CALLBACK_DATA_MAX_BYTES


# ---- each problem on its own ------------------------------------------------------------------


def test_unreachable_step(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["orphan"] = {"kind": "screen", "title": "Orphan", "text": ["Nobody comes."]}
    assert problems_of(data) == ["step 'orphan' is unreachable"]


def test_button_to_unknown_step(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["menu"]["buttons"].append({"label": "Lost", "goto": "nowhere"})
    assert_named(problems_of(data), "'menu'", "unknown step", "'nowhere'")


def test_option_next_to_unknown_step(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["contact.consent"]["options"][1]["next"] = "nowhere.option"
    assert_named(problems_of(data), "'contact.consent'", "unknown step", "'nowhere.option'")


def test_next_to_unknown_step(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["contact.times"]["next"] = "nowhere.next"
    assert_named(problems_of(data), "'contact.times'", "unknown step", "'nowhere.next'")


@pytest.mark.parametrize("key", ["stale_button", "quick_exit", "status_waiting", "too_long"])
def test_missing_required_string(flow_toml: FlowToml, key: str) -> None:
    data = flow_toml()
    del data["strings"][key]
    assert problems_of(data) == [f"[strings] is missing {key!r}"]


def test_missing_plural(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["plurals"]["retention_days"] = ["only one form"]
    problems = problems_of(data)
    assert_named(problems, "retention_days", "[singular, plural]")
    assert_named(problems, "[plurals] is missing", "retention_days")


def test_unknown_step_kind(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["carousel"] = {"kind": "carousel", "title": "Spin"}
    data["steps"]["menu"]["buttons"].append({"label": "Spin", "goto": "carousel"})
    problems = problems_of(data)
    assert_named(problems, "'carousel'", "unknown kind")


def test_question_without_field_or_summary_label(flow_toml: FlowToml) -> None:
    data = flow_toml()
    del data["steps"]["contact.times"]["field"]
    del data["steps"]["contact.times"]["summary_label"]
    problems = problems_of(data)
    assert_named(problems, "'contact.times'", "'field'")
    assert_named(problems, "'contact.times'", "'summary_label'")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda q: q.update(input="slider"),
        lambda q: q.pop("options"),
        lambda q: q.update(options_from="colours", options=[]),
        lambda q: q.pop("next"),
    ],
    ids=["unknown-input", "choice-without-options", "unknown-options-from", "no-next"],
)
def test_malformed_question(flow_toml: FlowToml, mutate: Callable[[dict], object]) -> None:
    data = flow_toml()
    mutate(data["steps"]["contact.times"])
    assert_named(problems_of(data), "'contact.times'")


def test_option_value_too_long_for_callback_data(flow_toml: FlowToml) -> None:
    data = flow_toml()
    room = CALLBACK_DATA_MAX_BYTES - len("a:zzzzzz:")
    data["steps"]["contact.times"]["options"][0]["value"] = "m" * (room + 1)
    assert_named(problems_of(data), "'contact.times'", "too long for callback data")


def test_option_value_that_just_fits_loads(flow_toml: FlowToml) -> None:
    data = flow_toml()
    room = CALLBACK_DATA_MAX_BYTES - len("a:zzzzzz:")
    data["steps"]["contact.times"]["options"][0]["value"] = "m" * room
    flow = build_flow(data)
    assert flow.step("contact.times").options[0].value == "m" * room


def test_option_value_counted_in_bytes(flow_toml: FlowToml) -> None:
    data = flow_toml()
    room = CALLBACK_DATA_MAX_BYTES - len("a:zzzzzz:")
    data["steps"]["contact.times"]["options"][0]["value"] = "é" * (room // 2 + 1)
    assert_named(problems_of(data), "too long for callback data")


def test_step_id_too_long(flow_toml: FlowToml) -> None:
    data = flow_toml()
    long_id = "s" * 70
    data["steps"][long_id] = {"kind": "screen", "title": "Long"}
    data["steps"]["menu"]["buttons"].append({"label": "Long", "goto": long_id})
    assert_named(problems_of(data), long_id, "callback data")


def test_duplicate_field(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["contact.email"]["field"] = "phone"
    assert_named(problems_of(data), "'contact.email'", "'phone'", "'contact.phone'")


def test_when_names_a_field_no_question_sets(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["contact.phone"]["when"] = {"field": "mood", "in": ["x"]}
    assert_named(problems_of(data), "'contact.phone'", "'mood'")


def small_flow_toml(b_next: str) -> str:
    """A whole flow file: "Go on?" leads to questions a and b, asked only after a "yes"."""
    strings = "\n".join(f'{key} = "{key}"' for key in sorted(REQUIRED_STRINGS))
    plurals = "\n".join(f'{key} = ["{{n}} day", "{{n}} days"]' for key in sorted(REQUIRED_PLURALS))
    when = 'when = { field = "go_on", in = ["yes"] }'
    special = "\n".join(
        f'[steps.{kind}]\nkind = "{kind}"\ntitle = "{kind}"'
        for kind in ("summary", "submitting", "done", "language", "status", "forget", "exit")
    )
    return f"""
[flow]
id = "loop"
entry = "menu"
menu = "menu"

[steps.menu]
kind = "screen"
title = "Menu"
buttons = [{{ label = "Start", goto = "start" }}, {{ label = "Help now", goto = "help" }}]

[steps.help]
kind = "screen"
urgent = true
title = "Help now"

[steps.start]
kind = "question"
field = "go_on"
input = "choice"
summary_label = "Go on?"
options = [{{ value = "yes", label = "Yes" }}, {{ value = "no", label = "No" }}]
next = "a"

[steps.a]
kind = "question"
field = "a"
input = "text"
summary_label = "A"
{when}
next = "b"

[steps.b]
kind = "question"
field = "b"
input = "choice"
summary_label = "B"
options = [{{ value = "done", label = "Done", next = "summary" }}]
{when}
next = "{b_next}"

{special}

[strings]
{strings}

[plurals]
{plurals}
"""


def test_a_when_chain_that_can_loop_is_refused(tmp_path: Path) -> None:
    """Answering "no" would skip a, then b, then a again... forever: refused at load."""
    path = tmp_path / "loop.toml"
    path.write_text(small_flow_toml(b_next="a"), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flow(path)
    assert raised.value.problems == [
        "step 'a': questions whose 'when' does not hold could be skipped round"
        " 'a' -> 'b' -> 'a' forever"
    ]


def test_the_same_flow_without_the_loop_loads(tmp_path: Path) -> None:
    path = tmp_path / "no-loop.toml"
    path.write_text(small_flow_toml(b_next="summary"), encoding="utf-8")
    assert load_flow(path).form == ("start", "a", "b")


def test_a_skip_loop_in_the_bundled_flow_is_refused(flow_toml: FlowToml) -> None:
    data = flow_toml()
    someone_else = data["steps"]["contact.someone_else"]  # asked only when method = call
    someone_else["next"] = "contact.voicemail"  # asked only for call, sms or whatsapp
    for option in someone_else["options"]:
        option["next"] = "contact.codeword"  # an answer still leads on: only the loop is wrong
    assert problems_of(data) == [
        "step 'contact.voicemail': questions whose 'when' does not hold could be skipped"
        " round 'contact.voicemail' -> 'contact.someone_else' -> 'contact.voicemail' forever"
    ]


def test_unknown_block_and_deployment_condition(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["privacy.request"]["blocks"].append("weather")
    data["steps"]["contact.organisation"]["when"] = {"deployment": "moon_phase"}
    problems = problems_of(data)
    assert_named(problems, "'privacy.request'", "'weather'")
    assert_named(problems, "'contact.organisation'", "'moon_phase'")


@pytest.mark.parametrize("kind", ["summary", "submitting", "done", "language", "exit"])
def test_special_steps_must_exist_once(flow_toml: FlowToml, kind: str) -> None:
    data = flow_toml()
    victim = next(sid for sid, s in data["steps"].items() if s["kind"] == kind)
    del data["steps"][victim]
    assert_named(problems_of(data), f"exactly one {kind!r}")


def test_second_summary_step(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["steps"]["summary2"] = {"kind": "summary", "title": "Again"}
    assert_named(problems_of(data), "exactly one 'summary'", "found 2")


def test_entry_and_menu_must_exist(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["flow"]["entry"] = "nope"
    data["flow"]["menu"] = "neither"
    problems = problems_of(data)
    assert_named(problems, "entry", "'nope'")
    assert_named(problems, "menu", "'neither'")


def test_titles_required_on_special_screens(flow_toml: FlowToml) -> None:
    data = flow_toml()
    del data["steps"]["forget"]["title"]
    assert_named(problems_of(data), "'forget'", "title")


def test_bad_commands(flow_toml: FlowToml) -> None:
    data = flow_toml()
    data["commands"]["Bad-Name"] = "Something"
    data["commands"]["empty"] = ""
    problems = problems_of(data)
    assert_named(problems, "'Bad-Name'")
    assert_named(problems, "'empty'", "description")


def test_missing_steps() -> None:
    with pytest.raises(FlowError, match="steps"):
        build_flow({"flow": {"entry": "a"}})


# ---- every problem at once --------------------------------------------------------------------


def broken_everywhere(flow_toml: FlowToml) -> dict[str, Any]:
    data = flow_toml()
    steps = data["steps"]
    steps["menu"]["buttons"].append({"label": "Lost", "goto": "nowhere"})
    steps["contact.consent"]["options"][1]["next"] = "nowhere.option"
    steps["contact.times"]["next"] = "nowhere.next"
    del data["strings"]["stale_button"]
    steps["carousel"] = {"kind": "carousel"}
    del steps["contact.voicemail"]["field"]
    del steps["contact.voicemail"]["summary_label"]
    steps["contact.interpreter"]["options"][0]["value"] = "y" * 60
    steps["contact.email"]["field"] = "phone"
    return data


def test_every_problem_is_listed_at_once(flow_toml: FlowToml) -> None:
    problems = problems_of(broken_everywhere(flow_toml))
    assert_named(problems, "'menu'", "'nowhere'")
    assert_named(problems, "'contact.consent'", "'nowhere.option'")
    assert_named(problems, "'contact.times'", "'nowhere.next'")
    assert_named(problems, "[strings] is missing 'stale_button'")
    assert_named(problems, "'carousel'", "unknown kind")
    assert_named(problems, "'contact.voicemail'", "'field'")
    assert_named(problems, "'contact.voicemail'", "'summary_label'")
    assert_named(problems, "'contact.interpreter'", "too long for callback data")
    assert_named(problems, "'contact.email'", "'phone'", "already set")
    assert len(problems) >= 9


def test_unreachable_step_is_listed_with_the_other_problems(flow_toml: FlowToml) -> None:
    data = broken_everywhere(flow_toml)
    data["steps"]["orphan"] = {"kind": "screen", "title": "Orphan"}
    assert_named(problems_of(data), "'orphan'", "unreachable")
