"""The tables every outreach output shows (the portal's campaign page, `safebot outreach
counts`, `safebot report`), built from the counter rows and protected by bot/disclosure.py.

Every table is ONE measure over a partition (rows x columns) with row, column and grand
totals. The tables of one output are protected together: every cell has a *figure* (its
measure and what it is filtered by, e.g. "requests, campaign X"), and where the same figure
is in two tables (the grand total of requests in the table by language and in the table by
week; the requests picked up in Polish by campaign and by time to pick-up) it is hidden in
both or shown in both (`disclosure.protect_all`).

The building functions are pure (rows in, tables out) so they can be tested without a
database; the async functions only read the counter rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot import disclosure
from flows.outreach import BUCKET_KEYS, PICKUP_BUCKETS, iso_week
from storage.models import NO_CAMPAIGN, UNKNOWN_CAMPAIGN, OutreachCount

TOTAL = "Total"
NO_CAMPAIGN_LABEL = "no campaign"
UNKNOWN_CAMPAIGN_LABEL = "not known"
MAX_WEEK_COLUMNS = 13  # a campaign page with more weeks than this shows months
MEDIAN_MINIMUM = 10  # fewer requests picked up than this: no median

# The measures of OutreachCount, as the tables name them.
MEASURES: tuple[tuple[str, str], ...] = (
    ("started", "Conversations started"),
    ("requested", "Contact requests"),
    ("picked_up", "Picked up"),
    ("closed", "Closed"),
)
OUTCOME_ROWS: tuple[tuple[str, str], ...] = (
    ("contacted", "Contacted"),
    ("not_reached", "Could not reach"),
    ("closed", "Closed"),
)
# bot/portal/answers.py:CLOSE_REASONS, in English (the report is for the progress update).
CLOSE_REASON_LABELS: dict[str, str] = {
    "supported": "Contacted and supported",
    "referred": "Referred to another service",
    "declined": "The person did not want support now",
    "unreachable": "Could not reach the person after several attempts",
    "duplicate": "Duplicate request",
    "other": "Other reason",
}
BUCKET_LABELS: dict[str, str] = {
    "<1h": "under 1 hour",
    "1-4h": "1 to 4 hours",
    "4-24h": "4 to 24 hours",
    "1-3d": "1 to 3 days",
    "3-7d": "3 to 7 days",
    ">7d": "over 7 days",
}
assert tuple(BUCKET_LABELS) == BUCKET_KEYS


@dataclass(frozen=True)
class ShownTable:
    title: str  # English, e.g. "Conversations started"
    row_labels: tuple[str, ...]  # data rows, then "Total"
    column_labels: tuple[str, ...]  # data columns, then "Total"
    # Shown values, totals included: "0", "12", disclosure.FEWER_THAN_TEN or WITHHELD.
    cells: tuple[tuple[str, ...], ...]
    corner: str = ""  # what the rows are ("Language", "Week", ...)


# ---- the rows the tables are made of ------------------------------------------------------------


@dataclass(frozen=True)
class CountRow:
    """One OutreachCount row."""

    campaign: str
    language: str
    iso_week: str
    started: int = 0
    requested: int = 0
    picked_up: int = 0
    closed: int = 0


@dataclass(frozen=True)
class OutcomeRow:
    """One OutcomeCount row: outcome is "contacted", "not_reached" or "closed:<reason>"."""

    campaign: str
    language: str
    iso_week: str
    outcome: str
    count: int


@dataclass(frozen=True)
class PickupRow:
    """One PickupTime row."""

    language: str
    iso_week: str
    bucket: str
    count: int


# ---- one output, protected together -------------------------------------------------------------

# A row or column of a table says what its cells are filtered by: (dimension, value) pairs;
# ("measure", m) instead says the cells count m, not the table's measure. A total says nothing.
Coord = tuple[tuple[str, str], ...]
Figure = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class TableSpec:
    """A table before protection: its counts, and what each row and column is."""

    title: str
    corner: str
    measure: str
    rows: list[tuple[str, Coord]]  # (label, coordinate)
    columns: list[tuple[str, Coord]]
    counts: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [[0] * len(self.columns) for _ in self.rows]

    def add(self, row: Coord, column: Coord, n: int) -> None:
        self.counts[self._index(self.rows, row)][self._index(self.columns, column)] += n

    @staticmethod
    def _index(lines: list[tuple[str, Coord]], coord: Coord) -> int:
        for i, (_label, c) in enumerate(lines):
            if c == coord:
                return i
        raise KeyError(coord)

    def figure(self, i: int, j: int) -> Figure:
        """What cell (i, j) of the table with totals counts."""
        parts: list[tuple[str, str]] = []
        if i < len(self.rows):
            parts += self.rows[i][1]
        if j < len(self.columns):
            parts += self.columns[j][1]
        measure = self.measure
        filters = set()
        for name, value in parts:
            if name == "measure":
                measure = value
            else:
                filters.add((name, value))
        return measure, frozenset(filters)


def shared_figures(specs: Sequence[TableSpec]) -> list[list[disclosure.Cell]]:
    """Groups of cells (table, position) that show the same figure, in different tables."""
    where: dict[Figure, list[disclosure.Cell]] = {}
    for t, spec in enumerate(specs):
        for i in range(len(spec.rows) + 1):
            for j in range(len(spec.columns) + 1):
                where.setdefault(spec.figure(i, j), []).append((t, (i, j)))
    return [cells for cells in where.values() if len({t for t, _ in cells}) > 1]


def protect_output(specs: Sequence[TableSpec]) -> list[ShownTable]:
    """The tables of one output, protected as one (see the module's docstring)."""
    results = disclosure.protect_all([s.counts for s in specs], shared_figures(specs))
    return [
        ShownTable(
            title=spec.title,
            row_labels=(*(label for label, _ in spec.rows), TOTAL),
            column_labels=(*(label for label, _ in spec.columns), TOTAL),
            cells=result.shown,
            corner=spec.corner,
        )
        for spec, result in zip(specs, results, strict=True)
    ]


# ---- labels and order ---------------------------------------------------------------------------


def campaign_label(code: str) -> str:
    if code == NO_CAMPAIGN:
        return NO_CAMPAIGN_LABEL
    if code == UNKNOWN_CAMPAIGN:
        return UNKNOWN_CAMPAIGN_LABEL
    return code


def campaign_order(codes: Iterable[str]) -> list[str]:
    """Campaign codes in order, then no campaign, then not known."""
    last = {NO_CAMPAIGN: 1, UNKNOWN_CAMPAIGN: 2}
    return sorted(set(codes), key=lambda c: (last.get(c, 0), c))


def week_monday(week: str) -> dt.date:
    year, number = week.split("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


def weeks_between(first: dt.date, last: dt.date) -> list[str]:
    """Every ISO week from the one `first` is in to the one `last` is in."""
    out = []
    day = first - dt.timedelta(days=first.weekday())
    while day <= last:
        out.append(iso_week(day))
        day += dt.timedelta(days=7)
    return out


def week_month(week: str) -> str:
    """The month an ISO week is counted in: its Thursday's (as ISO years are)."""
    thursday = week_monday(week) + dt.timedelta(days=3)
    return f"{thursday.year:04d}-{thursday.month:02d}"


# ---- the portal's campaign page, and `safebot outreach counts` ----------------------------------


def build_campaign_tables(rows: Sequence[CountRow]) -> list[ShownTable]:
    """One table per measure for one campaign's rows: languages x ISO weeks (every week from
    the first to the last with a count), or months when there are more than
    MAX_WEEK_COLUMNS weeks. Nothing counted: one row "-" and one column "-", all zero."""
    languages = sorted({r.language for r in rows})
    weeks = sorted({r.iso_week for r in rows})
    if weeks:
        weeks = weeks_between(week_monday(weeks[0]), week_monday(weeks[-1]))
    by_month = len(weeks) > MAX_WEEK_COLUMNS
    period: Callable[[str], str] = week_month if by_month else (lambda w: w)
    columns = sorted({period(w) for w in weeks})
    dimension = "month" if by_month else "week"
    row_lines: list[tuple[str, Coord]] = [(lang, (("language", lang),)) for lang in languages]
    column_lines: list[tuple[str, Coord]] = [(c, ((dimension, c),)) for c in columns]
    specs = []
    for measure, title in MEASURES:
        spec = TableSpec(
            title,
            "Language",
            measure,
            row_lines or [("-", ())],
            column_lines or [("-", ())],
        )
        for r in rows:
            spec.add(
                (("language", r.language),), ((dimension, period(r.iso_week)),), _of(r, measure)
            )
        specs.append(spec)
    return protect_output(specs)


def _of(row: CountRow, measure: str) -> int:
    value = getattr(row, measure)
    assert isinstance(value, int)
    return value


def count_row(r: OutreachCount) -> CountRow:
    return CountRow(
        r.campaign, r.language, r.iso_week, r.started, r.requested, r.picked_up, r.closed
    )


async def campaign_tables(session: AsyncSession, campaign: str) -> list[ShownTable]:
    """For the portal's campaign page: one table per measure (started, requested, picked up,
    closed), rows = languages, columns = ISO weeks (or months if many), suppressed as one
    linked output."""
    from storage import outreach

    rows = await outreach.counts(session, campaign=campaign)
    return build_campaign_tables([count_row(r) for r in rows])


async def all_campaign_tables(session: AsyncSession) -> list[tuple[str, list[ShownTable]]]:
    """`safebot outreach counts`: every campaign that has counts (codes, then no campaign,
    then not known), each as its campaign page shows it."""
    from storage import outreach

    by_campaign: dict[str, list[CountRow]] = {}
    for r in await outreach.counts(session):
        by_campaign.setdefault(r.campaign, []).append(count_row(r))
    return [(c, build_campaign_tables(by_campaign[c])) for c in campaign_order(by_campaign)]


def format_text(tables: Sequence[ShownTable]) -> str:
    """Tables as plain text, columns aligned (for a terminal)."""
    out = []
    for table in tables:
        header = (table.corner, *table.column_labels)
        lines = [header] + [
            (label, *cells) for label, cells in zip(table.row_labels, table.cells, strict=True)
        ]
        widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
        out.append(table.title)
        for line in lines:
            out.append(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            )
        out.append("")
    return "\n".join(out)


NO_COUNTS = "no counts yet"


def format_counts(per_campaign: Sequence[tuple[str, Sequence[ShownTable]]]) -> str:
    """`safebot outreach counts`: a block per campaign, its tables as plain text."""
    if not per_campaign:
        return NO_COUNTS + "\n"
    out = []
    for code, tables in per_campaign:
        name = code if code not in (NO_CAMPAIGN, UNKNOWN_CAMPAIGN) else campaign_label(code)
        out.append(f"== campaign {name} ==\n")
        out.append(format_text(tables))
    return "\n".join(out)


# ---- the transparency report --------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What `safebot report` writes (bot/report.py renders it)."""

    start: dt.date  # the period asked for
    end: dt.date
    weeks: tuple[str, ...]  # the ISO weeks that overlap it
    tables: tuple[ShownTable, ...]  # empty when there is nothing to show
    median: str  # the median time to pick-up, in words (or why there is none)

    @property
    def first_day(self) -> dt.date:
        return week_monday(self.weeks[0])

    @property
    def last_day(self) -> dt.date:
        return week_monday(self.weeks[-1]) + dt.timedelta(days=6)

    @property
    def empty(self) -> bool:
        return not self.tables

    def table(self, title: str) -> ShownTable:
        for t in self.tables:
            if t.title == title:
                return t
        raise KeyError(title)


REQUESTS_PER_WEEK = "Contact requests per week"
PICKUPS_PER_WEEK = "Picked up per week"
TIME_TO_PICKUP = "Time to pick-up"


def build_report(
    start: dt.date,
    end: dt.date,
    counts: Sequence[CountRow],
    outcomes: Sequence[OutcomeRow] = (),
    pickups: Sequence[PickupRow] = (),
    language_label: Callable[[str], str] = lambda code: code,
) -> Report:
    """The report's tables for the ISO weeks that overlap start..end (rows of other weeks are
    left out), protected as one output."""
    if start > end:
        raise ValueError("the period ends before it starts")
    weeks = weeks_between(start, end)
    inside = set(weeks)
    counts = [r for r in counts if r.iso_week in inside]
    outcomes = [r for r in outcomes if r.iso_week in inside and r.count]
    pickups = [r for r in pickups if r.iso_week in inside and r.count]
    median = median_words([(r.bucket, r.count) for r in pickups])
    languages = sorted(
        {r.language for r in counts}
        | {r.language for r in outcomes}
        | {r.language for r in pickups}
    )
    counted = any(_of(r, m) for r in counts for m, _ in MEASURES)
    if not (counted or outcomes or pickups):
        return Report(start, end, tuple(weeks), (), median)
    # (Never empty: pick-up times with no other count would be a database out of step.)
    campaigns = campaign_order([r.campaign for r in counts] + [r.campaign for r in outcomes]) or [
        UNKNOWN_CAMPAIGN
    ]
    lang_lines: list[tuple[str, Coord]] = [
        (language_label(lang), (("language", lang),)) for lang in languages
    ]
    campaign_lines: list[tuple[str, Coord]] = [
        (campaign_label(c), (("campaign", c),)) for c in campaigns
    ]
    week_lines: list[tuple[str, Coord]] = [(w, (("week", w),)) for w in weeks]
    by_measure = {
        measure: TableSpec(title, "Language", measure, lang_lines, campaign_lines)
        for measure, title in MEASURES
    }
    per_week = {
        "requested": TableSpec(REQUESTS_PER_WEEK, "Week", "requested", week_lines, campaign_lines),
        "picked_up": TableSpec(PICKUPS_PER_WEEK, "Week", "picked_up", week_lines, campaign_lines),
    }
    for r in counts:
        lang: Coord = (("language", r.language),)
        camp: Coord = (("campaign", r.campaign),)
        week: Coord = (("week", r.iso_week),)
        for measure, spec in by_measure.items():
            spec.add(lang, camp, _of(r, measure))
        for measure, spec in per_week.items():
            spec.add(week, camp, _of(r, measure))
    # Outcomes: the "closed" row is the same figure as the closed tables' campaign totals.
    outcome_spec = TableSpec(
        "Outcomes recorded",
        "Outcome",
        "outcomes",
        [(label, (("measure", key),)) for key, label in OUTCOME_ROWS],
        campaign_lines,
    )
    reasons = list(CLOSE_REASON_LABELS) + sorted(
        {r.outcome.removeprefix("closed:") for r in outcomes if r.outcome.startswith("closed:")}
        - set(CLOSE_REASON_LABELS)
    )
    reason_spec = TableSpec(
        "Closed, by reason",
        "Reason",
        "closed",
        [(CLOSE_REASON_LABELS.get(k, k), (("reason", k),)) for k in reasons],
        campaign_lines,
    )
    for o in outcomes:
        camp = (("campaign", o.campaign),)
        if o.outcome.startswith("closed:"):
            outcome_spec.add((("measure", "closed"),), camp, o.count)
            reason_spec.add((("reason", o.outcome.removeprefix("closed:")),), camp, o.count)
        elif o.outcome in ("contacted", "not_reached"):
            outcome_spec.add((("measure", o.outcome),), camp, o.count)
    pickup_spec = TableSpec(
        TIME_TO_PICKUP,
        "Time to pick-up",
        "picked_up",
        [(BUCKET_LABELS[k], (("bucket", k),)) for k in BUCKET_KEYS],
        lang_lines,
    )
    for p in pickups:
        if p.bucket in BUCKET_LABELS:
            pickup_spec.add((("bucket", p.bucket),), (("language", p.language),), p.count)
    specs = [
        *by_measure.values(),
        outcome_spec,
        reason_spec,
        pickup_spec,
        *per_week.values(),
    ]
    return Report(start, end, tuple(weeks), tuple(protect_output(specs)), median)


async def report_tables(session: AsyncSession, start: dt.date, end: dt.date) -> Report:
    """What `safebot report` writes, for the ISO weeks that overlap start..end."""
    from storage import outreach

    weeks = weeks_between(start, end)
    counts = [count_row(r) for r in await outreach.counts(session, weeks=weeks)]
    outcomes = [
        OutcomeRow(r.campaign, r.language, r.iso_week, r.outcome, r.count)
        for r in await outreach.outcome_counts(session, weeks)
    ]
    pickups = [
        PickupRow(r.language, r.iso_week, r.bucket, r.count)
        for r in await outreach.pickup_times(session, weeks)
    ]
    return build_report(start, end, counts, outcomes, pickups, english_language_name)


def english_language_name(code: str) -> str:
    """ "Polish (pl)"; the code alone where Babel has no name for it."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (UnknownLocaleError, ValueError):
        return code
    return f"{name} ({code})" if name else code


# ---- the median time to pick-up, from the bucket counts -----------------------------------------

# Each bucket's lower and upper bound, in words, for a median that falls between two buckets.
_BOUNDS: dict[str, tuple[str | None, str | None]] = {
    "<1h": (None, "1 hour"),
    "1-4h": ("1 hour", "4 hours"),
    "4-24h": ("4 hours", "24 hours"),
    "1-3d": ("1 day", "3 days"),
    "3-7d": ("3 days", "7 days"),
    ">7d": ("7 days", None),
}
BUCKET_WORDS: dict[str, str] = {
    "<1h": "under 1 hour",
    "1-4h": "between 1 and 4 hours",
    "4-24h": "between 4 and 24 hours",
    "1-3d": "between 1 and 3 days",
    "3-7d": "between 3 and 7 days",
    ">7d": "over 7 days",
}
assert tuple(_BOUNDS) == tuple(BUCKET_WORDS) == tuple(k for k, _ in PICKUP_BUCKETS)
NO_PICKUPS = "none: no request was picked up in this period"
TOO_FEW_PICKUPS = f"withheld: it would rest on fewer than {MEDIAN_MINIMUM} requests picked up"


def median_buckets(counts: Iterable[tuple[str, int]]) -> tuple[str, str] | None:
    """The buckets of the two middle waits (the same one for an odd number, or when both fall
    in it) from the count per bucket; None when there are none."""
    per: Mapping[str, int] = _summed(counts)
    total = sum(per.values())
    if total == 0:
        return None
    # The lower and upper middle waits, counting from 1: for 10 waits the 5th and 6th.
    lower, upper = (total + 1) // 2, total // 2 + 1
    found: list[str] = []
    seen = 0
    for key in BUCKET_KEYS:
        seen += per.get(key, 0)
        while len(found) < 2 and seen >= (lower, upper)[len(found)]:
            found.append(key)
    return found[0], found[1]


def _summed(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    per: dict[str, int] = {}
    for key, n in counts:
        if key not in BUCKET_WORDS:
            raise ValueError(f"not a pick-up bucket: {key!r}")
        per[key] = per.get(key, 0) + n
    return per


def median_words(counts: Iterable[tuple[str, int]]) -> str:
    """The median time to pick-up as words ("between 1 and 4 hours"), withheld when fewer
    than MEDIAN_MINIMUM requests were picked up."""
    counts = list(counts)
    total = sum(n for _, n in counts)
    if total == 0:
        return NO_PICKUPS
    if total < MEDIAN_MINIMUM:
        return TOO_FEW_PICKUPS
    middle = median_buckets(counts)
    assert middle is not None
    low, high = middle
    if low == high:
        return BUCKET_WORDS[low]
    below, above = _BOUNDS[low][0], _BOUNDS[high][1]
    if below is None:
        return f"under {above}"
    if above is None:
        return f"over {below}"
    return f"between {below} and {above}"
