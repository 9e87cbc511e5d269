"""Disclosure control for every count safebot shows or exports (pure: no I/O).

A table of counts is shown with its row totals, column totals and grand total. Counts from 1
to 9 are hidden as "fewer than 10" (primary suppression); zero may show as zero. Then more
cells are withheld (secondary suppression) until no hidden cell can be worked out from what
is shown: with the totals, every line of the table is an equation, and a hidden cell is
determined exactly when it is a *bridge* in the graph whose nodes are the table's rows and
columns (totals included) and whose edges are the hidden cells. A hidden cell on a cycle can
move up by one while its neighbours on the cycle move down, every sum unchanged, so it is not
determined; the loop below withholds the smallest further cell until no hidden cell is a
bridge (ignoring the bounds 1-9, which an attacker may also use: see the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FEWER_THAN_TEN = "fewer than 10"
WITHHELD = "withheld"
SMALL_MAX = 9

Pos = tuple[int, int]  # (row, column) in the table with totals: the last row/column are totals


@dataclass(frozen=True)
class Protected:
    """What may be shown: the cells with their totals (last column: row totals; last row:
    column totals; bottom right: the grand total), each a number or a label."""

    shown: tuple[tuple[str, ...], ...]
    hidden: frozenset[Pos]
    primary: frozenset[Pos]


def with_totals(cells: Sequence[Sequence[int]]) -> list[list[int]]:
    rows = [[*r, sum(r)] for r in cells]
    width = len(rows[0]) if rows else 1
    rows.append([sum(r[c] for r in rows) for c in range(width)])
    return rows


def protect(cells: Sequence[Sequence[int]]) -> Protected:
    """Hide what must be hidden in `cells` (a rectangle of counts, at least one cell)."""
    if not cells or not cells[0] or any(len(r) != len(cells[0]) for r in cells):
        raise ValueError("a table needs at least one cell and rows of equal length")
    if any(v < 0 for r in cells for v in r):
        raise ValueError("counts are never negative")
    table = with_totals(cells)
    primary = {
        (i, j)
        for i, row in enumerate(table)
        for j, v in enumerate(row)
        if 1 <= v <= SMALL_MAX
    }
    hidden = set(primary)
    while (bridge := _first_bridge(hidden)) is not None:
        hidden.add(_next_to_withhold(table, hidden, bridge))
    shown = tuple(
        tuple(
            FEWER_THAN_TEN if (i, j) in primary else WITHHELD if (i, j) in hidden else str(v)
            for j, v in enumerate(row)
        )
        for i, row in enumerate(table)
    )
    return Protected(shown, frozenset(hidden), frozenset(primary))


# ---- the graph of hidden cells -------------------------------------------------------------
# Nodes: ("r", i) for row i and ("c", j) for column j; a hidden cell (i, j) is an edge.


Node = tuple[str, int]


def _neighbours(hidden: set[Pos], skip: Pos | None) -> dict[Node, list[Node]]:
    graph: dict[Node, list[Node]] = {}
    for i, j in hidden:
        if (i, j) == skip:
            continue
        graph.setdefault(("r", i), []).append(("c", j))
        graph.setdefault(("c", j), []).append(("r", i))
    return graph


def _reach(graph: dict[Node, list[Node]], start: Node) -> set[Node]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def is_bridge(hidden: set[Pos], cell: Pos) -> bool:
    """Whether hidden `cell` is determined by the rest: no other path joins its row and column."""
    i, j = cell
    return ("c", j) not in _reach(_neighbours(hidden, cell), ("r", i))


def _first_bridge(hidden: set[Pos]) -> Pos | None:
    for cell in sorted(hidden):
        if is_bridge(hidden, cell):
            return cell
    return None


def _next_to_withhold(table: list[list[int]], hidden: set[Pos], bridge: Pos) -> Pos:
    """The smallest shown cell that puts `bridge` on a cycle (one joining the two sides the
    bridge separates), else the smallest shown cell that grows its side; non-zero first,
    because a withheld zero protects less."""
    graph = _neighbours(hidden, bridge)
    side_a = _reach(graph, ("r", bridge[0]))
    side_b = _reach(graph, ("c", bridge[1]))

    def rank(pos: Pos) -> tuple[bool, int, Pos]:
        value = table[pos[0]][pos[1]]
        return (value == 0, value, pos)

    shown = [
        (i, j)
        for i in range(len(table))
        for j in range(len(table[0]))
        if (i, j) not in hidden
    ]
    joining = [
        (i, j)
        for i, j in shown
        if (("r", i) in side_a and ("c", j) in side_b)
        or (("r", i) in side_b and ("c", j) in side_a)
    ]
    if joining:
        return min(joining, key=rank)
    either = side_a | side_b
    growing = [(i, j) for i, j in shown if ("r", i) in either or ("c", j) in either]
    return min(growing or shown, key=rank)
