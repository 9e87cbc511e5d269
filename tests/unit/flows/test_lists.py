"""Lists joined as each language joins them (CLDR), with Welsh's "a"/"ac" chosen by sound."""

from __future__ import annotations

import pytest

from flows.context import Context
from flows.text import Text


def text(ctx: Context, language: str) -> Text:
    return Text(ctx.flow, ctx.deployment, ctx.catalogs.get(language), language)


@pytest.mark.parametrize(
    ("language", "items", "joined"),
    [
        ("en", ["Mornings", "Evenings", "Weekends"], "Mornings, Evenings, and Weekends"),
        ("pl", ["Rano", "Wieczorem"], "Rano i Wieczorem"),
        ("cy", ["Bore", "Gyda'r nos", "Penwythnos"], "Bore, Gyda'r nos, a Phenwythnos"),
        ("cy", ["Bore", "Cinio"], "Bore a Chinio"),  # aspirate mutation after "a"
        ("cy", ["Bore", "Gyda'r nos"], "Bore a Gyda'r nos"),  # no mutation of g
        ("cy", ["Bore", "Amser"], "Bore ac Amser"),  # "ac" before a vowel
        ("cy", ["Bore", "Unrhyw bryd"], "Bore ac Unrhyw bryd"),
    ],
)
def test_lists_are_joined_in_the_language(
    ctx: Context, language: str, items: list[str], joined: str
) -> None:
    assert text(ctx, language).list(items) == joined
    assert "a(c)" not in text(ctx, language).list(items)
