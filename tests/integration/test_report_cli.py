"""`safebot report` as a child process: the three files from a migrated SQLite database, an
empty period that says so, and each way it can be started wrong (a date that does not parse,
--from after --to, a folder that does not exist or cannot be written, no database): one
clear line, exit 1, no traceback, nothing written."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from tests.integration.test_cli_errors import fails_in_one_line, home, no_database, safebot

__all__ = ["home"]

PERIOD = ["--from", "2027-03-03", "--to", "2027-03-16"]  # Wednesday W09 to Tuesday W11


def add_counts(home: Path) -> None:
    rows = [
        ("AbCd1234", "en", "2027-W09", 40, 25, 22, 10),
        ("AbCd1234", "en", "2027-W10", 12, 3, 4, 2),
        ("-", "en", "2027-W10", 30, 18, 15, 11),
        ("-", "en", "2027-W12", 99, 99, 99, 99),  # after the period: left out
    ]
    with sqlite3.connect(home / "data" / "safebot.db") as db:
        db.executemany("INSERT INTO outreach_counts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany(
            "INSERT INTO pickup_times VALUES (?, ?, ?, ?)",
            [("en", "2027-W09", "<1h", 12), ("en", "2027-W09", "1-4h", 10),
             ("en", "2027-W10", "4-24h", 19)],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO outcome_counts VALUES (?, ?, ?, ?, ?)",
            [("AbCd1234", "en", "2027-W09", "closed:supported", 10),
             ("AbCd1234", "en", "2027-W10", "closed:other", 2),
             ("-", "en", "2027-W10", "closed:declined", 11),
             ("-", "en", "2027-W10", "contacted", 20)],
        )  # fmt: skip


def test_report_writes_markdown_csv_and_a_chart(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    add_counts(home)
    out = home / "out"
    out.mkdir()
    result = safebot(home, "report", *PERIOD, "--out", str(out))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"wrote {out / 'report.md'}",
        f"wrote {out / 'report.csv'}",
        f"wrote {out / 'requests-per-week.png'}",
    ]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "Period asked for: 2027-03-03 to 2027-03-16" in markdown
    assert "ISO weeks 2027-W09 to 2027-W11, Monday 2027-03-01 to Sunday 2027-03-21" in markdown
    assert "rounded out to the whole weeks" in markdown and "identifies a person" in markdown
    assert '"fewer than 10"' in markdown
    assert "| English (en) | 52 | 30 | 82 |" in markdown  # conversations started
    assert "**Median time to pick-up:** between 1 and 4 hours" in markdown
    assert "99" not in markdown
    with (out / "report.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def table(title: str) -> dict[tuple[str, str], str]:
        return {(r["row"], r["column"]): r["value"] for r in rows if r["table"] == title}

    started = table("Conversations started")
    assert started[("Total", "Total")] == "82" and started[("English (en)", "AbCd1234")] == "52"
    weekly = table("Contact requests per week")
    assert weekly[("2027-W10", "AbCd1234")] == "fewer than 10"
    assert weekly[("2027-W11", "Total")] == "0"
    png = (out / "requests-per-week.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_an_empty_period_says_there_is_nothing_to_show(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    result = safebot(
        home, "report", "--from", "2020-01-01", "--to", "2020-01-31", "--out", str(home)
    )
    assert result.code == 0, result.err
    markdown = (home / "report.md").read_text(encoding="utf-8")
    assert "nothing to show for this period" in markdown
    assert (home / "report.csv").read_text(encoding="utf-8").strip() == "table,row,column,value"
    assert (home / "requests-per-week.png").exists()


def test_bad_input_is_one_line_and_exit_1(home: Path) -> None:
    cases = [
        (["--from", "2027-02-30", "--to", "2027-03-01"], "--from '2027-02-30' is not a date"),
        (["--from", "2027-03-01", "--to", "1 March"], "--to '1 March' is not a date"),
        (["--from", "2027-03-10", "--to", "2027-03-01"], "--from 2027-03-10 is after --to"),
        ([*PERIOD, "--out", str(home / "nowhere")], "no such folder"),
        ([*PERIOD, "--out", str(home / "deployment.toml")], "no such folder"),
    ]
    for args, words in cases:
        result = safebot(home, "report", *args)
        assert result.code == 1, (args, result.err)
        fails_in_one_line(result, words)
    # No database: said before anything is written, and none is made.
    result = safebot(home, "report", *PERIOD, "--out", str(home))
    assert result.code == 1
    fails_in_one_line(result, "no database at", "safebot migrate")
    no_database(home)
    assert not (home / "report.md").exists()


def test_a_folder_that_cannot_be_written(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    # /proc refuses new files even to root (who passes a permission check on any folder).
    result = safebot(home, "report", *PERIOD, "--out", "/proc")
    assert result.code == 1
    fails_in_one_line(result, "/proc")
