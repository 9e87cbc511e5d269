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
from flows.validators import Invalid, validate


def act_on(turn: Turn, value: str) -> None:
    current = turn.current
    _ACTIONS.get(current.kind, _no_action)(turn, current, value)


def _question_action(turn: Turn, question: Step, value: str) -> None:
    values = form.option_values(question, turn.deployment)
    if value == Action.SKIP and question.optional:
        answered(turn, question, None, None)
    elif question.input == InputKind.CHOICE and value in values:
        answered(turn, question, value, form.option_next(question, value), _shows(question, value))
    elif question.input == InputKind.CHOICES and value in values:
        _toggle(turn, question, value)
    elif question.input == InputKind.CHOICES and value == Action.DONE:
        _choices_done(turn, question)
    else:
        turn.stale()


def _shows(question: Step, value: str) -> str | None:
    return next((o.show for o in question.options if o.value == value), None)


# ---- a `choices` question: pick any number, type one of her own, then Done ------------------


def _toggle(turn: Turn, question: Step, value: str) -> None:
    assert question.field is not None
    values, own = form.picked(turn.state.answers.get(question.field))
    values = [v for v in values if v != value] if value in values else [*values, value]
    order = form.option_values(question, turn.deployment)
    _keep_choices(turn, question, sorted(values, key=order.index), own)
    turn.go(question.id)


def typed_own(turn: Turn, question: Step, typed: str) -> None:
    """Words of her own on a `choices` question ("Tuesdays after 10"): one more answer."""
    assert question.field is not None
    result = validate(InputKind.TEXT, typed, max_length=question.max_length)
    if isinstance(result, Invalid):
        turn.say(result.reason, limit=str(question.max_length))
        turn.show()
        return
    values, _ = form.picked(turn.state.answers.get(question.field))
    _keep_choices(turn, question, values, " ".join(result.value.split()))
    turn.go(question.id)


def _choices_done(turn: Turn, question: Step) -> None:
    assert question.field is not None
    answer = turn.state.answers.get(question.field)
    if answer is None and not question.optional:
        turn.say("choose_one")
        turn.show()
        return
    answered(turn, question, answer, None)


def _keep_choices(turn: Turn, question: Step, values: list[str], own: str) -> None:
    assert question.field is not None
    answers = dict(turn.state.answers)
    answer = form.choices_answer(values, own)
    if answer is None:
        answers.pop(question.field, None)
    else:
        answers[question.field] = answer
    turn.state = turn.state.with_(answers=answers)


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
            campaign=turn.state.campaign,
        )
    )
    # No screen yet: only the edges' RequestStored may say that the request was received.
    turn.state = turn.state.with_(step=turn.step_of(StepKind.SUBMITTING))


def _delete(turn: Turn) -> None:
    """ "Cancel and delete", confirmed: the only way out of the form that drops the answers."""
    turn.say("draft_deleted")
    turn.forget_draft()
    turn.state = turn.state.with_(campaign=None)  # part of the draft: it goes with it
    turn.go(turn.flow.menu)


def _keep(turn: Turn) -> None:
    turn.go(turn.current.id)


_SUMMARY_ACTIONS: Mapping[str, Callable[[Turn], None]] = {
    Action.CONFIRM: _confirm,
    Action.CHANGE: Turn.show_change_list,
    Action.CANCEL: Turn.show_cancel_confirm,
    Action.DELETE: _delete,
    Action.KEEP: _keep,
}


def _edit(turn: Turn, index: int) -> None:
    question = turn.flow.step(turn.flow.form[index])
    # Only what the summary lists can be changed: consent is not an answer to edit (saying
    # "no" there would drop the whole draft; "Cancel and delete" asks first).
    if question.in_summary and form.applies(question, turn.state.answers, turn.deployment):
        turn.state = turn.state.with_(editing=True)
        turn.go(question.id)
    else:
        turn.stale()


# ---- the form moving on ----------------------------------------------------------------------


def answered(
    turn: Turn,
    question: Step,
    value: str | None,
    next_hint: str | None,
    show: str | None = None,
) -> None:
    """Record the answer and move on; with `show`, to that screen first, with the form's next
    step kept for "Continue my request"."""
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
        if missing is None:
            turn.state = turn.state.with_(editing=False)
        onward = missing or summary
    else:
        onward = form.resolve(flow, target, turn.state.answers, dep)
    if show is not None:
        turn.state = turn.state.with_(resume=onward)
        turn.go(show)
    else:
        turn.go(onward)


def advance(turn: Turn, step_id: str) -> None:
    turn.go(form.resolve(turn.flow, step_id, turn.state.answers, turn.deployment))
