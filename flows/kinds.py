"""The closed vocabularies shared by the flow file, the engine and storage.

Each member's value is the exact string written in flow files, kept in conversation state
and stored in the database, so changing a value is a data migration, not a rename.
"""

from __future__ import annotations

from enum import StrEnum


class StepKind(StrEnum):
    """What a step is; the `kind` of a `[steps.<id>]` table."""

    # information: title, paragraphs, optional dynamic blocks, navigation buttons
    SCREEN = "screen"
    # asks for one answer (`input`); may be skipped when `optional`; may be shown only
    # `when` an earlier answer (or the deployment) matches
    QUESTION = "question"
    # shows the draft answers: confirm, change one, or cancel
    SUMMARY = "summary"
    # waits for the edges to store the request (never shown as a screen of its own)
    SUBMITTING = "submitting"
    # the request was stored: shows the reference code
    DONE = "done"
    # the list of languages, each in its own name
    LANGUAGE = "language"
    # asks for a reference code and reports whether it was picked up
    STATUS = "status"
    # asks to confirm "delete what I told you"
    FORGET = "forget"
    # the neutral line left after a quick exit
    EXIT = "exit"


# Kinds the engine jumps to by kind, so a flow has exactly one step of each.
SINGLE_KINDS = (
    StepKind.SUMMARY,
    StepKind.SUBMITTING,
    StepKind.DONE,
    StepKind.LANGUAGE,
    StepKind.STATUS,
    StepKind.FORGET,
    StepKind.EXIT,
)


class InputKind(StrEnum):
    """What a question takes; its `input`."""

    CHOICE = "choice"  # one of its buttons
    # any number of its buttons, then Done; with `own_text`, typed words count as one more
    CHOICES = "choices"
    TEXT = "text"
    PHONE = "phone"  # stored in E.164
    EMAIL = "email"


# Inputs typed as a message rather than chosen with a button.
TYPED_INPUTS = frozenset({InputKind.TEXT, InputKind.PHONE, InputKind.EMAIL})


class RequestStatus(StrEnum):
    """A stored contact request's status (`contact_requests.status`)."""

    NEW = "new"  # sealed and stored; no advocate has opened it
    PICKED_UP = "picked_up"  # an advocate opened it
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"  # the victim asked to forget it after it was picked up


# What a status check reports for a request deleted on the victim's wish or by the purge
# (storage keeps a keyed trace of its reference number for a while; not a stored status).
REMOVED_STATUS = "deleted"
