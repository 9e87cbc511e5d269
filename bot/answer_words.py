"""A request's answers in English words beside their codes, in form order, for the people who
open it (`safebot handoffs export`; the portal can use the same lines).

The sealed payload keeps codes (`call`, `hang_up`, a JSON list for the safe times), which are
stable across wording changes; an advocate needs the words. The words come from the flow file
(`flows.definition.load_flow`) and the deployment, in English, the flow's source language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError

from flows import form
from flows.definition import Flow, Step
from flows.deployment import Deployment
from flows.kinds import InputKind, StepKind


@dataclass(frozen=True)
class AnswerLine:
    field: str
    question: str  # the summary label, in English
    code: str  # as sealed
    words: str  # in English words; her own words unchanged
    codes: str = ""  # the code(s) for reading: a multi-choice answer's picked values, not JSON


def answer_lines(
    flow: Flow, deployment: Deployment, answers: Mapping[str, str]
) -> list[AnswerLine]:
    """Every answer, in the order of the form; fields the flow does not know come last."""
    questions = {s.field: s for s in flow.steps.values() if s.kind == StepKind.QUESTION and s.field}
    order = [f for f in (flow.step(sid).field for sid in flow.form) if f is not None]
    fields = [f for f in dict.fromkeys(order) if f in answers]
    fields += sorted(f for f in answers if f not in fields)
    lines = []
    for name in fields:
        step = questions.get(name)
        value = answers[name]
        if step is None:
            lines.append(AnswerLine(name, name, value, value, value))
            continue
        codes = ", ".join(form.picked(value)[0]) if step.input == InputKind.CHOICES else value
        said = words(flow, deployment, step, value)
        lines.append(AnswerLine(name, step.summary_label or name, value, said, codes))
    return lines


def words(flow: Flow, deployment: Deployment, step: Step, value: str) -> str:
    if step.input == InputKind.CHOICES:
        values, own = form.picked(value)
        said = [_option(flow, deployment, step, v) for v in values]
        return "; ".join([*said, *([f"“{own}”"] if own else [])])
    if step.input == InputKind.CHOICE:
        return _option(flow, deployment, step, value)
    return value


def _option(flow: Flow, deployment: Deployment, step: Step, value: str) -> str:
    if step.options_from == "languages":
        return language_name(value)
    if step.options_from == "organisations":
        if value == form.NO_PREFERENCE:
            return flow.strings.get("no_preference", value)
        known = {o.id: o.name for o in deployment.organisations}
        return known.get(value, value)
    for option in step.options:
        if option.value == value:
            return option.summary or option.label
    return value  # an answer the flow no longer offers: the code is all there is


def language_name(code: str) -> str:
    """`pl` -> `Polish`; an unknown code stays a code."""
    try:
        return str(Locale.parse(code, sep="-").get_display_name("en") or code)
    except (ValueError, UnknownLocaleError):
        return code
