"""The tables every outreach output shows, built from counter rows without a database: the
pick-up buckets, the median from bucket counts, the report's weeks and tables, the campaign
page's tables, and the chart drawn from a protected table."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest

from bot.disclosure import FEWER_THAN_TEN, WITHHELD
from bot.outreach_tables import (
    NO_COUNTS,
    NO_PICKUPS,
    PICKUPS_PER_WEEK,
    REQUESTS_PER_WEEK,
    TIME_TO_PICKUP,
    TOO_FEW_PICKUPS,
    CountRow,
    OutcomeRow,
    PickupRow,
    build_campaign_tables,
    build_report,
    format_counts,
    median_buckets,
    median_words,
    weeks_between,
)
from bot.report import bar_height, chart_figure, render_csv, render_markdown, y_ticks
from flows.outreach import BUCKET_KEYS, pickup_bucket

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("waited", "bucket"),
    [
        (-5 * H, "<1h"),
        (dt.timedelta(0), "<1h"),
        (H - dt.timedelta(seconds=1), "<1h"),
        (H, "1-4h"),
        (4 * H - dt.timedelta(seconds=1), "1-4h"),
        (4 * H, "4-24h"),
        (D - dt.timedelta(seconds=1), "4-24h"),
        (D, "1-3d"),
        (3 * D, "3-7d"),
        (7 * D - dt.timedelta(seconds=1), "3-7d"),
        (7 * D, ">7d"),
        (400 * D, ">7d"),
    ],
)
def test_pickup_buckets(waited: dt.timedelta, bucket: str) -> None:
    assert pickup_bucket(waited) == bucket
    assert bucket in BUCKET_KEYS


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        ([("1-4h", 10)], "between 1 and 4 hours"),
        # 11 waits: the 6th is in 1-4h, though the mean would be days.
        ([("<1h", 3), ("1-4h", 4), (">7d", 4)], "between 1 and 4 hours"),
        # 10 waits, the 5th in <1h and the 6th in 1-4h: under 4 hours, and no finer.
        ([("<1h", 5), ("1-4h", 5)], "under 4 hours"),
        ([("4-24h", 6), ("1-3d", 6)], "between 4 hours and 3 days"),
        ([("3-7d", 5), (">7d", 5)], "over 3 days"),
        ([(">7d", 3), ("<1h", 2), ("1-3d", 6)], "between 1 and 3 days"),
        ([("<1h", 4), ("<1h", 8)], "under 1 hour"),  # summed per bucket
        ([("<1h", 9)], TOO_FEW_PICKUPS),
        ([], NO_PICKUPS),
    ],
)
def test_median_from_bucket_counts(counts: list[tuple[str, int]], words: str) -> None:
    assert median_words(counts) == words


def test_median_buckets_are_the_two_middle_waits() -> None:
    assert median_buckets([]) is None
    assert median_buckets([("<1h", 1)]) == ("<1h", "<1h")
    assert median_buckets([("<1h", 1), ("3-7d", 1)]) == ("<1h", "3-7d")
    with pytest.raises(ValueError):
        median_buckets([("2h", 1)])


def test_the_period_is_rounded_out_to_whole_iso_weeks() -> None:
    # 2027-01-01 is a Friday of ISO week 2026-W53; 2027-06-30 a Wednesday of 2027-W26.
    report = build_report(
        dt.date(2027, 1, 1),
        dt.date(2027, 6, 30),
        [
            CountRow("-", "pl", "2026-W52", requested=50),  # before: left out
            CountRow("-", "pl", "2026-W53", requested=12),
            CountRow("-", "pl", "2027-W26", requested=20),
            CountRow("-", "pl", "2027-W27", requested=70),  # after: left out
        ],
    )
    assert report.weeks[0] == "2026-W53" and report.weeks[-1] == "2027-W26"
    assert len(report.weeks) == 27
    assert report.first_day == dt.date(2026, 12, 28) and report.last_day == dt.date(2027, 7, 4)
    requests = report.table("Contact requests")
    assert requests.cells[-1][-1] == "32"
    assert weeks_between(dt.date(2027, 3, 7), dt.date(2027, 3, 8)) == ["2027-W09", "2027-W10"]
    with pytest.raises(ValueError):
        build_report(dt.date(2027, 2, 1), dt.date(2027, 1, 1), [])


def small_report() -> object:
    return build_report(
        dt.date(2027, 3, 1),
        dt.date(2027, 3, 21),  # 2027-W09 to W11
        [
            CountRow("AbCd1234", "pl", "2027-W09", started=30, requested=12, picked_up=10),
            CountRow("AbCd1234", "pl", "2027-W10", started=20, requested=3, picked_up=4),
            CountRow("-", "ur", "2027-W10", started=40, requested=25, picked_up=25, closed=11),
            CountRow("-", "ur", "2027-W11", started=35, requested=30, picked_up=20),
        ],
        [
            OutcomeRow("-", "ur", "2027-W10", "closed:supported", 11),
            OutcomeRow("-", "ur", "2027-W10", "contacted", 14),
        ],
        [
            PickupRow("pl", "2027-W09", "<1h", 10),
            PickupRow("pl", "2027-W10", "1-4h", 4),
            PickupRow("ur", "2027-W10", "1-4h", 25),
            PickupRow("ur", "2027-W11", "4-24h", 20),
        ],
    )


def test_the_report_tables_and_their_shared_figures() -> None:
    report = small_report()
    from bot.outreach_tables import Report

    assert isinstance(report, Report)
    titles = [t.title for t in report.tables]
    assert titles == [
        "Conversations started",
        "Contact requests",
        "Picked up",
        "Closed",
        "Outcomes recorded",
        "Closed, by reason",
        TIME_TO_PICKUP,
        REQUESTS_PER_WEEK,
        PICKUPS_PER_WEEK,
    ]
    requests = report.table("Contact requests")
    assert requests.row_labels == ("pl", "ur", "Total")
    assert requests.column_labels == ("AbCd1234", "no campaign", "Total")
    assert requests.cells == (
        ("15", "0", "15"),
        ("0", "55", "55"),
        ("15", "55", "70"),
    )
    # The per-week table shows the same campaign totals and grand total.
    weekly = report.table(REQUESTS_PER_WEEK)
    assert weekly.row_labels == ("2027-W09", "2027-W10", "2027-W11", "Total")
    assert weekly.cells[-1] == requests.cells[-1]
    # W10 has 3 for the campaign: hidden, and enough withheld that it cannot be worked out.
    assert weekly.cells[1][0] == FEWER_THAN_TEN
    assert WITHHELD in weekly.cells[0] + weekly.cells[1]
    # Picked up in Polish: 14 by campaign, and 14 over the time buckets.
    picked = report.table("Picked up")
    times = report.table(TIME_TO_PICKUP)
    assert picked.cells[0][-1] == times.cells[-1][0] == "14"
    assert report.median == "between 1 and 4 hours"
    outcomes = report.table("Outcomes recorded")
    assert outcomes.row_labels == ("Contacted", "Could not reach", "Closed", "Total")
    closed = report.table("Closed")
    assert outcomes.cells[2][-1] == closed.cells[-1][-1] == "11"


def test_nothing_counted_is_an_empty_report() -> None:
    report = build_report(dt.date(2027, 3, 1), dt.date(2027, 3, 31), [])
    assert report.empty and report.median == NO_PICKUPS
    markdown = render_markdown(report, dt.date(2027, 4, 1))
    assert "There is nothing to show for this period" in markdown
    assert render_csv(report).strip() == "table,row,column,value"
    # Rows of zeros are nothing to show too.
    assert build_report(
        dt.date(2027, 3, 1), dt.date(2027, 3, 31), [CountRow("-", "pl", "2027-W10")]
    ).empty


def test_a_campaign_page_shows_weeks_then_months() -> None:
    rows = [
        CountRow("AbCd1234", "pl", "2027-W09", started=12),
        CountRow("AbCd1234", "ur", "2027-W11", started=30, requested=2),
    ]
    tables = build_campaign_tables(rows)
    assert [t.title for t in tables] == [
        "Conversations started",
        "Contact requests",
        "Picked up",
        "Closed",
    ]
    started = tables[0]
    # Every week from the first to the last, the empty one included.
    assert started.column_labels == ("2027-W09", "2027-W10", "2027-W11", "Total")
    assert started.cells[-1] == ("12", "0", "30", "42")
    assert tables[1].cells[1][2] == FEWER_THAN_TEN
    many = [*rows, CountRow("AbCd1234", "pl", "2027-W30", started=15)]
    months = build_campaign_tables(many)[0]
    # A week is in the month of its Thursday: 2027-W09 (1-7 March) is March.
    assert months.column_labels[0] == "2027-03" and months.column_labels[-2] == "2027-07"
    assert months.cells[-1][-1] == "57"
    empty = build_campaign_tables([])
    assert empty[0].row_labels == ("-", "Total") and empty[0].cells[0] == ("0", "0")


def test_outreach_counts_text() -> None:
    assert format_counts([]) == NO_COUNTS + "\n"
    text = format_counts(
        [("-", build_campaign_tables([CountRow("-", "pl", "2027-W09", started=12)]))]
    )
    assert "== campaign no campaign ==" in text and "Conversations started" in text
    assert re.search(r"^Total\s+12\s+12$", text, re.MULTILINE)


# ---- the chart --------------------------------------------------------------------------------


def test_y_ticks_are_multiples_of_ten() -> None:
    assert y_ticks(0) == [0, 10]
    assert y_ticks(10) == [0, 10]
    assert y_ticks(11) == [0, 10, 20]
    assert y_ticks(250) == [0, 50, 100, 150, 200, 250]
    for highest in range(0, 5000, 37):
        ticks = y_ticks(highest)
        assert all(t % 10 == 0 for t in ticks) and ticks[-1] >= highest and len(ticks) <= 12


def test_the_chart_draws_a_hidden_week_as_a_band_not_at_its_height() -> None:
    report = small_report()
    from bot.outreach_tables import Report

    assert isinstance(report, Report)
    figure = chart_figure(report)
    figure.canvas.draw()
    axes = figure.axes[0]
    weekly = report.table(REQUESTS_PER_WEEK)
    total = weekly.column_labels.index("Total")
    shown = {
        week: cells[total] for week, cells in zip(weekly.row_labels, weekly.cells, strict=True)
    }
    # W09: 12 requests, W10: 3 + 25; both withheld (the campaign's 3 in W10 must not be worked
    # out from the campaign's shown total of 15). W11: 30, shown.
    assert shown["2027-W09"] == shown["2027-W10"] == WITHHELD and shown["2027-W11"] == "30"
    bars = {p.get_gid(): p for p in axes.patches}
    truth = {"2027-W09": 12, "2027-W10": 28, "2027-W11": 30}
    for week, text in shown.items():
        if week == "Total":
            continue
        bar = bars[f"requests {week}"]
        assert bar.get_height() == bar_height(text)
        if text in (FEWER_THAN_TEN, WITHHELD):
            assert bar.get_height() == 10 != truth[week] and bar.get_hatch()
        else:
            assert bar.get_height() == truth[week] and not bar.get_hatch()
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert labels and all(int(t) % 10 == 0 for t in labels)
    # The SVG's text says the same: week labels, ticks of ten, no data labels.
    svg = io.StringIO()
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure.savefig(svg, format="svg")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg.getvalue())
    assert "2027-W09" in texts and "fewer than 10 (drawn up to 10)" in texts
    for text in texts:
        for number in re.findall(r"\d+", text.replace("2027-W", "")):
            assert not 1 <= int(number) <= 9 or text.startswith("2027-W"), text
