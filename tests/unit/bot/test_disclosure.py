"""Disclosure control: no number from 1 to 9 is ever shown, and no hidden cell can be worked
out from the rest of the table and its totals."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.disclosure import FEWER_THAN_TEN, WITHHELD, is_bridge, protect, with_totals

counts = st.integers(min_value=0, max_value=60) | st.integers(min_value=0, max_value=9)
tables = st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.lists(st.lists(counts, min_size=width, max_size=width), min_size=1, max_size=4)
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_no_number_from_one_to_nine_is_ever_shown(cells: list[list[int]]) -> None:
    for row in protect(cells).shown:
        for text in row:
            assert text in (FEWER_THAN_TEN, WITHHELD) or not 1 <= int(text) <= 9


@settings(max_examples=300, deadline=None)
@given(tables)
def test_no_hidden_cell_is_determined_by_the_rest(cells: list[list[int]]) -> None:
    result = protect(cells)
    hidden = set(result.hidden)
    for cell in hidden:
        assert not is_bridge(hidden, cell), (cells, cell)
    # What is shown is the truth.
    table = with_totals(cells)
    for i, row in enumerate(result.shown):
        for j, text in enumerate(row):
            if (i, j) not in hidden:
                assert int(text) == table[i][j]


def completions(cells: list[list[int]]) -> list[list[list[int]]]:
    """Every table an onlooker could believe from what is shown (brute force, tiny tables):
    hidden small counts are 1-9, withheld ones 0 or 10-30, and every total holds."""
    result = protect(cells)
    table = with_totals(cells)
    hidden = sorted(result.hidden)
    ranges = [range(1, 10) if pos in result.primary else [0, *range(10, 31)] for pos in hidden]
    found = []
    for values in itertools.product(*ranges):
        guess = [row[:] for row in table]
        for (i, j), v in zip(hidden, values, strict=True):
            guess[i][j] = v
        inner = [row[:-1] for row in guess[:-1]]
        if with_totals(inner) == guess:
            found.append(guess)
    return found


@pytest.mark.parametrize(
    "cells",
    [[[3]], [[3, 12]], [[0, 4, 11]], [[2, 0], [0, 15]]],  # small enough to try every guess
)
def test_every_hidden_cell_could_be_something_else(cells: list[list[int]]) -> None:
    result = protect(cells)
    believed = completions(cells)
    assert with_totals(cells) in believed
    for i, j in result.hidden:
        assert len({guess[i][j] for guess in believed}) >= 2, (cells, (i, j))


def test_zeros_stay_and_big_counts_show() -> None:
    result = protect([[0, 25], [40, 0]])
    assert result.shown == (("0", "25", "25"), ("40", "0", "40"), ("40", "25", "65"))
