"""What the edges must do after a step: the engine's requests for I/O.

Effects are imperatives. The engine never performs them; `bot/effects.py` does, and feeds
the outcome back as an event (h11's `send_failed`): a request is acknowledged only after the
edges report `RequestStored`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Effect:
    """Base of every effect."""


@dataclass(frozen=True)
class SubmitRequest(Effect):
    """Seal the answers for the receiving organisation and store them durably."""

    answers: Mapping[str, str] = field(default_factory=dict)
    language: str = "en"
    urgent: bool = False
    organisation: str | None = None
    # The outreach campaign she came in by: counted as `requested` once the request is stored.
    campaign: str | None = None


@dataclass(frozen=True)
class DeleteConversation(Effect):
    """Delete every message of this conversation the channel can delete."""


@dataclass(frozen=True)
class ForgetMe(Effect):
    """Remove state, drafts and any request not yet picked up; mark picked-up ones withdrawn."""


@dataclass(frozen=True)
class CheckStatus(Effect):
    """Look up a reference code; answered with `StatusChecked`."""

    code: str


@dataclass(frozen=True)
class OpenCampaign(Effect):
    """A start from an outreach link: if campaign `code` is live, count a start in `language`
    for this week. Answered with `CampaignChecked`; the payload itself goes no further."""

    code: str
    language: str
    language_hint: str | None = None
