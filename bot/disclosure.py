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

Linked tables: one output (a report) shows several tables, and the same figure may be in more
than one of them (the grand total of requests in the table by campaign and in the table by
week). `protect_all` hides such a shared figure in every table or shows it in every one: a
table where it is hidden gets it as `force_hidden` in the others, and each table is protected
again (so its own hidden cells stay off bridges) until nothing changes. `determined` checks a
whole linked output exactly (linear algebra over every table's equations at once); the
property tests use it on the outputs as printed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

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


def protect(
    cells: Sequence[Sequence[int]], force_hidden: Collection[Pos] = frozenset()
) -> Protected:
    """Hide what must be hidden in `cells` (a rectangle of counts, at least one cell).

    `force_hidden`: positions in the table with totals (as `Protected.hidden`) to withhold
    whatever their value, because the same figure is hidden in a linked table."""
    if not cells or not cells[0] or any(len(r) != len(cells[0]) for r in cells):
        raise ValueError("a table needs at least one cell and rows of equal length")
    if any(v < 0 for r in cells for v in r):
        raise ValueError("counts are never negative")
    table = with_totals(cells)
    height, width = len(table), len(table[0])
    if any(not (0 <= i < height and 0 <= j < width) for i, j in force_hidden):
        raise ValueError("a forced position is outside the table")
    primary = {
        (i, j) for i, row in enumerate(table) for j, v in enumerate(row) if 1 <= v <= SMALL_MAX
    }
    hidden = primary | set(force_hidden)
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
        (i, j) for i in range(len(table)) for j in range(len(table[0])) if (i, j) not in hidden
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


# ---- linked tables ---------------------------------------------------------------------------

Cell = tuple[int, Pos]  # (table index, position in that table with totals)


def protect_all(
    tables: Sequence[Sequence[Sequence[int]]], shared: Iterable[Collection[Cell]] = ()
) -> list[Protected]:
    """Protect the tables of one output together. Each group in `shared` is one figure that
    appears at several cells (of different tables, or of one): it ends hidden at every one of
    them or at none. Then the whole output is checked exactly (`determined`): the equations
    of linked tables together can pin down a cell that neither pins down alone, and then one
    more cell is withheld and all of it runs again. The withheld cells only grow, so it ends
    (with everything withheld, nothing is determined)."""
    groups = [tuple(group) for group in shared]
    for group in groups:
        for t, _pos in group:
            if not 0 <= t < len(tables):
                raise ValueError("a shared cell names no table")
    shapes = [(len(cells) + 1, len(cells[0]) + 1) for cells in tables]
    forced: list[set[Pos]] = [set() for _ in tables]
    while True:
        results = _linked(tables, groups, forced)
        stuck = determined(shapes, [r.hidden for r in results], groups)
        if not stuck:
            return results
        t, pos = _to_withhold(tables, results, groups, shapes, min(stuck))
        forced[t].add(pos)


def _linked(
    tables: Sequence[Sequence[Sequence[int]]],
    groups: Sequence[tuple[Cell, ...]],
    forced: list[set[Pos]],
) -> list[Protected]:
    """Each table protected with `forced` hidden, and `forced` grown, until every shared
    figure is hidden everywhere or nowhere."""
    while True:
        results = [protect(cells, forced[t]) for t, cells in enumerate(tables)]
        grew = False
        for group in groups:
            if any(pos in results[t].hidden for t, pos in group):
                for t, pos in group:
                    if pos not in results[t].hidden:
                        forced[t].add(pos)
                        grew = True
        if not grew:
            return results


def _to_withhold(
    tables: Sequence[Sequence[Sequence[int]]],
    results: Sequence[Protected],
    groups: Sequence[tuple[Cell, ...]],
    shapes: Sequence[tuple[int, int]],
    stuck: Cell,
) -> Cell:
    """A shown cell to withhold so that hidden cell `stuck` is no longer determined: in a
    line through it (in any table its figure is in), the smallest that frees it, non-zero
    first; else the smallest of those; else the smallest shown cell anywhere."""
    full = [with_totals(cells) for cells in tables]
    group_of: dict[Cell, tuple[Cell, ...]] = {}
    for group in groups:
        for cell in group:
            group_of[cell] = group_of.get(cell, ()) + group

    def rank(cell: Cell) -> tuple[bool, int, Cell]:
        value = full[cell[0]][cell[1][0]][cell[1][1]]
        return (value == 0, value, cell)

    def shown(cell: Cell) -> bool:
        return cell[1] not in results[cell[0]].hidden

    near: set[Cell] = set()
    for t, (i, j) in {stuck, *group_of.get(stuck, ())}:
        height, width = shapes[t]
        near |= {(t, (i, b)) for b in range(width)} | {(t, (a, j)) for a in range(height)}
    candidates = sorted((c for c in near if shown(c)), key=rank)
    for candidate in candidates:
        hidden = [set(r.hidden) for r in results]
        for t, pos in {candidate, *group_of.get(candidate, ())}:
            hidden[t].add(pos)
        if stuck not in determined(shapes, hidden, groups):
            return candidate
    if candidates:
        return candidates[0]
    everywhere = [
        (t, (i, j))
        for t, (height, width) in enumerate(shapes)
        for i in range(height)
        for j in range(width)
        if shown((t, (i, j)))
    ]
    if not everywhere:
        raise AssertionError("with every cell withheld no cell can be determined")
    return min(everywhere, key=rank)


def determined(
    shapes: Sequence[tuple[int, int]],
    hidden: Sequence[Collection[Pos]],
    shared: Iterable[Collection[Cell]] = (),
) -> set[Cell]:
    """The hidden cells an onlooker can work out exactly from what is shown: `shapes` are the
    tables' sizes with totals (rows, columns), `hidden` their hidden positions, `shared` the
    cells that hold one figure. Every line of every table (its cells add up to its total) is
    an equation; a hidden cell is determined when every change to the hidden cells that keeps
    all of them holding leaves it unchanged (bounds ignored, as in `protect`). A shared
    figure shown in any table is known in all of them."""
    figure: dict[Cell, int] = {}  # cell -> its figure (shared cells have one between them)
    next_id = 0
    for group in shared:
        ids = {figure[c] for c in group if c in figure}
        new = min(ids) if ids else next_id
        next_id += 1
        for cell, fid in list(figure.items()):
            if fid in ids:
                figure[cell] = new
        for cell in group:
            figure[cell] = new
    for t, (height, width) in enumerate(shapes):
        for i in range(height):
            for j in range(width):
                if (t, (i, j)) not in figure:
                    figure[(t, (i, j))] = next_id
                    next_id += 1
    known = {fid for (t, pos), fid in figure.items() if pos not in hidden[t]}
    unknowns: dict[int, int] = {}
    for (t, pos), fid in sorted(figure.items()):
        if pos in hidden[t] and fid not in known:
            unknowns.setdefault(fid, len(unknowns))
    equations: list[dict[int, Fraction]] = []
    for t, (height, width) in enumerate(shapes):
        lines = [[(i, j) for j in range(width)] for i in range(height)]
        lines += [[(i, j) for i in range(height)] for j in range(width)]
        for line in lines:
            # The last cell of a line is its total: the others add up to it.
            equation: dict[int, Fraction] = {}
            for k, pos in enumerate(line):
                var = unknowns.get(figure[(t, pos)])
                if var is None:
                    continue
                coefficient = Fraction(-1 if k == len(line) - 1 else 1)
                equation[var] = equation.get(var, Fraction(0)) + coefficient
            equation = {v: c for v, c in equation.items() if c}
            if equation:
                equations.append(equation)
    fixed = _determined_unknowns(equations, len(unknowns))
    return {
        (t, pos)
        for (t, pos), fid in figure.items()
        if pos in hidden[t] and (fid in known or unknowns[fid] in fixed)
    }


def _determined_unknowns(equations: list[dict[int, Fraction]], count: int) -> set[int]:
    """The unknowns fixed by homogeneous `equations` (sparse rows): those that are zero in
    every solution. Reduced row echelon form; an unknown is fixed when it is a pivot whose
    row has no free unknown in it."""
    rows = [dict(e) for e in equations]
    pivots: dict[int, dict[int, Fraction]] = {}
    for var in range(count):
        chosen = next((r for r in rows if r.get(var)), None)
        if chosen is None:
            continue
        rows.remove(chosen)
        scale = chosen[var]
        chosen = {v: c / scale for v, c in chosen.items()}
        for other in [*rows, *pivots.values()]:
            factor = other.get(var)
            if factor:
                for v, c in chosen.items():
                    value = other.get(v, Fraction(0)) - factor * c
                    if value:
                        other[v] = value
                    else:
                        other.pop(v, None)
        pivots[var] = chosen
    return {var for var, row in pivots.items() if len(row) == 1}
