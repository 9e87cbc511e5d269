"""The shared vocabularies: their values are data (flow files, state, the database)."""

from __future__ import annotations

from flows.definition import INPUT_KINDS, STEP_KINDS
from flows.kinds import InputKind, RequestStatus, StepKind


def test_values_are_the_strings_already_stored() -> None:
    assert {k.value for k in StepKind} == {
        "screen",
        "question",
        "summary",
        "submitting",
        "done",
        "language",
        "status",
        "forget",
        "exit",
    }
    assert {k.value for k in InputKind} == {"choice", "choices", "text", "phone", "email"}
    assert [s.value for s in RequestStatus] == ["new", "picked_up", "closed", "withdrawn"]


def test_members_compare_and_hash_as_their_strings() -> None:
    assert RequestStatus.PICKED_UP == "picked_up"
    assert {"new": 1}[RequestStatus.NEW] == 1
    assert f"{StepKind.QUESTION}" == "question"
    assert "question" in STEP_KINDS and "slider" not in INPUT_KINDS
    assert "choices" in INPUT_KINDS and InputKind.CHOICES == "choices"
