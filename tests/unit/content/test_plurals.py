"""Every plural string in every shipped language, for every plural category that language has
(CLDR, through Babel): each category's number gets a written form that says the number."""

from __future__ import annotations

import pytest
from babel import Locale

from flows.definition import load_flow
from flows.i18n import load_catalogs

CATALOGS = load_catalogs()
FLOW = load_flow()
NUMBERS = range(0, 201)  # reaches every category CLDR defines for integers


def categories(language: str) -> dict[str, list[int]]:
    """CLDR's plural categories of `language`, each with the integers in 0..200 it takes."""
    rule = Locale.parse(language).plural_form
    found: dict[str, list[int]] = {}
    for n in NUMBERS:
        found.setdefault(rule(n), []).append(n)
    return found


@pytest.mark.parametrize("language", CATALOGS.languages)
@pytest.mark.parametrize("key", sorted(FLOW.plurals))
def test_every_plural_category_has_its_own_written_form(language: str, key: str) -> None:
    singular, plural = FLOW.plurals[key]
    tr = CATALOGS.get(language)
    by_category = categories(language)
    assert by_category, language
    for category, numbers in by_category.items():
        for n in (numbers[0], numbers[-1]):
            text = tr.ngettext(singular, plural, n)
            # A category of one number may say it in words (Arabic: "one day", "two days").
            assert "{n}" in text or len(numbers) == 1, (language, key, category, n, text)
            if language != CATALOGS.source_language:
                assert text not in (singular, plural), (language, key, category, "English")


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", {"one", "other"}), ("pl", {"one", "few", "many"}), ("ar", {"zero", "one", "two",
     "few", "many", "other"})],
)  # fmt: skip
def test_the_categories_are_cldrs(language: str, expected: set[str]) -> None:
    # "other" in Polish covers only fractions, which a count never is.
    assert set(categories(language)) == expected
