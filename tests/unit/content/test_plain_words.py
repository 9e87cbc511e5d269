"""Plain words (content brief, issue 12): the English source strings aim at a reading age of
about 9. Flesch reading ease: a median paragraph of 80 or more, and no sentence below 60
(paragraphs are split into sentences, so one hard sentence cannot hide among easy ones). The
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
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
MEDIAN_AT_LEAST = 80
EVERY_SENTENCE_AT_LEAST = 60


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
    """Victim-facing English: every screen's paragraphs, the interface strings that are
    sentences (six words or more) and both forms of every plural."""
    flow = load_flow()
    texts = [p for s in flow.steps.values() for p in s.text]
    texts += [v for v in flow.strings.values() if len(v.split()) >= 6]
    texts += [form for pair in flow.plurals.values() for form in pair]
    return [re.sub(r"\{[a-z_]+\}", "Name", t) for t in texts]


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_BREAK.split(paragraph) if s.strip()]


def all_sentences() -> list[str]:
    return list(dict.fromkeys(s for p in paragraphs() for s in sentences(p)))


def test_the_median_paragraph_is_easy_to_read() -> None:
    scores = [flesch(p) for p in paragraphs()]
    assert statistics.median(scores) >= MEDIAN_AT_LEAST, statistics.median(scores)


def test_the_median_sentence_is_easy_to_read() -> None:
    scores = [flesch(s) for s in all_sentences()]
    assert statistics.median(scores) >= MEDIAN_AT_LEAST, statistics.median(scores)


@pytest.mark.parametrize("sentence", all_sentences(), ids=lambda s: s[:50])
def test_no_sentence_is_hard_to_read(sentence: str) -> None:
    assert flesch(sentence) >= EVERY_SENTENCE_AT_LEAST, sentence


def test_sentences_are_split_where_they_end() -> None:
    assert sentences("Call 999. If you cannot speak, press 55! Is it safe? Yes") == [
        "Call 999.",
        "If you cannot speak, press 55!",
        "Is it safe?",
        "Yes",
    ]
    # a hard sentence is caught even inside an easy paragraph
    hidden = "Call 999. You can leave. " + (
        "Notwithstanding institutional interoperability considerations, comprehensive "
        "organisational accountability necessitates documentation."
    )
    assert flesch(hidden) > min(flesch(s) for s in sentences(hidden))
    assert min(flesch(s) for s in sentences(hidden)) < EVERY_SENTENCE_AT_LEAST


def test_the_measure_can_tell_hard_from_easy() -> None:
    hard = (
        "Notwithstanding the aforementioned considerations, institutional interoperability "
        "necessitates comprehensive organisational accountability mechanisms."
    )
    assert flesch(hard) < 30 < 80 < flesch("Call 999 if you are in danger now.")
