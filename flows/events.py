"""What a person (or the edges, reporting an effect's outcome) did: the engine's input.

Events are past-tense facts. Channels translate their own updates into these; the engine
never sees a Telegram object.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class Started(Event):
    """The person opened the conversation (/start), maybe through a deep link."""

    payload: str = ""
    language_hint: str | None = None


@dataclass(frozen=True)
class CommandReceived(Event):
    """A command other than /start: menu, help, language, exit, forget, status."""

    name: str
    argument: str = ""


@dataclass(frozen=True)
class ButtonPressed(Event):
    """An inline button was pressed. `data` comes back from the client: untrusted."""

    data: str


@dataclass(frozen=True)
class TextReceived(Event):
    text: str


@dataclass(frozen=True)
class NonTextReceived(Event):
    """A photo, sticker, voice note, location, edited message...: never stored."""

    kind: str


@dataclass(frozen=True)
class QuickExitRequested(Event):
    pass


@dataclass(frozen=True)
class RequestStored(Event):
    """The edges sealed and durably committed the contact request."""

    reference: str


@dataclass(frozen=True)
class RequestFailed(Event):
    """Sealing or storing failed: the victim must be told, never told it was received."""


@dataclass(frozen=True)
class StatusChecked(Event):
    """Outcome of a /status lookup: None when the code matches nothing."""

    status: str | None


@dataclass(frozen=True)
class Forgotten(Event):
    """The edges removed what the victim asked to be forgotten."""

    withdrawn: bool = False
