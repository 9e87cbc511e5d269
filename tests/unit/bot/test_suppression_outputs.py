"""The property behind every outreach figure: from random counter rows, no output — report.md,
report.csv, the chart's text and bars, `safebot outreach counts` — shows a count from 1 to 9,
every number it shows is the true one, and no hidden cell can be worked out from what is
shown, even with every table of the output together.

What is a count is decided by position, never by guessing: a table's value cells (not its
row labels, column labels or title), the CSV's value column (not the median's row), the
chart's bars and y ticks. Everything else the outputs write (the header with its dates and
the rule, week labels, campaign codes) is excluded by where it stands, and any other line
must hold no number from 1 to 9 at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.disclosure import FEWER_THAN_TEN, WITHHELD, Cell, Pos, determined, is_bridge
from bot.outreach_tables import (
    BUCKET_LABELS,
    CLOSE_REASON_LABELS,
    PICKUPS_PER_WEEK,
    REQUESTS_PER_WEEK,
    TIME_TO_PICKUP,
    TOTAL,
    CountRow,
    OutcomeRow,
    PickupRow,
    Report,
    build_campaign_tables,
    build_report,
    campaign_label,
    campaign_order,
    format_counts,
)
from bot.report import (
    MEDIAN_LABEL,
    NOTHING,
    PER_WEEK_TITLE,
    chart_figure,
    render_csv,
    render_markdown,
)
from flows.outreach import BUCKET_KEYS

START, END = dt.date(2027, 3, 3), dt.date(2027, 3, 17)  # a Wednesday of W09 to one of W11
WEEKS = ("2027-W09", "2027-W10", "2027-W11")
OUTSIDE = "2027-W12"  # rows of other weeks must change nothing
LANGUAGES = ("pl", "ur", "ar")
CAMPAIGNS = ("AbCd1234", "Zx9Yw8V7", "-", "?")
REASONS = ("supported", "declined", "other")
NUMBER = re.compile(r"\d+")

counts = st.integers(min_value=0, max_value=9) | st.integers(min_value=0, max_value=45)


def is_shown_count(text: str) -> bool:
    """A value cell as it may be shown: 0, 10 or more, or a label."""
    if text in (FEWER_THAN_TEN, WITHHELD):
        return True
    return text.isdigit() and not 1 <= int(text) <= 9


def small_numbers(text: str) -> list[int]:
    return [int(n) for n in NUMBER.findall(text) if 1 <= int(n) <= 9]


# ---- random, consistent counters ------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    counts: list[CountRow]
    outcomes: list[OutcomeRow]
    pickups: list[PickupRow]


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    out = [0] * parts
    for _ in range(total):
        out[rng.randrange(parts)] += 1
    return out


@st.composite
def counters(draw: st.DrawFn) -> Counters:
    """Counter rows as the bot and the portal write them: every pick-up has its time bucket,
    every close its outcome; some rows fall outside the period."""
    rows = draw(
        st.lists(
            st.builds(
                CountRow,
                campaign=st.sampled_from(CAMPAIGNS),
                language=st.sampled_from(LANGUAGES),
                iso_week=st.sampled_from((*WEEKS, OUTSIDE)),
                started=counts,
                requested=counts,
                picked_up=counts,
                closed=counts,
            ),
            max_size=8,
        )
    )
    rng = draw(st.randoms(use_true_random=False))
    outcomes, pickups = [], []
    for r in rows:
        for reason, n in zip(REASONS, split(r.closed, len(REASONS), rng), strict=True):
            if n:
                outcomes.append(
                    OutcomeRow(r.campaign, r.language, r.iso_week, f"closed:{reason}", n)
                )
        for bucket, n in zip(BUCKET_KEYS, split(r.picked_up, len(BUCKET_KEYS), rng), strict=True):
            if n:
                pickups.append(PickupRow(r.language, r.iso_week, bucket, n))
        for outcome in ("contacted", "not_reached"):
            n = draw(counts)
            if n:
                outcomes.append(OutcomeRow(r.campaign, r.language, r.iso_week, outcome, n))
    return Counters(rows, outcomes, pickups)


def report_of(data: Counters) -> Report:
    return build_report(START, END, data.counts, data.outcomes, data.pickups)


# ---- the truth, computed apart from the code under test -------------------------------------

Truth = Callable[[str, str], int]


def summed(atoms: Sequence[tuple[str, str, int]]) -> Truth:
    """The true value of (row label, column label), "Total" summing over that side."""

    def value(row: str, column: str) -> int:
        return sum(n for r, c, n in atoms if row in (TOTAL, r) and column in (TOTAL, c))

    return value


def truths(data: Counters) -> dict[str, Truth]:
    inside = [r for r in data.counts if r.iso_week in WEEKS]
    outcomes = [o for o in data.outcomes if o.iso_week in WEEKS]
    pickups = [p for p in data.pickups if p.iso_week in WEEKS]
    out: dict[str, Truth] = {}
    for measure, title in (
        ("started", "Conversations started"),
        ("requested", "Contact requests"),
        ("picked_up", "Picked up"),
        ("closed", "Closed"),
    ):
        out[title] = summed(
            [(r.language, campaign_label(r.campaign), getattr(r, measure)) for r in inside]
        )
    out[REQUESTS_PER_WEEK] = summed(
        [(r.iso_week, campaign_label(r.campaign), r.requested) for r in inside]
    )
    out[PICKUPS_PER_WEEK] = summed(
        [(r.iso_week, campaign_label(r.campaign), r.picked_up) for r in inside]
    )
    out[TIME_TO_PICKUP] = summed([(BUCKET_LABELS[p.bucket], p.language, p.count) for p in pickups])
    names = {"contacted": "Contacted", "not_reached": "Could not reach"}
    out["Outcomes recorded"] = summed(
        [(names.get(o.outcome, "Closed"), campaign_label(o.campaign), o.count) for o in outcomes]
    )
    out["Closed, by reason"] = summed(
        [
            (
                CLOSE_REASON_LABELS[o.outcome.removeprefix("closed:")],
                campaign_label(o.campaign),
                o.count,
            )
            for o in outcomes
            if o.outcome.startswith("closed:")
        ]
    )
    return out


# ---- reading the outputs back, by position ---------------------------------------------------


@dataclass
class Printed:
    title: str
    rows: list[str]
    columns: list[str]
    cells: list[list[str]]

    @property
    def hidden(self) -> set[Pos]:
        return {
            (i, j)
            for i, row in enumerate(self.cells)
            for j, text in enumerate(row)
            if text in (FEWER_THAN_TEN, WITHHELD)
        }

    def at(self, row: str, column: str) -> Pos:
        return self.rows.index(row), self.columns.index(column)


def read_markdown(text: str) -> tuple[list[Printed], str | None, list[str]]:
    """The tables, the median's words, and every line that is none of these (outside the
    header, which holds the period's dates and the rule: excluded by position)."""
    lines = text.splitlines()
    body = next(i for i, line in enumerate(lines) if line.startswith("## ") or line == NOTHING)
    tables: list[Printed] = []
    median = None
    other: list[str] = []
    for line in lines[body:]:
        if line.startswith("## "):
            tables.append(Printed(line[3:], [], [], []))
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            table = tables[-1]
            if not table.columns:
                table.columns = cells[1:]  # the corner, then the column labels
            elif set(line) <= set("|-: "):
                continue
            else:
                table.rows.append(cells[0])
                table.cells.append(cells[1:])
        elif line.startswith(f"**{MEDIAN_LABEL}:** "):
            median = line.removeprefix(f"**{MEDIAN_LABEL}:** ")
        elif line:
            other.append(line)
    return tables, median, other


def read_counts(text: str) -> list[tuple[str, list[Printed]]]:
    """`safebot outreach counts`: per campaign heading, tables of aligned columns."""
    out: list[tuple[str, list[Printed]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("== campaign "):
            out.append((line.removeprefix("== campaign ").removesuffix(" =="), []))
            i += 1
        elif line and not line[0].isspace() and i + 1 < len(lines) and lines[i + 1]:
            title = line
            header = re.split(r"\s{2,}", lines[i + 1].strip())
            table = Printed(title, [], header[1:], [])
            i += 2
            while i < len(lines) and lines[i]:
                cells = re.split(r"\s{2,}", lines[i].strip())
                table.rows.append(cells[0])
                table.cells.append(cells[1:])
                i += 1
            out[-1][1].append(table)
        else:
            assert not small_numbers(line), line
            i += 1
    return out


def shared_as_printed(tables: dict[str, Printed]) -> list[list[Cell]]:
    """The figures one output shows in more than one table, found from the printed labels
    (apart from the code's own bookkeeping of them)."""
    index = {title: t for t, title in enumerate(tables)}
    groups: list[list[Cell]] = []

    def cell(title: str, row: str, column: str) -> Cell:
        return index[title], tables[title].at(row, column)

    for by_language, by_week in (
        ("Contact requests", REQUESTS_PER_WEEK),
        ("Picked up", PICKUPS_PER_WEEK),
    ):
        for column in tables[by_language].columns:
            groups.append([cell(by_language, TOTAL, column), cell(by_week, TOTAL, column)])
    for language in tables["Picked up"].rows:
        groups.append([cell("Picked up", language, TOTAL), cell(TIME_TO_PICKUP, TOTAL, language)])
    for column in tables["Closed"].columns:
        groups.append(
            [
                cell("Closed", TOTAL, column),
                cell("Closed, by reason", TOTAL, column),
                cell("Outcomes recorded", "Closed", column),
            ]
        )
    return groups


def check_tables(printed: Sequence[Printed], truth: dict[str, Truth] | None) -> None:
    for table in printed:
        for i, row in enumerate(table.cells):
            assert len(row) == len(table.columns)
            for j, text in enumerate(row):
                assert is_shown_count(text), (table.title, table.rows[i], table.columns[j], text)
                if truth is not None and text.isdigit():
                    true = truth[table.title](table.rows[i], table.columns[j])
                    assert int(text) == true, (table.title, table.rows[i], table.columns[j])
        hidden = table.hidden
        assert not any(is_bridge(hidden, c) for c in hidden), table.title


# ---- the properties --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(counters())
def test_the_report_shows_no_small_count_and_gives_none_away(data: Counters) -> None:
    report = report_of(data)
    markdown = render_markdown(report, dt.date(2027, 4, 1))
    printed, median, other = read_markdown(markdown)
    for line in other:
        assert not small_numbers(line), line
    if report.empty:
        assert printed == [] and NOTHING in markdown
        return
    assert median is not None and median == report.median
    check_tables(printed, truths(data))
    # All the tables of the report together: no hidden cell is determined.
    by_title = {t.title: t for t in printed}
    assert len(by_title) == len(printed)
    shared = shared_as_printed(by_title)
    for group in shared:
        # Hidden in every table, or shown (the same number) in every one.
        texts = {printed[t].cells[i][j] for t, (i, j) in group}
        assert len(texts) == 1 or texts <= {FEWER_THAN_TEN, WITHHELD}, group
    shapes = [(len(t.rows), len(t.columns)) for t in printed]
    assert determined(shapes, [t.hidden for t in printed], shared) == set()

    # The CSV: the same cells, one a row.
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == ["table", "row", "column", "value"]
    as_csv = {(t, r, c): v for t, r, c, v in rows[1:] if t != MEDIAN_LABEL}
    as_markdown = {
        (t.title, row, column): value
        for t in printed
        for row, values in zip(t.rows, t.cells, strict=True)
        for column, value in zip(t.columns, values, strict=True)
    }
    assert as_csv == as_markdown
    assert all(is_shown_count(v) for v in as_csv.values())
    assert [v for t, _r, _c, v in rows[1:] if t == MEDIAN_LABEL] == [report.median]


@settings(max_examples=150, deadline=None)
@given(counters())
def test_outreach_counts_shows_no_small_count_and_gives_none_away(data: Counters) -> None:
    per_campaign: dict[str, list[CountRow]] = {}
    for r in data.counts:
        per_campaign.setdefault(r.campaign, []).append(r)
    tables = [(c, build_campaign_tables(per_campaign[c])) for c in campaign_order(per_campaign)]
    text = format_counts(tables)
    read = read_counts(text)
    assert [name for name, _ in read] == [campaign_label(c) for c, _ in tables]
    for (code, _), (_name, printed) in zip(tables, read, strict=True):
        rows = per_campaign[code]
        measures = {
            "Conversations started": "started",
            "Contact requests": "requested",
            "Picked up": "picked_up",
            "Closed": "closed",
        }
        truth = {
            title: summed([(r.language, r.iso_week, getattr(r, m)) for r in rows])
            for title, m in measures.items()
        }
        # Few weeks here: the columns are ISO weeks, so the truth is per week.
        assert all(re.fullmatch(r"\d{4}-W\d{2}|Total", c) for t in printed for c in t.columns)
        check_tables(printed, truth)
        shapes = [(len(t.rows), len(t.columns)) for t in printed]
        assert determined(shapes, [t.hidden for t in printed]) == set()


CHART_WORDS = {
    PER_WEEK_TITLE,
    NOTHING,
    "ISO week",
    "Count",
    "Contact requests",
    "Picked up",
    "fewer than 10 (drawn up to 10)",
    "withheld (drawn up to 10)",
}


@settings(max_examples=25, deadline=None)
@given(counters())
def test_the_chart_shows_no_small_count_and_no_hidden_height(data: Counters) -> None:
    report = report_of(data)
    figure = chart_figure(report)
    figure.canvas.draw()
    axes = figure.axes[0]
    from matplotlib.text import Text

    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    weeks = set(axes.get_xticklabels())
    ticks = set(axes.get_yticklabels())
    for t in texts:
        if t in weeks:
            assert t.get_text() in report.weeks  # a week's label, not a count
        elif t in ticks:
            assert int(t.get_text()) % 10 == 0
        else:
            # The title, the axes' names and the legend: no data labels at all.
            assert not small_numbers(t.get_text()), t.get_text()
            assert t.get_text() in CHART_WORDS, t.get_text()
    if report.empty:
        assert not axes.patches
        return
    bars = {p.get_gid(): p for p in axes.patches}
    for name, title in (("requests", REQUESTS_PER_WEEK), ("pickups", PICKUPS_PER_WEEK)):
        table = report.table(title)
        for week, cells in zip(table.row_labels, table.cells, strict=True):
            if week == TOTAL:
                continue
            bar, shown = bars[f"{name} {week}"], cells[-1]
            if shown in (FEWER_THAN_TEN, WITHHELD):
                assert bar.get_height() == 10 and bar.get_hatch()
            else:
                assert bar.get_height() == int(shown) and not bar.get_hatch()
