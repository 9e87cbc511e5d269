"""Jargon is explained where it first appears (content brief): in the English, the first screen
in flow file order that uses a term also says what it is, in the same screen: the term followed
by "is", "means", "would mean", "(a ...", ", who is ..." or, after a quoted term, "It means"."""

from __future__ import annotations

import re

import pytest

from flows.definition import Flow, Step, load_flow

TERMS = [
    "Immigration Enforcement",
    "no recourse to public funds",
    "legal aid",
    "solicitor",
    "end-to-end encryption",
]
# What may come between the term and its explanation: a closing quote, a full stop, a comma.
_EXPLAINED = (
    r"{term}[\"”’']?"
    r"(?:\s+(?:is|means|would mean)\b"
    r"|\s*\(an?\s"
    r"|,\s+(?:who|which) is\b"
    r"|[\"”’']?\.\s+It means\b)"
)


def screen_text(step: Step) -> str:
    return "\n".join([step.title, *step.text])


def first_use(flow: Flow, term: str) -> Step | None:
    """The first step, in file order, whose words use `term` (any case)."""
    for step in flow.steps.values():
        if term.lower() in screen_text(step).lower():
            return step
    return None


def explains(text: str, term: str) -> bool:
    pattern = _EXPLAINED.format(term=re.escape(term))
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


@pytest.mark.parametrize("term", TERMS)
def test_jargon_is_explained_where_it_first_appears(term: str) -> None:
    flow = load_flow()
    step = first_use(flow, term)
    assert step is not None, f"no screen uses {term!r}: update TERMS"
    assert explains(screen_text(step), term), (
        f"{step.id!r} is the first screen to say {term!r} but does not explain it"
    )


@pytest.mark.parametrize(
    ("text", "term", "expected"),
    [
        (
            "Immigration Enforcement is the part of the Home Office.",
            "Immigration Enforcement",
            True,
        ),
        (
            'Some visas say "no recourse to public funds". It means ...',
            "no recourse to public funds",
            True,
        ),
        ("Ask a solicitor, who is a kind of lawyer.", "solicitor", True),
        ("End-to-end encryption would mean only you can read it.", "end-to-end encryption", True),
        ("Legal aid (a kind of free help) may help.", "legal aid", True),
        ("Ask a solicitor.", "solicitor", False),
        ("They will not tell Immigration Enforcement.", "Immigration Enforcement", False),
        ("Legal aid may help too.", "legal aid", False),
        ("Legal aid is not for everyone. Ask a solicitor.", "solicitor", False),
    ],
)
def test_the_check_tells_an_explanation_from_a_mere_use(
    text: str, term: str, expected: bool
) -> None:
    assert explains(text, term) is expected


def test_the_first_screen_fails_without_its_explanation() -> None:
    flow = load_flow()
    step = first_use(flow, "Immigration Enforcement")
    assert step is not None
    without = [p for p in step.text if not p.startswith("Immigration Enforcement is")]
    assert not explains("\n".join([step.title, *without]), "Immigration Enforcement")
