"""Plain words (content brief): the English source strings aim at a reading age of about 9.
Flesch reading ease, measured per paragraph: a median of 70 or more, none below 50. The
force's quoted policy wording is deployment data, not flow content, so it is not measured.
Syllables come from pyphen's hyphenation dictionary, a close, dependency-free proxy."""

from __future__ import annotations

import re
import statistics

import pyphen
import pytest

from flows.definition import load_flow

_DICT = pyphen.Pyphen(lang="en_GB")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def syllables(word: str) -> int:
    parts = _DICT.inserted(word.lower()).split("-")
    return max(1, len(parts))


def flesch(text: str) -> float:
    words = _WORD.findall(text)
    sentences = max(1, len(_SENTENCE_END.findall(text)))
    if not words:
        return 100.0
    total = sum(syllables(w) for w in words)
    return 206.835 - 1.015 * (len(words) / sentences) - 84.6 * (total / len(words))


def paragraphs() -> list[str]:
    flow = load_flow()
    texts = [p for s in flow.steps.values() for p in s.text]
    texts += [v for v in flow.strings.values() if len(v.split()) >= 6]
    return [re.sub(r"\{[a-z_]+\}", "Name", t) for t in texts]


def test_the_median_paragraph_is_easy_to_read() -> None:
    scores = [flesch(p) for p in paragraphs()]
    assert statistics.median(scores) >= 70, statistics.median(scores)


@pytest.mark.parametrize("paragraph", paragraphs())
def test_no_paragraph_is_hard_to_read(paragraph: str) -> None:
    assert flesch(paragraph) >= 50, paragraph


def test_the_measure_can_tell_hard_from_easy() -> None:
    hard = (
        "Notwithstanding the aforementioned considerations, institutional interoperability "
        "necessitates comprehensive organisational accountability mechanisms."
    )
    assert flesch(hard) < 30 < 80 < flesch("Call 999 if you are in danger now.")
