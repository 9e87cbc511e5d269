"""`safebot translations check` and `report` (bot/translations.py).

Each fault is injected into a temporary copy of the Polish and Arabic catalogues (or of the
bundled deployment's parsed TOML) and must come out as its exact problem line, and as the only
new one: the check runs on the copy before and after, so a translator's edit to the shipped
catalogues meanwhile does not break these tests, and a check that is removed does.

The shipped catalogues are held to no problem for the languages the bundled deployment
enables, and only those: translators add catalogues that are not finished yet (an empty
`pybabel init`, no review status), and a language is not shown to anyone until it is enabled.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import escape, read_po, unescape

from bot.config import bundled_deployment_path
from bot.translations import (
    Findings,
    check_translations,
    enabled_languages,
    format_table,
    header_fields,
    html_problem,
    parse_review,
    placeholder_problem,
    write_png,
)
from flows.definition import load_flow
from flows.i18n import bundled_locales_dir
from tests.integration.test_cli_errors import fails_in_one_line, no_database, safebot

FLOW = load_flow()
DEPLOYMENT: dict[str, Any] = tomllib.loads(bundled_deployment_path().read_text(encoding="utf-8"))
ENABLED = enabled_languages(DEPLOYMENT)
COPIED = ("pl", "ar")
PENDING = "machine-written 2026-12-01, back-translation pending, pending native review"


# ---- a copy of the catalogues, and faults to put in it ---------------------------------------


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    out = tmp_path / "locales"
    for code in COPIED:
        shutil.copytree(bundled_locales_dir() / code, out / code)
    return out


def po(locales: Path, code: str) -> Path:
    return locales / code / "LC_MESSAGES" / "messages.po"


def check(
    locales: Path,
    languages: Sequence[str] = COPIED,
    deployment: Mapping[str, Any] = DEPLOYMENT,
) -> Findings:
    return check_translations(FLOW, deployment, locales, languages)


def new_problems(
    locales: Path,
    fault: Callable[[], object],
    languages: Sequence[str] = COPIED,
    deployment: Mapping[str, Any] = DEPLOYMENT,
) -> list[str]:
    """The problem lines `fault` adds."""
    before = set(check(locales, languages).lines())
    fault()
    return [line for line in check(locales, languages, deployment).lines() if line not in before]


def _continuation(lines: list[str], start: int) -> int:
    """How many quoted lines continue the string on line `start`."""
    count = 0
    for line in lines[start + 1 :]:
        if not line.startswith('"'):
            break
        count += 1
    return count


def _msgid_of(block: list[str]) -> str | None:
    start = next((i for i, line in enumerate(block) if line.startswith("msgid ")), None)
    if start is None:
        return None
    parts = [
        block[start][len("msgid ") :],
        *block[start + 1 : start + 1 + _continuation(block, start)],
    ]
    return "".join(unescape(p) for p in parts)


def edit_entry(path: Path, msgid: str, change: Callable[[list[str]], list[str]]) -> None:
    """Change the lines of `msgid`'s entry in the .po file's own text."""
    blocks = path.read_text(encoding="utf-8").split("\n\n")
    for n, block in enumerate(blocks):
        lines = block.split("\n")
        if _msgid_of(lines) == msgid:
            blocks[n] = "\n".join(change(lines))
            path.write_text("\n\n".join(blocks), encoding="utf-8")
            return
    raise AssertionError(f"no entry {msgid!r} in {path}")


def msgstr(path: Path, msgid: str) -> str:
    with path.open("rb") as fh:
        message = read_po(fh).get(msgid)
    assert message is not None and isinstance(message.string, str), msgid
    return message.string


def set_msgstr(path: Path, msgid: str, text: str) -> None:
    def change(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith("msgstr"))
        return [*lines[:start], f"msgstr {escape(text)}"]

    edit_entry(path, msgid, change)


def set_plural_form(path: Path, msgid: str, index: int, text: str) -> None:
    def change(lines: list[str]) -> list[str]:
        prefix = f"msgstr[{index}] "
        start = next(i for i, line in enumerate(lines) if line.startswith(prefix))
        end = start + 1 + _continuation(lines, start)
        return [*lines[:start], prefix + escape(text), *lines[end:]]

    edit_entry(path, msgid, change)


def plural_form(path: Path, msgid: str, index: int) -> str:
    with path.open("rb") as fh:
        message = read_po(fh).get(msgid)
    assert message is not None and not isinstance(message.string, str), msgid
    return str(message.string[index])


def mark_fuzzy(path: Path, msgid: str) -> None:
    def change(lines: list[str]) -> list[str]:
        flags = next((i for i, line in enumerate(lines) if line.startswith("#,")), None)
        if flags is not None:
            return [*lines[:flags], lines[flags] + ", fuzzy", *lines[flags + 1 :]]
        start = next(i for i, line in enumerate(lines) if line.startswith("msgid "))
        return [*lines[:start], "#, fuzzy", *lines[start:]]

    edit_entry(path, msgid, change)


def set_review(path: Path, status: str | None) -> None:
    """Replace (None: remove) the header's X-Review-Status field, however it is wrapped."""
    text = path.read_text(encoding="utf-8")
    start = text.index('"X-Review-Status:')
    end = text.index('\\n"\n', start) + len('\\n"\n')
    field = "" if status is None else f'"X-Review-Status: {status}\\n"\n'
    path.write_text(text[:start] + field + text[end:], encoding="utf-8")


def without_language(data: Mapping[str, Any], code: str) -> dict[str, Any]:
    """The deployment with `code` not enabled: gone from every list and every per-language
    table (policy translations, descriptions, hours...)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != code}
        if isinstance(value, list):
            return [strip(v) for v in value if v != code]
        return value

    out: dict[str, Any] = strip(copy.deepcopy(dict(data)))
    return out


MENU_TEXT = "Choose what you want to know."  # on the menu screen only


# ---- each fault, one problem line ---------------------------------------------------------------


def test_a_removed_msgstr_is_missing(locales: Path) -> None:
    added = new_problems(locales, lambda: set_msgstr(po(locales, "pl"), MENU_TEXT, ""))
    assert added == [f"pl: missing translation: {MENU_TEXT}"]


def test_an_empty_plural_form_is_missing(locales: Path) -> None:
    singular = FLOW.plurals["retention_days"][0]
    added = new_problems(locales, lambda: set_plural_form(po(locales, "pl"), singular, 2, ""))
    assert added == [f"pl: missing translation: {singular}"]


def test_a_fuzzy_entry_is_reported(locales: Path) -> None:
    added = new_problems(locales, lambda: mark_fuzzy(po(locales, "pl"), MENU_TEXT))
    assert added == [f"pl: fuzzy translation: {MENU_TEXT}"]


def test_a_renamed_placeholder_is_reported(locales: Path) -> None:
    source = FLOW.strings["own_answer"]  # "Your own words: {answer}"
    path = po(locales, "pl")
    renamed = msgstr(path, source).replace("{answer}", "{odpowiedz}")
    added = new_problems(locales, lambda: set_msgstr(path, source, renamed))
    assert added == [
        f"pl: placeholders differ (expected {{answer}}, found {{odpowiedz}}): {source}"
    ]


def test_a_plural_form_for_many_numbers_must_keep_n(locales: Path) -> None:
    # Arabic's form 1 is for 1 only and may say "one day" in words (as shipped); form 4 is for
    # 11..99 and must show the number.
    singular = FLOW.plurals["retention_days"][0]
    path = po(locales, "ar")
    assert "{n}" not in plural_form(path, singular, 1)
    words = plural_form(path, singular, 4).replace("{n}", "")
    added = new_problems(locales, lambda: set_plural_form(path, singular, 4, words))
    assert added == [f"ar: placeholders differ (expected {{n}}, found none): {singular}"]


def test_an_added_tag_is_broken_html(locales: Path) -> None:
    path = po(locales, "ar")
    tagged = f"<b>{msgstr(path, MENU_TEXT)}</b>"
    added = new_problems(locales, lambda: set_msgstr(path, MENU_TEXT, tagged))
    assert added == [f"ar: HTML tags differ from the source (added <b> </b>): {MENU_TEXT}"]


def test_a_raw_less_than_is_broken_html_and_an_ampersand_is_not(locales: Path) -> None:
    path = po(locales, "pl")
    added = new_problems(locales, lambda: set_msgstr(path, MENU_TEXT, "Wybierz A & B."))
    assert added == []
    added = new_problems(locales, lambda: set_msgstr(path, MENU_TEXT, "Wybierz A < B."))
    assert added == [f"pl: broken HTML (a < that is not a tag of the source): {MENU_TEXT}"]


def test_a_60_character_button_label_is_too_long(locales: Path) -> None:
    label = ("Pomiń to pytanie i przejdź dalej " * 2)[:59] + "!"
    assert len(label) == 60 and label == label.strip()
    added = new_problems(locales, lambda: set_msgstr(po(locales, "pl"), "Skip", label))
    assert added == ["pl: button label over 40 characters (60): Skip"]


def test_a_choices_option_counts_with_its_mark(locales: Path) -> None:
    # 38 characters, and the ▫️ mark before it on the button: 41.
    label = "Popołudnia w dni robocze, po pracy xyz"
    assert len(label) == 38
    source = "Weekday afternoons"
    added = new_problems(locales, lambda: set_msgstr(po(locales, "pl"), source, label))
    assert added == [f"pl: button label over 40 characters (41 with its mark): {source}"]


def test_a_command_description_over_256_characters(locales: Path) -> None:
    source = FLOW.commands["start"]
    added = new_problems(locales, lambda: set_msgstr(po(locales, "pl"), source, "x" * 300))
    assert added == [f"pl: command description over 256 characters (300): {source}"]


def test_a_screen_over_600_visible_characters(locales: Path) -> None:
    path = po(locales, "pl")
    old = msgstr(path, MENU_TEXT)
    menu = next(s for s in check(locales).screens["pl"] if s.name == "menu")
    added = new_problems(locales, lambda: set_msgstr(path, MENU_TEXT, "słowo " * 120))
    shown = menu.visible - len(old) + len("słowo " * 120)
    assert added == [f"pl: screen over 600 visible characters ({shown}): menu"]


def test_a_message_over_telegrams_4096(locales: Path) -> None:
    path = po(locales, "pl")
    old = msgstr(path, MENU_TEXT)
    menu = next(s for s in check(locales).screens["pl"] if s.name == "menu")
    long = "ż" * 4200
    added = new_problems(locales, lambda: set_msgstr(path, MENU_TEXT, long))
    shown = menu.visible - len(old) + len(long)
    counted = menu.telegram - len(old) + len(long)  # all of them one UTF-16 unit
    assert added == [
        f"pl: screen over 600 visible characters ({shown}): menu",
        f"pl: message over Telegram's 4096 characters ({counted}): menu",
    ]


def test_a_catalogue_without_a_review_status(locales: Path) -> None:
    added = new_problems(locales, lambda: set_review(po(locales, "pl"), None))
    assert added == ["pl: no review status: X-Review-Status is missing from the header"]


def test_a_review_status_that_says_something_else(locales: Path) -> None:
    added = new_problems(locales, lambda: set_review(po(locales, "pl"), "machine translated"))
    assert added == ["pl: review status not understood: machine translated"]


def test_an_enabled_language_before_its_back_translation_check(locales: Path) -> None:
    assert "pl" in ENABLED
    added = new_problems(locales, lambda: set_review(po(locales, "pl"), PENDING))
    assert added == [f"pl: enabled before its back-translation check: {PENDING}"]


def test_back_translation_pending_is_fine_while_not_enabled(locales: Path) -> None:
    without_ar = without_language(DEPLOYMENT, "ar")
    set_review(po(locales, "ar"), PENDING)
    set_review(po(locales, "pl"), PENDING)
    lines = check(locales, deployment=without_ar).lines()
    assert f"pl: enabled before its back-translation check: {PENDING}" in lines
    assert not [line for line in lines if line.startswith("ar:")], lines
    row = next(r for r in check(locales, deployment=without_ar).languages if r.code == "ar")
    assert not row.enabled and row.review is not None and row.review.short == "machine-written"


def test_a_deployment_text_missing_for_an_enabled_language(locales: Path) -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    del broken["organisations"][0]["description"]["pl"]
    added = new_problems(locales, lambda: None, deployment=broken)
    assert added == [
        "all: screens not checked: the deployment has 1 problem(s)",
        "pl: deployment: organisations[0].description has no 'pl' text",
    ]


def test_an_enabled_language_without_a_catalogue(locales: Path) -> None:
    assert "ro" in ENABLED and not po(locales, "ro").exists()
    lines = check(locales, ["ro"]).lines()
    assert f"ro: no catalogue: {po(locales, 'ro')}" in lines


def test_a_damaged_catalogue_cannot_be_read(locales: Path) -> None:
    path = po(locales, "pl")
    added = new_problems(
        locales, lambda: path.write_text(path.read_text(encoding="utf-8") + "garbage\n")
    )
    assert len(added) == 1 and added[0].startswith("pl: catalogue cannot be read: "), added


def test_a_broken_deployment_says_the_screens_were_not_checked(locales: Path) -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    del broken["organisations"][0]["description"]["ar"]
    lines = check(locales, ["pl"], deployment=broken).lines()
    # the problem is Arabic's, and only Polish is checked: but no Polish screen was rendered
    assert lines == [
        "all: screens not checked: the deployment has 1 problem(s) (1 of them in languages "
        "not checked here)"
    ]


def test_obsolete_entries_are_noted_not_problems(locales: Path) -> None:
    path = po(locales, "pl")

    def obsolete() -> None:
        text = path.read_text(encoding="utf-8").rstrip("\n")
        path.write_text(text + '\n\n#~ msgid "Gone"\n#~ msgstr "Nie ma"\n', encoding="utf-8")

    assert new_problems(locales, obsolete) == []
    findings = check(locales)
    assert next(r for r in findings.languages if r.code == "pl").unused == ("Gone",)
    assert "note: pl: 1 obsolete or unknown entry (not a problem), e.g. 'Gone'" in format_table(
        findings
    )


# ---- the shipped catalogues -------------------------------------------------------------------


def test_the_shipped_catalogues_have_no_problem_in_the_enabled_languages() -> None:
    findings = check_translations(FLOW, DEPLOYMENT, languages=ENABLED)
    assert findings.lines() == []
    assert {row.code for row in findings.languages} == set(ENABLED)


# ---- pure parts ---------------------------------------------------------------------------------


def test_the_review_formats() -> None:
    checked = parse_review(
        "machine-written 2026-12-01, back-translation checked 2026-12-02, pending native review"
    )
    assert checked.problem is None and not checked.back_translation_pending
    assert checked.short == "back-translation checked 2026-12-02"
    pending = parse_review(PENDING)
    assert pending.problem is None and pending.back_translation_pending
    assert pending.short == "machine-written"
    reviewed = parse_review("reviewed by Anna Nowak (Polska Pomoc) on 2027-01-15, after edits")
    assert reviewed.problem is None and not reviewed.back_translation_pending
    assert reviewed.short == "reviewed by Anna Nowak (Polska Pomoc) on 2027-01-15"
    for dishonest in (
        "machine-written 2026-12-01",
        "machine-written 2026-13-01, back-translation pending, pending native review",
        "machine-written 2026-12-02, back-translation checked 2026-12-01, pending native review",
        "reviewed",
    ):
        assert parse_review(dishonest).problem is not None, dishonest
    assert parse_review(None).status is None


def test_the_header_is_read_from_the_raw_text() -> None:
    raw = (
        "# comment\n#, fuzzy\n"
        'msgid ""\nmsgstr ""\n"Language: pl\\n"\n"X-Review-Status: machine-written 2026-12-01, "\n'
        '"back-translation pending, pending native review\\n"\n\nmsgid "Skip"\nmsgstr "Pomiń"\n'
    )
    assert header_fields(raw)["x-review-status"] == PENDING
    assert header_fields('msgid "Skip"\nmsgstr "Pomiń"\n') == {}


def test_unbalanced_tags_with_the_same_tags_as_the_source() -> None:
    assert html_problem("<b>x</b> y", "</b>x<b> y") == "unbalanced HTML tags"
    assert html_problem("<b>x</b> y", '<b class="a">y</b> x') is None


def test_a_plural_form_for_one_number_may_say_it_in_words() -> None:
    pair = ("{n} day, {org}", "{n} days, {org}")
    assert placeholder_problem(pair, "one day, {org}", one_number=True) is None
    assert placeholder_problem(pair, "one day", one_number=True) is not None
    assert placeholder_problem(pair, "days, {org}") is not None
    assert placeholder_problem(("{a}",), "{a") == "a { or } that is not a placeholder"


# ---- the report ---------------------------------------------------------------------------------


def test_the_report_has_a_row_per_language(locales: Path, tmp_path: Path) -> None:
    findings = check(locales, ["en", "pl", "ar"])
    table = format_table(findings)
    rows = {line.split()[0]: line for line in table.splitlines()[1:4]}
    assert re.match(r"en +English +yes +source +source +\d+ \(", rows["en"]), table
    assert re.match(r"pl +Polish +yes +\d+/\d+ \d+% +back-translation checked", rows["pl"]), table
    assert table.splitlines()[0].split() == [
        "code",
        "language",
        "enabled",
        "coverage",
        "review",
        "status",
        "longest",
        "screen",
    ]
    png = tmp_path / "board.png"
    write_png(findings, png, dt.date(2026, 12, 1))
    from matplotlib import image

    picture = image.imread(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.shape[0] > 100 and picture.shape[1] > 100


# ---- the command, as a child process ------------------------------------------------------------

# A deployment with a language that has no catalogue, and none of its texts.
UNCATALOGUED = "kl"


def test_the_commands(tmp_path: Path) -> None:
    home = tmp_path
    shipped = {"SAFEBOT_CONFIG": str(bundled_deployment_path())}

    result = safebot(home, "translations", "check", "--lang", *ENABLED, **shipped)
    assert (result.code, result.out, result.err) == (0, "no problems\n", "")

    # the bundled deployment, with one more language (the first `languages` is [deployment]'s)
    text = bundled_deployment_path().read_text(encoding="utf-8")
    text, count = re.subn(
        r"^languages = \[", f'languages = ["{UNCATALOGUED}", ', text, count=1, flags=re.M
    )
    assert count == 1
    (home / "deployment.toml").write_text(text, encoding="utf-8")
    result = safebot(home, "translations", "check", "--lang", UNCATALOGUED)
    lines = result.out.splitlines()
    assert result.code == 1, result
    assert any(line.startswith(f"{UNCATALOGUED}: no catalogue: ") for line in lines), lines
    assert any(line.startswith(f"{UNCATALOGUED}: deployment: policy.") for line in lines), lines
    assert lines[-1] == f"{len(lines) - 1} problem(s)"

    png = home / "board.png"
    result = safebot(home, "translations", "report", "--png", str(png), **shipped)
    assert result.code == 0, result
    assert result.out.splitlines()[0].split()[:3] == ["code", "language", "enabled"]
    assert re.search(r"^pl +Polish +yes ", result.out, re.MULTILINE), result.out
    assert result.out.endswith(f"wrote {png}\n")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000

    missing = home / "no" / "such" / "board.png"
    result = safebot(home, "translations", "report", "--png", str(missing), **shipped)
    line = fails_in_one_line(result, "does not exist", "--png")
    assert line == f"safebot: directory {missing.parent} does not exist (--png {missing})"
    assert result.code == 2 and result.out == ""
    no_database(home)
