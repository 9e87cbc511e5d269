"""Events cross the durable inbox as JSON: every person's event round-trips, and anything
that is not exactly one of them decodes to None (never an event the engine would choke on)."""

from __future__ import annotations

import pytest

from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    NonTextReceived,
    QuickExitRequested,
    RequestStored,
    Started,
    TextReceived,
    event_from_json,
    event_to_json,
)

EVENTS: list[Event] = [
    Started(),
    Started(payload="pl", language_hint="pl-PL"),
    Started(payload="", language_hint=None),
    CommandReceived("status", "1234 5678"),
    ButtonPressed("a:3:yes"),
    TextReceived("zażółć \u202e <b>"),
    NonTextReceived("photo"),
    QuickExitRequested(),
]


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_round_trip(event: Event) -> None:
    assert event_from_json(event_to_json(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "TextReceived",
        {"type": "TextReceived"},
        {"type": "TextReceived", "text": None},
        {"type": "TextReceived", "text": 5},
        {"type": "ButtonPressed", "data": None},
        {"type": "CommandReceived", "name": "status", "argument": None},
        {"type": "TextReceived", "text": "x", "extra": "y"},
        {"type": "RequestStored", "reference": "1"},
        {"type": "Nope"},
    ],
)
def test_anything_else_is_refused(data: object) -> None:
    assert event_from_json(data) is None


def test_edge_events_cannot_be_stored() -> None:
    with pytest.raises(ValueError):
        event_to_json(RequestStored("1"))
