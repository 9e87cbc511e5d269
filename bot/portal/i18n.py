"""The portal's interface text goes through gettext, so Babel extracts it (`_("...")` in
Python and in the templates; `N_("...")` marks text kept in tables and translated where it is
shown). Catalogues are `locales/portal/<language>/LC_MESSAGES/portal.po`, read at start with
Babel like the bot's (no compile step). English is the source and the language shipped; a
deployment's own catalogue is chosen with SAFEBOT_PORTAL_LANGUAGE.

    pybabel extract -F bot/portal/babel.cfg -k N_ --no-location --sort-output \\
        -o locales/portal/portal.pot bot/portal
    pybabel update -D portal -i locales/portal/portal.pot -d locales/portal
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from flows.i18n import bundled_locales_dir

DOMAIN = "portal"
SOURCE_LANGUAGE = "en"

_translations: gettext.NullTranslations = gettext.NullTranslations()


def portal_locales_dir() -> Path:
    return bundled_locales_dir() / DOMAIN


def languages(locales_dir: Path | None = None) -> list[str]:
    base = locales_dir or portal_locales_dir()
    return sorted(p.parent.parent.name for p in base.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def load(language: str, locales_dir: Path | None = None) -> gettext.NullTranslations:
    """The portal's catalogue for `language`; KeyError if there is none."""
    path = (locales_dir or portal_locales_dir()) / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        raise KeyError(language)
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)  # a translator's guess is not shown
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def use(translations: gettext.NullTranslations) -> None:
    """The catalogue the portal speaks from now on (one language per server)."""
    global _translations
    _translations = translations


def _(message: str) -> str:
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks text for extraction where it is defined; `_()` translates it where shown."""
    return message
