"""The conversation's state: what the engine needs to carry from one event to the next.

Frozen; the edges persist it. `answers` is the draft of a contact request, which the storage
layer encrypts at rest (with `resume` and the outreach `campaign`); everything else is routing
data with nothing personal in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ROUTING_FIELDS = ("step", "language", "seq", "editing", "flow_version")


@dataclass(frozen=True)
class ConversationState:
    step: str
    language: str | None = None
    # Increases with every rendered screen; question buttons carry it so a press on an
    # old message is recognised as stale instead of answering the wrong question.
    seq: int = 0
    answers: Mapping[str, str] = field(default_factory=dict)
    # Set while the victim changes one answer from the summary: go back there afterwards.
    editing: bool = False
    flow_version: int = 1
    # The form step she was last on, so "Continue my request" takes her back there. Kept with
    # the answers (encrypted, and gone with them), never in the clear.
    resume: str | None = None
    # The outreach campaign she came in by, until she sends a request (which counts it) or
    # her draft goes: kept only here, in the encrypted draft, never in a clear column.
    campaign: str | None = None

    def with_(self, **changes: Any) -> ConversationState:
        return replace(self, **changes)

    def draft(self) -> dict[str, Any]:
        """The part that is encrypted at rest."""
        draft: dict[str, Any] = {"answers": dict(self.answers), "resume": self.resume}
        if self.campaign is not None:
            draft["campaign"] = self.campaign
        return draft

    @property
    def has_draft_part(self) -> bool:
        """Whether there is anything to keep in the encrypted part."""
        return bool(self.answers) or self.campaign is not None

    def routing(self) -> dict[str, Any]:
        """The part stored in the clear, one column per field (ROUTING_FIELDS)."""
        return {name: getattr(self, name) for name in ROUTING_FIELDS}

    @classmethod
    def restore(
        cls, routing: Mapping[str, Any], draft: Mapping[str, Any] | None
    ) -> ConversationState:
        answers = dict((draft or {}).get("answers", {}))
        resume = (draft or {}).get("resume")
        campaign = (draft or {}).get("campaign")
        return cls(
            step=str(routing["step"]),
            language=routing.get("language"),
            seq=int(routing.get("seq", 0)),
            answers={str(k): str(v) for k, v in answers.items()},
            editing=bool(routing.get("editing", False)),
            flow_version=int(routing.get("flow_version", 1)),
            resume=str(resume) if resume and answers else None,
            campaign=campaign if isinstance(campaign, str) and campaign else None,
        )
