"""The contact form walked from the flow definition: one walker shared by every test suite.

`walk` reads the flow (`flows.definition.load_flow()`), the deployment and a dict of answers
(field -> the value as stored: an option's value for a choice question, the typed text for a
text, phone or email question; None or absent = Skip) and yields the person's actions that
take the form from the menu to the summary, in the chosen language:

    Move(step="menu", action=Press("Talk to a support worker"))
    Move(step="contact.consent", action=Press("Yes, go on"), field="consent", value="yes")
    Move(step="contact.phone", action=Type("07911 123456"), field="phone", ...)
    ...

A `choices` question (pick any number, then Done) takes its plan value as option values joined
by "+" ("mornings+evenings"), or "own:" and words of her own; each press or text is a move on
the same screen (`stays`), then Done. An option that shows a screen first (the emergency route
after "in danger") is followed by "Continue my request" on that screen.

It follows the flow as the engine does: each answer's `next` (an option's own `next` first),
past every question whose `when` does not hold (an earlier answer, or `deployment =
"org_choice"`: the deployment lets the person choose and has more than one receiving
organisation). It stops after an answer that leaves the form (consent declined), and at the
summary, which it does not act on.

Actions are channel-neutral; each suite performs them its own way (a Telegram user of the Bot
API emulator, the service's `Victim`, the engine `Driver`). Labels are the button texts as the
engine shows them: translated with the catalogues, languages in their own names (CLDR),
organisations by name, "none" as the flow's `no_preference` string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flows.definition import Flow, NavButton, Step
from flows.deployment import Deployment
from flows.i18n import Catalogs, native_name
from flows.render import NOT_PICKED

MAX_STEPS = 100  # more questions than any flow has: a `next` loop, not a long form


@dataclass(frozen=True)
class Press:
    """Press the button with this label."""

    label: str


@dataclass(frozen=True)
class Type:
    """Send this text."""

    text: str


Action = Press | Type


@dataclass(frozen=True)
class Move:
    """One action, taken on the screen of step `step`. For a question, `field` is the field it
    answers and `value` the stored value meant (None: Skip); both are None for the menu
    button that opens the form."""

    step: str
    action: Action
    field: str | None = None
    value: str | None = None
    # The screen stays on the same question (a pick on a `choices` question).
    stays: bool = False


OWN = "own:"  # a `choices` plan value of words typed by the person


def choices_moves(
    flow: Flow, deployment: Deployment, catalogs: Catalogs, lang: str, step_id: str, value: str
) -> list[Move]:
    """The moves that answer `choices` question `step_id` with plan value `value`, Done last."""
    question = flow.step(step_id)
    moves = []
    if value.startswith(OWN):
        moves.append(Move(step_id, Type(value[len(OWN) :]), question.field, None, stays=True))
    else:
        for picked in value.split("+"):
            label = NOT_PICKED + option_label(flow, deployment, catalogs, lang, step_id, picked)
            moves.append(Move(step_id, Press(label), question.field, picked, stays=True))
    done = translate(catalogs, lang, flow.string("done"))
    moves.append(Move(step_id, Press(done), question.field, "done"))
    return moves


def translate(catalogs: Catalogs, lang: str, english: str) -> str:
    """An English source string (a label, a title, a [strings] value) in `lang`."""
    return str(catalogs.get(lang).gettext(english))


def option_label(  # the button's words; a `choices` button shows a mark before them
    flow: Flow, deployment: Deployment, catalogs: Catalogs, lang: str, step_id: str, value: str
) -> str:
    """The label of the button that answers choice question `step_id` with `value`."""
    step = flow.step(step_id)
    if step.options_from == "languages":
        if value not in deployment.languages:
            raise KeyError(f"{step_id}: the deployment offers no language {value!r}")
        return native_name(value)
    if step.options_from == "organisations":
        if value == "none":
            return translate(catalogs, lang, flow.string("no_preference"))
        receiving = {o.id: o.name for o in deployment.receiving_organisations}
        if value not in receiving:
            raise KeyError(f"{step_id}: no receiving organisation {value!r}")
        return receiving[value]
    for option in step.options:
        if option.value == value:
            return translate(catalogs, lang, option.label)
    raise KeyError(f"{step_id} has no option {value!r}")


def applies(step: Step, deployment: Deployment, answers: Mapping[str, str]) -> bool:
    """Whether question `step` is asked, given the answers so far."""
    cond = step.when
    if cond is None:
        return True
    if cond.deployment == "org_choice" and not (
        deployment.allow_org_choice and len(deployment.receiving_organisations) > 1
    ):
        return False
    if cond.field is not None:
        return answers.get(cond.field) in cond.values
    return True


def summary_id(flow: Flow) -> str:
    return next(s.id for s in flow.steps.values() if s.kind == "summary")


def form_opener(flow: Flow) -> NavButton:
    """The menu's button that opens the contact form ("Talk to a support worker")."""
    for button in flow.step(flow.menu).buttons:
        if flow.step(button.goto).kind == "question":
            return button
    raise LookupError(f"no button on {flow.menu!r} opens the form")


def walk(
    flow: Flow,
    deployment: Deployment,
    answers: Mapping[str, str | None],
    *,
    lang: str,
    catalogs: Catalogs,
    until: str | None = None,
) -> Iterator[Move]:
    """The moves from the menu to the summary (see the module docstring). With `until`, stop
    before answering that question (if it is asked at all)."""
    summary = summary_id(flow)
    opener = form_opener(flow)
    yield Move(flow.menu, Press(translate(catalogs, lang, opener.label)))

    given: dict[str, str] = {}  # the answers the engine holds so far
    step_id = opener.goto
    for _ in range(MAX_STEPS):
        step_id = _first_asked(flow, deployment, step_id, given, summary)
        if step_id == summary or step_id == until:
            return
        question = flow.step(step_id)
        assert question.field is not None  # a loaded flow's questions all have one
        value = answers.get(question.field)
        if value is None:
            action: Action = Press(translate(catalogs, lang, flow.string("skip")))
            given.pop(question.field, None)
            target = question.next or summary
        elif question.input == "choices":
            *picks, action_move = choices_moves(flow, deployment, catalogs, lang, step_id, value)
            yield from picks
            action = action_move.action
            given[question.field] = value
            target = question.next or summary
            yield Move(step_id, action, question.field, "done")
            _drop_inapplicable(flow, deployment, given)
            step_id = target
            continue
        elif question.input == "choice":
            action = Press(option_label(flow, deployment, catalogs, lang, step_id, value))
            given[question.field] = value
            target = _option_next(question, value) or summary
            shows = next((o.show for o in question.options if o.value == value and o.show), None)
            if shows is not None:
                yield Move(step_id, action, question.field, value)
                resume = translate(catalogs, lang, flow.string("resume"))
                yield Move(shows, Press(resume))
                _drop_inapplicable(flow, deployment, given)
                step_id = target
                continue
        else:
            action = Type(value)
            given[question.field] = value
            target = question.next or summary
        yield Move(step_id, action, question.field, value)
        if target != summary and flow.step(target).kind != "question":
            return  # the answer leaves the form (consent declined): nothing more to answer
        _drop_inapplicable(flow, deployment, given)
        step_id = target
    raise AssertionError(f"the form did not reach {summary!r} in {MAX_STEPS} steps")


def _first_asked(
    flow: Flow, deployment: Deployment, step_id: str, given: Mapping[str, str], summary: str
) -> str:
    """`step_id`, or the first step after it whose `when` holds."""
    for _ in range(MAX_STEPS):
        step = flow.step(step_id)
        if step.kind != "question" or applies(step, deployment, given):
            return step_id
        step_id = step.next or _option_next(step, "") or summary
    raise AssertionError(f"{step_id!r}: a `when` chain longer than the form")


def _drop_inapplicable(flow: Flow, deployment: Deployment, given: dict[str, str]) -> None:
    """Forget answers to questions that no longer apply, as the engine does after each one."""
    before = dict(given)
    for sid in flow.form:
        question = flow.step(sid)
        if question.field in given and not applies(question, deployment, before):
            del given[question.field]


def _option_next(step: Step, value: str) -> str | None:
    for option in step.options:
        if option.value == value and option.next:
            return option.next
    return step.next
