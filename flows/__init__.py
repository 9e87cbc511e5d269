"""The conversation, channel-agnostic and pure: flow definitions, the engine, validators and
localisation. No I/O happens here; channels translate their updates into `events`, show the
`replies`, and perform the `effects`."""

from flows.definition import Flow, load_flow
from flows.deployment import Deployment, parse_deployment
from flows.effects import CheckStatus, DeleteConversation, Effect, ForgetMe, SubmitRequest
from flows.engine import Context, Outcome, initial_state, step
from flows.errors import FlowError
from flows.events import (
    ButtonPressed,
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
from flows.i18n import Catalogs, load_catalogs
from flows.replies import Button, Reply
from flows.state import ConversationState

__all__ = [
    "Button",
    "ButtonPressed",
    "Catalogs",
    "CheckStatus",
    "CommandReceived",
    "Context",
    "ConversationState",
    "DeleteConversation",
    "Deployment",
    "Effect",
    "Event",
    "Flow",
    "FlowError",
    "ForgetMe",
    "Forgotten",
    "NonTextReceived",
    "Outcome",
    "QuickExitRequested",
    "Reply",
    "RequestFailed",
    "RequestStored",
    "Started",
    "StatusChecked",
    "SubmitRequest",
    "TextReceived",
    "initial_state",
    "load_catalogs",
    "load_flow",
    "parse_deployment",
    "step",
]
