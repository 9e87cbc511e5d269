"""One turn in the making: the state so far and the replies and effects it has gathered.

Transitions (`flows.transitions`, `flows.actions`) move between screens only with `go`,
`quick_exit` and `show_change_list`, so that the rules of a screen change live in one place:
a new screen gets a new sequence number, and leaving the "sent" screen forgets the reference
code. Other state (the language, `editing`) they set directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows import render
from flows.context import Context
from flows.definition import Flow, Step
from flows.deployment import Deployment
from flows.effects import DeleteConversation, Effect
from flows.kinds import StepKind
from flows.replies import Reply
from flows.state import ConversationState

_FORM_KINDS = frozenset({StepKind.QUESTION, StepKind.SUMMARY})


@dataclass
class Turn:
    ctx: Context
    state: ConversationState
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    @property
    def flow(self) -> Flow:
        return self.ctx.flow

    @property
    def deployment(self) -> Deployment:
        return self.ctx.deployment

    @property
    def language(self) -> str:
        return self.state.language or self.deployment.default_language

    @property
    def current(self) -> Step:
        return self.flow.step(self.state.step)

    def step_of(self, kind: StepKind) -> str:
        """The id of the flow's one step of `kind` (the loader checks there is one)."""
        return self.flow.by_kind[kind]

    def say(self, key: str, *more: str, **values: str) -> None:
        """A notice of its own (the strings `key` and `more`, one paragraph each), ahead of
        the screen that follows it."""
        self.replies.append(render.notice(self.ctx, self.state, key, *more, **values))

    def show(self, *, offer_help: bool = False, language_page: int = 0) -> None:
        """The current screen (again); `offer_help` puts "I need help now" on top."""
        self.replies.append(
            render.screen(
                self.ctx, self.state, offer_help=offer_help, language_page=language_page
            )
        )

    def go(
        self, step_id: str, *, language_page: int = 0, offer_help: bool = False, **changes: Any
    ) -> None:
        """Move to `step_id` as a new screen and show it (the language list at a page: the
        page is not kept, a screen shown again starts at the first)."""
        if self.current.kind == StepKind.DONE and step_id != self.state.step:
            # The reference code is kept (encrypted) only until the person leaves that screen.
            changes.setdefault("answers", {})
        if self.flow.step(step_id).kind in _FORM_KINDS:
            # Where "Continue my request" takes her back to, should she leave the form.
            changes.setdefault("resume", step_id)
        self.state = self.state.with_(step=step_id, seq=self.state.seq + 1, **changes)
        self.show(language_page=language_page, offer_help=offer_help)

    def show_change_list(self) -> None:
        """The summary's list of answers to change: a new screen, though the step stays."""
        self.state = self.state.with_(seq=self.state.seq + 1)
        self.replies.append(render.change_list(self.ctx, self.state))

    def show_cancel_confirm(self) -> None:
        """The summary's "delete your answers?" question: a new screen, though the step stays."""
        self.state = self.state.with_(seq=self.state.seq + 1)
        self.replies.append(render.cancel_confirm(self.ctx, self.state))

    def forget_draft(self) -> None:
        self.state = self.state.with_(answers={}, editing=False, resume=None)

    @property
    def has_draft(self) -> bool:
        return bool(self.state.answers) and self.state.resume is not None

    def stale(self) -> None:
        """A press the current screen does not offer: say so and show where the person is."""
        if self.current.kind == StepKind.EXIT:
            # After a quick exit any old button simply starts again, as if the chat were new.
            self.go(self.flow.entry)
            return
        self.say("stale_button")
        self.show()

    def draft_expired(self) -> None:
        """The answers are gone: never carry on, or submit, without them."""
        self.say("draft_expired")
        self.forget_draft()
        self.go(self.flow.menu)

    def quick_exit(self) -> None:
        """Delete the chat and keep nothing but the language: the neutral exit line."""
        self.effects.append(DeleteConversation())
        self.state = ConversationState(
            step=self.step_of(StepKind.EXIT),
            language=self.state.language,
            seq=self.state.seq + 1,
            flow_version=self.flow.version,
        )
        self.show()
