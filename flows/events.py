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
class CampaignChecked(Event):
    """Outcome of `OpenCampaign`: whether the link's campaign is live (and was counted).
    Carries the start's language hint, for a start that is not a campaign's after all."""

    code: str
    language: str
    active: bool
    language_hint: str | None = None


@dataclass(frozen=True)
class Forgotten(Event):
    """The edges removed what the victim asked to be forgotten."""

    withdrawn: bool = False


# ---- codec: events cross the durable inbox as plain JSON ------------------------------------

_PERSON_EVENTS: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        Started,
        CommandReceived,
        ButtonPressed,
        TextReceived,
        NonTextReceived,
        QuickExitRequested,
    )
}


_OPTIONAL = frozenset({"language_hint"})


def event_to_json(event: Event) -> dict[str, object]:
    """What the person did, as JSON (only the events a channel produces)."""
    name = type(event).__name__
    if name not in _PERSON_EVENTS:
        raise ValueError(f"{name} is not a person's event")
    return {"type": name, **{k: v for k, v in vars(event).items()}}


def event_from_json(data: object) -> Event | None:
    """The event back; None for anything that does not decode to one exactly."""
    if not isinstance(data, dict):
        return None
    cls = _PERSON_EVENTS.get(str(data.get("type")))
    if cls is None:
        return None
    fields = {k: v for k, v in data.items() if k != "type"}
    # Every field is text; only the language hint may be absent.
    if not all(isinstance(v, str) or (v is None and k in _OPTIONAL) for k, v in fields.items()):
        return None
    try:
        return cls(**fields)
    except TypeError:
        return None
