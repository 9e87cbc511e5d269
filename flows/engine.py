"""The conversation engine: the only code that moves a conversation's state.

    step(ctx, state, event) -> Outcome(state, replies, effects)

Rules:
1. Pure. No clock, randomness, logging or I/O; the edges pass everything in and perform the
   effects. Any person's input, however odd, yields a defined reply, never an exception.
2. Acknowledge after the effect. Confirming a request moves to the `submitting` step and emits
   `SubmitRequest`; only `RequestStored` leads to the screen that says it was received, and
   `RequestFailed` (or any event met in `submitting`, which means the process died mid-way)
   says it was not.
3. Buttons are untrusted. Question buttons carry the screen's sequence number; a press from
   an older screen is answered as stale and the current screen is shown again.
4. Quick exit, language and menu work from every screen, including stale messages.

Where the parts live:
    flows.transitions   what each event does on each kind of step (the transition table)
    flows.form          the contact form's rules: `when` conditions, skipping, completeness
    flows.render        a state as the `Reply` the person sees
    flows.callbacks     the buttons' callback data (`x`, `l`, `m`, `L:`, `g:`, `a:`)
"""

from __future__ import annotations

from dataclasses import dataclass

from flows import render
from flows.context import Context
from flows.definition import Flow
from flows.effects import Effect
from flows.events import Event
from flows.replies import Reply
from flows.state import ConversationState
from flows.transitions import dispatch
from flows.turn import Turn

__all__ = ["Context", "Outcome", "initial_state", "render_screen", "step"]


@dataclass(frozen=True)
class Outcome:
    state: ConversationState
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()


def initial_state(flow: Flow) -> ConversationState:
    return ConversationState(step=flow.entry, flow_version=flow.version)


def step(ctx: Context, state: ConversationState, event: Event) -> Outcome:
    turn = Turn(ctx, _sane(ctx, state))
    dispatch(turn, event)
    return Outcome(turn.state, tuple(turn.replies), tuple(turn.effects))


def render_screen(ctx: Context, state: ConversationState) -> Reply:
    """The screen for `state` as the engine would show it (for checks and previews)."""
    return render.screen(ctx, state)


def _sane(ctx: Context, state: ConversationState) -> ConversationState:
    """A stored state from an older flow, or whose step is gone, restarts at the menu."""
    if state.step not in ctx.flow.steps or state.flow_version != ctx.flow.version:
        return ConversationState(
            step=ctx.flow.menu,
            language=state.language if state.language in ctx.deployment.languages else None,
            seq=state.seq,
            flow_version=ctx.flow.version,
        )
    return state
