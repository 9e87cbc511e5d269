"""`safebot report --from YYYY-MM-DD --to YYYY-MM-DD [--out DIR]` (registered by bot/cli.py):
the transparency report for the six-monthly progress update.

Writes report.md, report.csv (one row per shown cell: table, row, column, value) and
requests-per-week.png into DIR (default: the current folder), from the counters only
(storage/outreach.py), for the ISO weeks that overlap the period: counts are weekly, so the
period is rounded out to whole ISO weeks. Every figure is disclosure-controlled as one output
(bot/outreach_tables.py, bot/disclosure.py).

Rendering is pure (a Report in, text or a matplotlib Figure out): the tests read every
output exactly as written.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import disclosure
from bot.outreach_tables import (
    PICKUPS_PER_WEEK,
    REQUESTS_PER_WEEK,
    TOTAL,
    Report,
    ShownTable,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bot.config import Settings

MARKDOWN = "report.md"
CSV = "report.csv"
CHART = "requests-per-week.png"
TITLE = "Transparency report: what safebot counted"
MEDIAN_LABEL = "Median time to pick-up"
RULE = (
    'Every count from 1 to 9 is shown as "fewer than 10", and further counts are "withheld" '
    "wherever they would let a hidden count be worked out from the totals or from the other "
    "tables; zero is shown as zero."
)
NOT_A_PERSON = (
    "No figure here identifies a person: safebot keeps only counters per campaign, language "
    "and ISO week, never a row per person or per request, and nothing that links a count to "
    "a request."
)
NOTES = (
    'Campaigns are the outreach links\' random codes; "no campaign": she came by no campaign '
    'link; "not known": a request the portal could not open at the moment it was picked up or '
    "closed, so its campaign could not be read.",
    "A conversation is counted once, when it starts (or when a campaign link opens it); a "
    "request when it is made, picked up when an advocate first opens it, and closed when it "
    "is closed, each in the week it happened. Outcomes are counted as they are recorded (a "
    "request can have several).",
    "Time to pick-up is counted in bands, not as times; the median is the band the middle "
    "request falls in, and is withheld when fewer than ten requests were picked up.",
)
NOTHING = "There is nothing to show for this period: nothing was counted in these weeks."
HELP = """
Writes report.md, report.csv and requests-per-week.png into DIR (default: here). Counts are
kept per ISO week (Monday to Sunday), so the period is rounded out to the whole ISO weeks it
overlaps. Counts from 1 to 9 show as "fewer than 10", and more are withheld where a hidden
count could be worked out from the rest (0 shows as 0).
"""
PER_WEEK_TITLE = "Contact requests and pick-ups per week"
BAND = 10  # a hidden week is drawn as a hatched band up to here


class ReportError(Exception):
    """Bad input, said in one line."""


def add_command(sub: Any, command: Callable[..., argparse.ArgumentParser], epilog: str) -> None:
    report = command(
        sub,
        "report",
        "write the transparency report for a period (Markdown, CSV and a chart)",
        _report,
        epilog + HELP,
    )
    # Dates are read by _report, not argparse: a bad one is one clear line and exit 1.
    report.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    report.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    report.add_argument("--out", type=Path, default=Path("."), metavar="DIR")


def parse_day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{option} {text!r} is not a date: give YYYY-MM-DD") from None


def check_out(out: Path) -> None:
    if not out.is_dir():
        raise ReportError(f"--out {out}: no such folder")
    if not os.access(out, os.W_OK | os.X_OK):
        raise ReportError(f"--out {out}: this folder cannot be written to")


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.config import ConfigError
    from storage.errors import StorageError

    try:
        start = parse_day(args.start, "--from")
        end = parse_day(args.end, "--to")
        if start > end:
            raise ReportError(f"--from {start} is after --to {end}")
        out: Path = args.out
        check_out(out)
        report = await _read(settings, start, end)
        written = write_report(report, out, dt.datetime.now(dt.UTC).date())
    except (ReportError, ConfigError, StorageError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"could not write the report ({exc.strerror or type(exc).__name__}{where})")
    for path in written:
        print(f"wrote {path}")
    return 0


def _fail(message: str) -> int:
    print(f"safebot: {message}", file=sys.stderr)
    return 1


async def _read(settings: Settings, start: dt.date, end: dt.date) -> Report:
    from bot.outreach_tables import report_tables
    from storage.db import transaction
    from storage.opening import existing_database

    async with (
        existing_database(settings.database_url) as sessions,
        transaction(sessions) as session,
    ):
        return await report_tables(session, start, end)


def write_report(report: Report, out: Path, made: dt.date) -> list[Path]:
    """Write the three files into `out`; their paths."""
    paths = [out / MARKDOWN, out / CSV, out / CHART]
    paths[0].write_text(render_markdown(report, made), encoding="utf-8")
    paths[1].write_text(render_csv(report), encoding="utf-8", newline="")
    figure = chart_figure(report)
    figure.savefig(paths[2], format="png", bbox_inches="tight")
    return paths


# ---- Markdown -------------------------------------------------------------------------------


def header_lines(report: Report, made: dt.date) -> list[str]:
    """The report's opening: the period, the rounding, the rule, the date, no person."""
    first, last = report.first_day, report.last_day
    return [
        f"# {TITLE}",
        "",
        f"- Period asked for: {report.start.isoformat()} to {report.end.isoformat()}.",
        f"- Counted: ISO weeks {report.weeks[0]} to {report.weeks[-1]}, Monday "
        f"{first.isoformat()} to Sunday {last.isoformat()}. Counts are kept per ISO week, so "
        "the period is rounded out to the whole weeks it overlaps.",
        f"- Disclosure control: {RULE}",
        f"- Made on {made.isoformat()}.",
        f"- {NOT_A_PERSON}",
        *(f"- {note}" for note in NOTES),
        "",
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: ShownTable) -> list[str]:
    header = (table.corner, *table.column_labels)
    lines = [
        f"## {table.title}",
        "",
        "| " + " | ".join(_md_cell(c) for c in header) + " |",
        "| --- |" + " ---: |" * len(table.column_labels),
    ]
    for label, cells in zip(table.row_labels, table.cells, strict=True):
        lines.append("| " + " | ".join(_md_cell(c) for c in (label, *cells)) + " |")
    lines.append("")
    return lines


def render_markdown(report: Report, made: dt.date) -> str:
    lines = header_lines(report, made)
    if report.empty:
        lines += [NOTHING, ""]
    else:
        for table in report.tables:
            lines += markdown_table(table)
            if table.title == "Time to pick-up":
                lines += [f"**{MEDIAN_LABEL}:** {report.median}", ""]
    return "\n".join(lines)


# ---- CSV ------------------------------------------------------------------------------------

CSV_HEADER = ("table", "row", "column", "value")


def render_csv(report: Report) -> str:
    """One row per shown cell (totals included), then the median: easy to filter or pivot in
    a spreadsheet. An empty period has the header only."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for table in report.tables:
        for label, cells in zip(table.row_labels, table.cells, strict=True):
            for column, value in zip(table.column_labels, cells, strict=True):
                writer.writerow((table.title, label, column, value))
    if not report.empty:
        writer.writerow((MEDIAN_LABEL, "All requests picked up", TOTAL, report.median))
    return out.getvalue()


# ---- the chart ------------------------------------------------------------------------------

REQUEST_COLOUR = "#1f5f8b"
PICKUP_COLOUR = "#d9822b"
HATCHES = {disclosure.FEWER_THAN_TEN: "///", disclosure.WITHHELD: "xxx"}


def weekly(table: ShownTable) -> list[tuple[str, str]]:
    """(week, shown total) for every week of a per-week table (its Total column)."""
    total = table.column_labels.index(TOTAL)
    return [
        (label, cells[total])
        for label, cells in zip(table.row_labels, table.cells, strict=True)
        if label != TOTAL
    ]


def bar_height(shown: str) -> int:
    """How high a week's bar is drawn: a shown count at its height, a hidden one as a band up
    to 10 (never at its true height)."""
    return BAND if shown in HATCHES else int(shown)


def y_ticks(highest: int) -> list[int]:
    """Ticks at multiples of 10 only, at most about ten of them, up to at least 10."""
    power = 10
    while True:
        for step in (power, 2 * power, 5 * power):
            if highest <= 10 * step:
                top = max(BAND, -(-highest // step) * step)
                return list(range(0, top + 1, step))
        power *= 10


def chart_figure(report: Report) -> Figure:
    """Requests and pick-ups per week as bars (matplotlib, Agg): no data labels, y ticks at
    multiples of 10, a suppressed week as a hatched band up to 10."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    weeks = list(report.weeks)
    figure = Figure(figsize=(max(8.0, 2.0 + 0.32 * len(weeks)), 4.8), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(PER_WEEK_TITLE, loc="left", fontsize=12)
    if report.empty:
        axes.set_xticks([])
        axes.set_yticks([])
        axes.axis("off")
        axes.text(0.5, 0.5, NOTHING, ha="center", va="center", transform=axes.transAxes)
        return figure
    series = (
        ("requests", weekly(report.table(REQUESTS_PER_WEEK)), REQUEST_COLOUR, -0.2),
        ("pickups", weekly(report.table(PICKUPS_PER_WEEK)), PICKUP_COLOUR, 0.2),
    )
    highest = 0
    for name, values, colour, offset in series:
        for x, (week, shown) in enumerate(values):
            height = bar_height(shown)
            highest = max(highest, height)
            hatch = HATCHES.get(shown)
            axes.bar(
                x + offset,
                height,
                width=0.4,
                color="white" if hatch else colour,
                edgecolor=colour,
                hatch=hatch,
                linewidth=0.8,
                gid=f"{name} {week}",  # the tests find a week's bar by it
            )
    ticks = y_ticks(highest)
    axes.set_ylim(0, ticks[-1])
    axes.set_yticks(ticks, labels=[str(t) for t in ticks])
    axes.set_xticks(range(len(weeks)), labels=weeks, rotation=90, fontsize=7)
    axes.set_xlim(-0.6, len(weeks) - 0.4)
    axes.set_xlabel("ISO week")
    axes.set_ylabel("Count")
    handles = [
        Patch(facecolor=REQUEST_COLOUR, edgecolor=REQUEST_COLOUR, label="Contact requests"),
        Patch(facecolor=PICKUP_COLOUR, edgecolor=PICKUP_COLOUR, label="Picked up"),
        Patch(
            facecolor="white",
            edgecolor="grey",
            hatch=HATCHES[disclosure.FEWER_THAN_TEN],
            label="fewer than 10 (drawn up to 10)",
        ),
        Patch(
            facecolor="white",
            edgecolor="grey",
            hatch=HATCHES[disclosure.WITHHELD],
            label="withheld (drawn up to 10)",
        ),
    ]
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
    )
    axes.spines[["top", "right"]].set_visible(False)
    return figure
