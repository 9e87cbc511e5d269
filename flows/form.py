"""The contact form's rules: which questions apply, where the form goes on, what it still needs.

The form is the flow's question steps in file order (`Flow.form`). `answers` maps a question's
`field` to its answer. Everything here is a pure function of the flow, the deployment and the
answers; the engine decides what to show and say.

    applies(question, answers, deployment)       whether its `when` condition holds now
    can_be_skipped(step)                         whether that can ever be false
    option_values(question, deployment)          the values a choice question accepts
    option_next(question, value)                 where that answer leads
    skip_target(question, summary)               where a question that does not apply leads
    resolve(flow, step_id, answers, deployment)  `step_id`, or the first step after it that applies
    drop_inapplicable(flow, answers, deployment) the answers without those that no longer apply
    next_missing(flow, answers, deployment)      the first required question still unanswered
    is_complete(flow, answers, deployment)       whether the draft may be sent
    applicable(flow, answers, deployment)        (form index, question) pairs that apply now
    draft_lost(flow, step, answers)              whether the draft was dropped under the person
    skip_loops(steps, summary)                   `when` chains that could skip forever (load check)
    picked(answer) / choices_answer(values, own) a `choices` answer and back
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from flows.deployment import Deployment
from flows.kinds import StepKind

if TYPE_CHECKING:  # flows.definition imports this module (skip_loops): types only, no cycle
    from flows.definition import Flow, Step

ORG_CHOICE = "org_choice"  # the only deployment condition: the victim may pick who receives
NO_PREFERENCE = "none"  # the organisation question's "no preference" answer
FIELD_URGENT = "urgent"  # "yes" marks the request urgent for the organisation
FIELD_ORGANISATION = "organisation"  # the organisation the victim chose, if allowed
# Not questions: the reference number and the organisation it went to, kept with the answers
# while the "sent" screen shows them.
REFERENCE = "reference"
ROUTED = "routed_to"


def applies(question: Step, answers: Mapping[str, str], deployment: Deployment) -> bool:
    cond = question.when
    if cond is None:
        return True
    if cond.deployment == ORG_CHOICE and not (
        deployment.allow_org_choice and len(deployment.receiving_organisations) > 1
    ):
        return False
    if cond.field is not None:
        return answers.get(cond.field) in cond.values
    return True


def can_be_skipped(step: Step) -> bool:
    """Whether `applies` can be false for this step, for some answers or deployment."""
    cond = step.when
    return (
        step.kind == StepKind.QUESTION
        and cond is not None
        and (cond.field is not None or cond.deployment == ORG_CHOICE)
    )


def option_values(question: Step, deployment: Deployment) -> list[str]:
    """The values a choice question accepts (for `choices`, each one it can pick)."""
    if question.options_from == "languages":
        return list(deployment.languages)
    if question.options_from == "organisations":
        return [o.id for o in deployment.receiving_organisations] + [NO_PREFERENCE]
    return [o.value for o in question.options]


def option_next(question: Step, value: str) -> str | None:
    """An option may lead somewhere of its own (e.g. "No" leaves the form)."""
    for option in question.options:
        if option.value == value and option.next:
            return option.next
    return question.next


def skip_target(question: Step, summary: str) -> str:
    return question.next or option_next(question, "") or summary


def resolve(flow: Flow, step_id: str, answers: Mapping[str, str], deployment: Deployment) -> str:
    """`step_id`, or past it while it is a question whose `when` does not hold. Ends because
    the loader refuses skip loops (`skip_loops`)."""
    summary = flow.by_kind[StepKind.SUMMARY]
    while True:
        step = flow.step(step_id)
        if step.kind != StepKind.QUESTION or applies(step, answers, deployment):
            return step_id
        step_id = skip_target(step, summary)


def drop_inapplicable(
    flow: Flow, answers: Mapping[str, str], deployment: Deployment
) -> dict[str, str]:
    """Answers to questions that no longer apply are forgotten, so they are never sent. Each
    question is judged on the answers as given (one pass, not repeated until nothing changes)."""
    kept = dict(answers)
    for sid in flow.form:
        question = flow.step(sid)
        if question.field in kept and not applies(question, answers, deployment):
            del kept[question.field]
    return kept


def next_missing(flow: Flow, answers: Mapping[str, str], deployment: Deployment) -> str | None:
    for sid in flow.form:
        q = flow.step(sid)
        if applies(q, answers, deployment) and not q.optional and q.field not in answers:
            return sid
    return None


def is_complete(flow: Flow, answers: Mapping[str, str], deployment: Deployment) -> bool:
    return next_missing(flow, answers, deployment) is None


def applicable(
    flow: Flow, answers: Mapping[str, str], deployment: Deployment
) -> list[tuple[int, Step]]:
    """The questions the summary lists (and offers to change), with their form index."""
    questions = ((index, flow.step(sid)) for index, sid in enumerate(flow.form))
    return [(index, q) for index, q in questions if applies(q, answers, deployment)]


def draft_lost(flow: Flow, step: Step, answers: Mapping[str, str]) -> bool:
    """On a later question or the summary without an answer to the first question: the draft
    expired (or its key was lost) while the person was in the form."""
    if step.kind not in {StepKind.QUESTION, StepKind.SUMMARY} or not flow.form:
        return False
    if step.id == flow.form[0]:
        return False
    return (flow.step(flow.form[0]).field or "") not in answers


def skip_loops(steps: Mapping[str, Step], summary: str) -> list[list[str]]:
    """Chains of questions that `resolve` could pass round forever: each loop once, from its
    first step in file order. Only questions that can be skipped pass a walk on."""
    order = {sid: n for n, sid in enumerate(steps)}
    loops: list[list[str]] = []
    done: set[str] = set()
    for start in steps:
        path: list[str] = []
        sid = start
        while sid in steps and sid not in done and sid not in path:
            if not can_be_skipped(steps[sid]):
                break
            path.append(sid)
            sid = skip_target(steps[sid], summary)
        if sid in path:
            loop = path[path.index(sid) :]
            first = min(range(len(loop)), key=lambda n: order[loop[n]])
            loops.append(loop[first:] + loop[:first])
        done.update(path)
    return loops


def picked(answer: str | None) -> tuple[list[str], str]:
    """A `choices` answer as (the option values picked, in order; her own words)."""
    if not answer:
        return [], ""
    try:
        data = json.loads(answer)
    except ValueError:
        return [], ""
    if not isinstance(data, dict):
        return [], ""
    values = [str(v) for v in data.get("picked", []) if isinstance(v, str)]
    own = data.get("own", "")
    return values, own if isinstance(own, str) else ""


def choices_answer(values: Sequence[str], own: str) -> str | None:
    """The stored form of a `choices` answer; None when nothing is picked or typed."""
    if not values and not own:
        return None
    return json.dumps({"picked": list(values), "own": own}, ensure_ascii=False)
