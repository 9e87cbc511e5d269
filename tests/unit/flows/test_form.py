"""The contact form's rules, on the bundled flow and on small hand-made ones."""

from __future__ import annotations

import dataclasses

import pytest

from flows import form
from flows.context import Context
from flows.definition import Condition, Option, Step
from flows.deployment import Deployment
from flows.kinds import InputKind, StepKind
from tests.unit.flows.conftest import PHONE_E164, form_plan


def answers_for(method: str, **overrides: str | None) -> dict[str, str]:
    plan = form_plan(method, **overrides)
    out = {k: v for k, v in plan.items() if v is not None}
    out["phone"] = PHONE_E164
    return out


def with_org_choice(dep: Deployment, allowed: bool) -> Deployment:
    return dataclasses.replace(dep, allow_org_choice=allowed)


def question(sid: str, **fields: object) -> Step:
    values: dict[str, object] = {"field": sid, "input": InputKind.CHOICE, "next": "summary"}
    values.update(fields)
    return Step(id=sid, kind=StepKind.QUESTION, **values)


# ---- applies ----------------------------------------------------------------------------------


def test_a_question_without_when_always_applies(ctx: Context) -> None:
    assert form.applies(question("q"), {}, ctx.deployment)


@pytest.mark.parametrize(("answer", "expected"), [("call", True), ("sms", True), ("email", False)])
def test_when_matches_an_earlier_answer(ctx: Context, answer: str, expected: bool) -> None:
    q = question("q", when=Condition(field="method", values=frozenset({"call", "sms"})))
    assert form.applies(q, {"method": answer}, ctx.deployment) is expected


def test_when_an_earlier_answer_is_missing_the_question_does_not_apply(ctx: Context) -> None:
    q = question("q", when=Condition(field="method", values=frozenset({"call"})))
    assert not form.applies(q, {}, ctx.deployment)


def test_org_choice_needs_the_deployment_to_allow_it_and_two_organisations(ctx: Context) -> None:
    q = ctx.flow.step("contact.organisation")
    dep = ctx.deployment
    assert len(dep.receiving_organisations) > 1
    assert form.applies(q, {}, with_org_choice(dep, True))
    assert not form.applies(q, {}, with_org_choice(dep, False))
    one = dataclasses.replace(
        with_org_choice(dep, True), organisations=dep.receiving_organisations[:1]
    )
    assert not form.applies(q, {}, one)


def test_can_be_skipped(ctx: Context) -> None:
    flow = ctx.flow
    assert form.can_be_skipped(flow.step("contact.phone"))  # a field condition
    assert form.can_be_skipped(flow.step("contact.organisation"))  # a deployment condition
    assert not form.can_be_skipped(flow.step("contact.times"))  # no condition
    assert not form.can_be_skipped(question("q", when=Condition()))  # an empty one holds
    assert not form.can_be_skipped(flow.step("menu"))  # only questions are skipped


# ---- options ----------------------------------------------------------------------------------


def test_option_values(ctx: Context) -> None:
    flow, dep = ctx.flow, ctx.deployment
    assert form.option_values(flow.step("contact.consent"), dep) == ["yes", "no"]
    assert form.option_values(flow.step("contact.language"), dep) == list(dep.languages)
    organisations = [o.id for o in dep.receiving_organisations]
    expected = [*organisations, form.NO_PREFERENCE]
    assert form.option_values(flow.step("contact.organisation"), dep) == expected


def test_option_next_prefers_the_option_then_the_question(ctx: Context) -> None:
    consent = ctx.flow.step("contact.consent")
    assert form.option_next(consent, "no") == "menu"
    assert form.option_next(consent, "yes") == "contact.method"
    assert form.option_next(ctx.flow.step("contact.times"), "evenings") == "contact.voicemail"


def test_skip_target() -> None:
    assert form.skip_target(question("q", next="b"), "summary") == "b"
    via_option = question("q", next=None, options=(Option("", "Blank", next="c"),))
    assert form.skip_target(via_option, "summary") == "c"
    no_next = question("q", next=None, options=(Option("yes", "Yes", next="d"),))
    assert form.skip_target(no_next, "sum") == "sum"


# ---- moving on --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "method", "expected"),
    [
        ("contact.phone", "call", "contact.phone"),
        ("contact.phone", "email", "contact.email"),
        ("contact.email", "call", "contact.times"),
        ("contact.voicemail", "email", "contact.codeword"),  # two skipped in a row
        ("contact.someone_else", "sms", "contact.codeword"),
        ("menu", "email", "menu"),  # not a question: never skipped
    ],
)
def test_resolve_skips_questions_that_do_not_apply(
    ctx: Context, start: str, method: str, expected: str
) -> None:
    assert form.resolve(ctx.flow, start, {"method": method}, ctx.deployment) == expected


def test_resolve_skips_a_deployment_condition(ctx: Context) -> None:
    dep = with_org_choice(ctx.deployment, False)
    assert form.resolve(ctx.flow, "contact.organisation", {}, dep) == "contact.message"


def test_drop_inapplicable_forgets_what_no_longer_applies(ctx: Context) -> None:
    answers = answers_for("call") | {"method": "email"}
    kept = form.drop_inapplicable(ctx.flow, answers, ctx.deployment)
    assert not {"phone", "leave_message", "someone_else"} & set(kept)
    assert kept["email"] == answers["email"]
    assert kept["times"] == answers["times"]
    assert answers["phone"] == PHONE_E164  # the argument is not changed


def test_drop_inapplicable_judges_on_the_answers_given(ctx: Context) -> None:
    """One pass: a question that depends on a dropped answer is judged on the answers given."""
    flow = dataclasses.replace(
        ctx.flow,
        steps={
            "a": question("a", when=Condition(field="x", values=frozenset({"1"}))),
            "b": question("b", when=Condition(field="a", values=frozenset({"yes"}))),
        },
        form=("a", "b"),
    )
    kept = form.drop_inapplicable(flow, {"x": "2", "a": "yes", "b": "yes"}, ctx.deployment)
    assert kept == {"x": "2", "b": "yes"}


def test_next_missing_and_complete(ctx: Context) -> None:
    flow, dep = ctx.flow, ctx.deployment
    answers = answers_for("call")
    assert form.next_missing(flow, answers, dep) is None
    assert form.is_complete(flow, answers, dep)
    del answers["times"]
    assert form.next_missing(flow, answers, dep) == "contact.times"
    assert not form.is_complete(flow, answers, dep)


def test_optional_and_inapplicable_questions_are_not_missing(ctx: Context) -> None:
    flow, dep = ctx.flow, ctx.deployment
    answers = {k: v for k, v in answers_for("email").items() if k not in {"codeword", "message"}}
    del answers["phone"]
    assert form.is_complete(flow, answers, dep)
    assert form.next_missing(flow, {**answers, "method": "call"}, dep) == "contact.phone"


def test_applicable_lists_the_summary_in_form_order(ctx: Context) -> None:
    flow = ctx.flow
    listed = form.applicable(flow, answers_for("email"), ctx.deployment)
    assert [q.id for _, q in listed] == [
        s
        for s in flow.form
        if s not in {"contact.phone", "contact.voicemail", "contact.someone_else"}
    ]
    assert all(flow.form[index] == q.id for index, q in listed)


@pytest.mark.parametrize(
    ("step_id", "answers", "lost"),
    [
        ("contact.times", {}, True),
        ("contact.summary", {}, True),
        ("contact.summary", {"method": "call"}, True),
        ("contact.times", {"consent": "yes"}, False),
        ("contact.consent", {}, False),  # the first question needs no draft
        ("menu", {}, False),
        ("contact.done", {"reference": "1"}, False),
    ],
)
def test_draft_lost(ctx: Context, step_id: str, answers: dict[str, str], lost: bool) -> None:
    assert form.draft_lost(ctx.flow, ctx.flow.step(step_id), answers) is lost


# ---- skip loops -------------------------------------------------------------------------------


def test_the_bundled_flow_has_no_skip_loops(ctx: Context) -> None:
    assert form.skip_loops(ctx.flow.steps, "contact.summary") == []


def when_x() -> Condition:
    return Condition(field="x", values=frozenset({"1"}))


def test_skip_loops_are_found_once_from_their_first_step() -> None:
    steps = {
        "a": question("a", next="b"),
        "b": question("b", next="c", when=when_x()),
        "c": question("c", next="d", when=Condition(deployment=form.ORG_CHOICE)),
        "d": question("d", next="b", when=when_x()),
        "self": question("self", next="self", when=when_x()),
    }
    assert form.skip_loops(steps, "summary") == [["b", "c", "d"], ["self"]]


def test_a_question_that_always_applies_breaks_the_loop() -> None:
    steps = {
        "b": question("b", next="c", when=when_x()),
        "c": question("c", next="b"),
    }
    assert form.skip_loops(steps, "summary") == []


def test_unknown_targets_end_a_skip_chain() -> None:
    assert form.skip_loops({"b": question("b", next="nowhere", when=when_x())}, "summary") == []
