"""What a press on the current screen does (`a:<seq>:<value>`), by the kind of step, and how
an answer moves the contact form on.

    act_on(turn, value)                         the press, on whatever screen is current
    answered(turn, question, value, next_hint)  record an answer (None: skipped), move on
    advance(turn, step_id)                      to `step_id`, or past questions that do not apply

The press has already been checked against the screen's sequence number; what it asks for is
checked here, and anything the screen does not offer is answered as stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flows import form
from flows.callbacks import Action, edit_index
from flows.definition import Step
from flows.effects import DeleteConversation, ForgetMe, SubmitRequest
from flows.kinds import InputKind, StepKind
from flows.turn import Turn


def act_on(turn: Turn, value: str) -> None:
    current = turn.current
    _ACTIONS.get(current.kind, _no_action)(turn, current, value)


def _question_action(turn: Turn, question: Step, value: str) -> None:
    if value == Action.SKIP and question.optional:
        answered(turn, question, None, None)
    elif question.input == InputKind.CHOICE and value in form.option_values(
        question, turn.deployment
    ):
        answered(turn, question, value, form.option_next(question, value))
    else:
        turn.stale()


def _summary_action(turn: Turn, _: Step, value: str) -> None:
    action = _SUMMARY_ACTIONS.get(value)
    index = edit_index(value)
    if action is not None:
        action(turn)
    elif index is not None and index < len(turn.flow.form):
        _edit(turn, index)
    else:
        turn.stale()


def _forget_action(turn: Turn, _: Step, value: str) -> None:
    if value == Action.YES:
        # What is on the screen was told too: clear it, as quick exit does.
        turn.effects += [DeleteConversation(), ForgetMe()]
    else:
        turn.go(turn.flow.menu)


def _no_action(turn: Turn, _: Step, __: str) -> None:
    turn.stale()


_ACTIONS: Mapping[StepKind, Callable[[Turn, Step, str], None]] = {
    StepKind.QUESTION: _question_action,
    StepKind.SUMMARY: _summary_action,
    StepKind.FORGET: _forget_action,
}


# ---- the summary -----------------------------------------------------------------------------


def _confirm(turn: Turn) -> None:
    dep = turn.deployment
    if not form.is_complete(turn.flow, turn.state.answers, dep):
        turn.draft_expired()
        return
    answers = {k: v for k, v in turn.state.answers.items() if k != form.REFERENCE}
    turn.effects.append(
        SubmitRequest(
            answers=answers,
            language=turn.language,
            urgent=answers.get(form.FIELD_URGENT) == "yes",
            organisation=dep.route(turn.language, answers.get(form.FIELD_ORGANISATION)),
        )
    )
    # No screen yet: only the edges' RequestStored may say that the request was received.
    turn.state = turn.state.with_(step=turn.step_of(StepKind.SUBMITTING))


def _cancel(turn: Turn) -> None:
    turn.forget_draft()
    turn.go(turn.flow.menu)


_SUMMARY_ACTIONS: Mapping[str, Callable[[Turn], None]] = {
    Action.CONFIRM: _confirm,
    Action.CHANGE: Turn.show_change_list,
    Action.CANCEL: _cancel,
}


def _edit(turn: Turn, index: int) -> None:
    question = turn.flow.step(turn.flow.form[index])
    if form.applies(question, turn.state.answers, turn.deployment):
        turn.state = turn.state.with_(editing=True)
        turn.go(question.id)
    else:
        turn.stale()


# ---- the form moving on ----------------------------------------------------------------------


def answered(turn: Turn, question: Step, value: str | None, next_hint: str | None) -> None:
    flow, dep = turn.flow, turn.deployment
    assert question.field is not None  # a loaded flow's questions all have one
    answers = dict(turn.state.answers)
    if value is None:
        answers.pop(question.field, None)
    else:
        answers[question.field] = value
    turn.state = turn.state.with_(answers=answers)
    summary = turn.step_of(StepKind.SUMMARY)
    target = next_hint or question.next or summary
    if flow.step(target).kind != StepKind.QUESTION and target != summary:
        # The answer leaves the form (e.g. consent withdrawn): nothing may be sent.
        turn.forget_draft()
        turn.go(target)
        return
    turn.state = turn.state.with_(answers=form.drop_inapplicable(flow, answers, dep))
    if turn.state.editing:
        # Back to the summary, but first ask what the change made necessary (a new method
        # needs its phone number or email); answers that still stand are not asked again.
        missing = form.next_missing(flow, turn.state.answers, dep)
        if missing is not None:
            turn.go(missing)
        else:
            turn.state = turn.state.with_(editing=False)
            turn.go(summary)
        return
    advance(turn, target)


def advance(turn: Turn, step_id: str) -> None:
    turn.go(form.resolve(turn.flow, step_id, turn.state.answers, turn.deployment))
