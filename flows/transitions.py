"""How each event moves a conversation on, by the kind of step it meets.

`TRANSITIONS` maps (step kind, event class) to the function that handles the event there.
`ANY_STEP` rows hold on every kind of step that has no row of its own; a row for the class
`Event` catches every event on that kind. So on `submitting`, where only a crash leaves a
conversation, every event but quick exit and the edges' report says the request was not sent.

Button presses are decoded by `flows.callbacks` and checked here: a language the deployment
has, a step some button leads to, or an action carrying the current screen's sequence number
(what that action does is `flows.actions`). Anything else is answered as stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows import form, outreach
from flows.actions import act_on, advance, answered, typed_own
from flows.callbacks import (
    QUICK_EXIT_DATA,
    Act,
    GoTo,
    OpenLanguages,
    OpenMenu,
    QuickExit,
    Resume,
    SetLanguage,
    decode,
    is_action,
)
from flows.effects import CheckStatus, OpenCampaign
from flows.events import (
    ButtonPressed,
    CampaignChecked,
    CommandReceived,
    Event,
    Forgotten,
    NonTextReceived,
    QuickExitRequested,
    RequestFailed,
    RequestStored,
    Started,
    StatusChecked,
    TextReceived,
)
from flows.i18n import negotiate
from flows.kinds import REMOVED_STATUS, TYPED_INPUTS, InputKind, RequestStatus, StepKind
from flows.turn import Turn
from flows.validators import Invalid, reference_code, validate

# Each transition takes the turn and the event its row names (typed per function below).
Transition = Callable[[Turn, Any], None]
ANY_STEP = None

# A request's stored status -> what the victim is told (nothing more than this).
_STATUS_NOTICES: Mapping[str, str] = {
    RequestStatus.NEW: "status_waiting",
    RequestStatus.PICKED_UP: "status_picked_up",
    RequestStatus.CLOSED: "status_closed",
    RequestStatus.WITHDRAWN: "status_withdrawn",
    # Deleted on her request, or by the retention purge: only a keyed trace of the code is left.
    REMOVED_STATUS: "status_deleted",
}


def dispatch(turn: Turn, event: Event) -> None:
    transition_for(turn.current.kind, type(event))(turn, event)


def transition_for(kind: StepKind, event_type: type[Event]) -> Transition:
    """The row for `kind` and the event's class or its nearest base, else the ANY_STEP one."""
    for row_kind in (kind, ANY_STEP):
        for cls in event_type.__mro__:
            transition = TRANSITIONS.get((row_kind, cls))
            if transition is not None:
                return transition
    return TRANSITIONS[(ANY_STEP, Event)]


# ---- on any step -----------------------------------------------------------------------------


def _show_again(turn: Turn, _: Event) -> None:
    turn.show()


def _started(turn: Turn, event: Started) -> None:
    link = outreach.decode(event.payload)
    if link is not None and link.language in turn.deployment.languages:
        # An outreach link: only the edges know whether its campaign is live. No screen yet;
        # `CampaignChecked` opens the conversation, and the payload goes no further.
        turn.effects.append(OpenCampaign(link.code, link.language, event.language_hint))
        return
    _start(turn, event.payload, event.language_hint)


def _campaign_checked(turn: Turn, event: CampaignChecked) -> None:
    if event.active:
        # Remembered (in the encrypted draft part only) to count her request, if she makes one.
        turn.state = turn.state.with_(campaign=event.code)
        _start(turn, event.language, event.language_hint)
    else:
        # Unknown or retired: a normal start, as if the link had carried nothing.
        _start(turn, "", event.language_hint)


def _start(turn: Turn, payload: str, language_hint: str | None) -> None:
    dep = turn.deployment
    chosen = payload if payload in dep.languages else None
    if chosen:
        turn.state = turn.state.with_(language=chosen)
    elif turn.state.language is None:
        guess = negotiate(language_hint, dep.languages, dep.default_language)
        turn.state = turn.state.with_(language=guess)
        hint = (language_hint or "").split("-")[0].split("_")[0].lower()
        if guess == dep.default_language and hint != guess.split("_")[0]:
            # No match for the phone's language: let the person choose first.
            turn.go(turn.step_of(StepKind.LANGUAGE))
            return
    turn.go(turn.flow.entry)


def _command(turn: Turn, event: CommandReceived) -> None:
    command = _COMMANDS.get(event.name)
    if command is None:
        _buttons_only(turn, event)
    else:
        command(turn, event.argument)


def _pressed(turn: Turn, event: ButtonPressed) -> None:
    match decode(event.data):
        case QuickExit():
            turn.quick_exit()
        case OpenLanguages(page):
            turn.go(turn.step_of(StepKind.LANGUAGE), language_page=page)
        case OpenMenu():
            turn.go(turn.flow.menu)
        case Resume():
            _resume(turn)
        case SetLanguage(code) if code in turn.deployment.languages:
            turn.state = turn.state.with_(language=code)
            turn.say("language_changed")
            turn.go(turn.flow.menu)
        case GoTo(step_id) if step_id in turn.flow.nav_targets:
            _open(turn, step_id)
        case Act() as act if act.is_for(turn.state.seq):
            act_on(turn, act.value)
        case _:
            turn.stale()


def _buttons_only(turn: Turn, _: Event) -> None:
    # Typing may be someone trying to say something urgent: answer calmly, always with the
    # emergency route and the "I need help now" button.
    turn.say("buttons_only", "emergency_line")
    turn.show(offer_help=True)


def _non_text(turn: Turn, event: NonTextReceived) -> None:
    turn.say("edited" if event.kind == "edited" else "not_text", "emergency_line")
    turn.show(offer_help=True)


def _quick_exit(turn: Turn, _: Event) -> None:
    turn.quick_exit()


def _stored(turn: Turn, event: RequestStored) -> None:
    # The edges counted the request for her campaign, if any: the campaign goes now.
    turn.state = turn.state.with_(campaign=None)
    answers = turn.state.answers
    routed = turn.deployment.route(turn.language, answers.get(form.FIELD_ORGANISATION))
    turn.go(
        turn.step_of(StepKind.DONE),
        answers={form.REFERENCE: event.reference, form.ROUTED: routed},
        editing=False,
        resume=None,
    )


def _failed(turn: Turn, _: RequestFailed) -> None:
    turn.say("submit_failed")
    turn.go(turn.step_of(StepKind.SUMMARY))


def _status_checked(turn: Turn, event: StatusChecked) -> None:
    turn.say(_STATUS_NOTICES.get(event.status or "", "status_unknown"))
    turn.go(turn.flow.menu)


def _forgotten(turn: Turn, event: Forgotten) -> None:
    turn.say("forgotten_withdrawn" if event.withdrawn else "forgotten")
    turn.forget_draft()
    turn.go(turn.flow.menu)


# ---- on particular steps ---------------------------------------------------------------------


def _typed_answer(turn: Turn, event: TextReceived) -> None:
    question = turn.current
    if question.input == InputKind.CHOICES and question.own_text:
        typed_own(turn, question, event.text)
        return
    if question.input is None or question.input not in TYPED_INPUTS:
        _buttons_only(turn, event)
        return
    result = validate(question.input, event.text, max_length=question.max_length)
    if isinstance(result, Invalid):
        turn.say(result.reason, limit=str(question.max_length))
        turn.show()
    else:
        answered(turn, question, result.value, None)


def _typed_code(turn: Turn, event: TextReceived) -> None:
    _check_status(turn, event.text)


def _restart(turn: Turn, _: Event) -> None:
    turn.go(turn.flow.entry)


def _typed_after_exit(turn: Turn, _: Event) -> None:
    # The chat starts again, but typing may be someone trying to say something urgent: the
    # emergency route and "I need help now" come with the welcome, as on every other screen.
    turn.say("buttons_only", "emergency_line")
    turn.go(turn.flow.entry, offer_help=True)


def _interrupted(turn: Turn, _: Event) -> None:
    # Only a crash leaves a conversation in `submitting`: the request was not acknowledged.
    turn.say("submit_interrupted")
    turn.go(turn.step_of(StepKind.SUMMARY))


def _exit_or_interrupted(turn: Turn, event: ButtonPressed | CommandReceived) -> None:
    if event in (ButtonPressed(QUICK_EXIT_DATA), CommandReceived("exit")):
        turn.quick_exit()
    else:
        _interrupted(turn, event)


def _unless_draft_lost(transition: Transition) -> Transition:
    """The draft expired (or its key was lost) while the person was in the form: never carry
    on, and never submit, with answers that are no longer there."""

    def guarded(turn: Turn, event: Event) -> None:
        lost = form.draft_lost(turn.flow, turn.current, turn.state.answers)
        if lost and _answers_the_form(event):
            turn.draft_expired()
        else:
            transition(turn, event)

    return guarded


def _answers_the_form(event: Event) -> bool:
    """Events that act on the current question or summary (not navigation or commands)."""
    if isinstance(event, TextReceived):
        return True
    return isinstance(event, ButtonPressed) and is_action(event.data)


# The transition table: (kind of the current step, or ANY_STEP; event class) -> transition.
TRANSITIONS: Mapping[tuple[StepKind | None, type[Event]], Transition] = {
    (ANY_STEP, Event): _show_again,
    (ANY_STEP, Started): _started,
    (ANY_STEP, CampaignChecked): _campaign_checked,
    (ANY_STEP, CommandReceived): _command,
    (ANY_STEP, ButtonPressed): _pressed,
    (ANY_STEP, TextReceived): _buttons_only,
    (ANY_STEP, NonTextReceived): _non_text,
    (ANY_STEP, QuickExitRequested): _quick_exit,
    (ANY_STEP, RequestStored): _stored,
    (ANY_STEP, RequestFailed): _failed,
    (ANY_STEP, StatusChecked): _status_checked,
    (ANY_STEP, Forgotten): _forgotten,
    (StepKind.QUESTION, TextReceived): _unless_draft_lost(_typed_answer),
    (StepKind.QUESTION, ButtonPressed): _unless_draft_lost(_pressed),
    (StepKind.SUMMARY, TextReceived): _unless_draft_lost(_buttons_only),
    (StepKind.SUMMARY, ButtonPressed): _unless_draft_lost(_pressed),
    (StepKind.STATUS, TextReceived): _typed_code,
    (StepKind.EXIT, TextReceived): _typed_after_exit,
    (StepKind.SUBMITTING, Event): _interrupted,
    (StepKind.SUBMITTING, ButtonPressed): _exit_or_interrupted,
    (StepKind.SUBMITTING, CommandReceived): _exit_or_interrupted,
    (StepKind.SUBMITTING, QuickExitRequested): _quick_exit,
    (StepKind.SUBMITTING, RequestStored): _stored,
    (StepKind.SUBMITTING, RequestFailed): _failed,
}


# ---- commands --------------------------------------------------------------------------------


def _menu_command(turn: Turn, _: str) -> None:
    turn.go(turn.flow.menu)


def _language_command(turn: Turn, _: str) -> None:
    turn.go(turn.step_of(StepKind.LANGUAGE))


def _exit_command(turn: Turn, _: str) -> None:
    turn.quick_exit()


def _forget_command(turn: Turn, _: str) -> None:
    turn.go(turn.step_of(StepKind.FORGET))


def _status_command(turn: Turn, argument: str) -> None:
    if argument.strip():
        _check_status(turn, argument)
    else:
        turn.go(turn.step_of(StepKind.STATUS))


_COMMANDS: Mapping[str, Callable[[Turn, str], None]] = {
    "menu": _menu_command,
    "help": _menu_command,
    "language": _language_command,
    "exit": _exit_command,
    "forget": _forget_command,
    "status": _status_command,
}


def _check_status(turn: Turn, typed: str) -> None:
    code = reference_code(typed)
    if code is None:
        turn.say("status_bad_code")
        turn.go(turn.step_of(StepKind.STATUS))
    else:
        turn.effects.append(CheckStatus(code))


# ---- navigation --------------------------------------------------------------------------------


def _open(turn: Turn, step_id: str) -> None:
    """A navigation button. A question there starts the form, or goes back to where she was
    in it: leaving the form never loses her answers."""
    if turn.flow.step(step_id).kind != StepKind.QUESTION:
        turn.go(step_id)
    elif turn.has_draft:
        _resume(turn)
    else:
        turn.forget_draft()
        advance(turn, step_id)


def _resume(turn: Turn) -> None:
    """ "Continue my request": back to the form step she was on, every answer kept."""
    if not turn.has_draft:
        # An old button, after the draft expired or was deleted.
        turn.say("draft_gone")
        turn.forget_draft()
        turn.go(turn.flow.menu)
        return
    assert turn.state.resume is not None
    target = turn.state.resume if turn.state.resume in turn.flow.steps else turn.flow.form[0]
    advance(turn, target)
