"""The portal's interface text is all in its gettext catalogue: what Babel extracts from the
portal's code and templates today is exactly what locales/portal/portal.pot and the shipped
English catalogue hold (run the commands in bot/portal/i18n.py when this fails)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.config import ConfigError, load_settings
from bot.portal import i18n
from bot.portal.config import load_portal_settings

PORTAL = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def extracted() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PORTAL), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def msgids(path: Path) -> set[str]:
    with path.open("rb") as fh:
        catalog = read_po(fh)
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_the_template_holds_every_string_the_portal_shows() -> None:
    now = extracted()
    assert len(now) > 100  # the templates and the call sheet's labels were read
    pot = msgids(i18n.portal_locales_dir() / "portal.pot")
    assert now - pot == set(), "new portal text not in portal.pot: extract again"
    assert pot - now == set(), "portal.pot holds text the portal no longer shows"


def test_english_is_shipped_and_matches_the_template() -> None:
    assert "en" in i18n.languages()
    english = i18n.portal_locales_dir() / "en" / "LC_MESSAGES" / "portal.po"
    assert msgids(english) == msgids(i18n.portal_locales_dir() / "portal.pot")


def test_table_text_is_marked_for_extraction() -> None:
    """Labels kept in tables (outcomes, reasons, the call sheet) are translated where shown:
    they must be in the catalogue too, not only the literals inside `_()`."""
    from bot.portal.answers import CLOSE_REASONS, LABELS, OUTCOMES, SECTIONS, STATUSES

    tables = [*CLOSE_REASONS.values(), *LABELS.values(), *OUTCOMES.values(), *STATUSES.values()]
    tables += [title for title, _fields in SECTIONS]
    assert set(tables) <= extracted()


def test_a_portal_language_without_a_catalogue_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = load_settings({"SAFEBOT_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError) as caught:
        load_portal_settings(settings, {"SAFEBOT_PORTAL_LANGUAGE": "cy"})
    assert str(caught.value) == (
        "SAFEBOT_PORTAL_LANGUAGE 'cy' has no portal catalogue (locales/portal has: en)"
    )
    assert load_portal_settings(settings, {}).language == "en"
