"""Languages: catalogues, the fallback chain, native names and script direction.

Catalogues are gettext `.po` files read at run time with Babel (no compile step). Babel's
`Locale.negotiate` does not fall back from `pt` to `pt_BR`, so the chain is written here:
explicit choice, exact tag, bare language, same language in any region, default.
Native names and text direction come from CLDR, never from a hand-written table.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

_TAG = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")


class Translator(Protocol):
    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...


@dataclass(frozen=True)
class Catalogs:
    """Loaded translations by language code, plus the source language (English)."""

    translations: Mapping[str, gettext.NullTranslations]
    source_language: str = "en"

    def get(self, language: str | None) -> Translator:
        return self.translations.get(language or "", gettext.NullTranslations())

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({self.source_language, *self.translations}))

    def missing(self, language: str, msgids: Iterable[str]) -> list[str]:
        """Source strings with no translation in `language` (empty for the source language)."""
        if language == self.source_language:
            return []
        tr = self.translations.get(language)
        if tr is None:
            return list(msgids)
        catalog: Mapping[str, str] = getattr(tr, "_catalog", {})
        return [m for m in msgids if not catalog.get(m)]


def bundled_locales_dir() -> Path:
    return Path(str(resources.files("locales")))


def load_catalogs(locales_dir: Path | None = None, source_language: str = "en") -> Catalogs:
    locales_dir = locales_dir or bundled_locales_dir()
    out: dict[str, gettext.NullTranslations] = {}
    for po_path in sorted(locales_dir.glob("*/LC_MESSAGES/messages.po")):
        code = po_path.parent.parent.name
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=code)
        out[code] = compile_catalog(catalog)
    return Catalogs(translations=out, source_language=source_language)


def compile_catalog(catalog: Catalog) -> gettext.GNUTranslations:
    """A catalogue read with Babel's `read_po`, as the translations the engine uses."""
    buf = io.BytesIO()
    # Fuzzy entries are a translator's guess: leave them out, English shows instead.
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def normalise_tag(tag: str | None) -> str | None:
    """`pt-br` -> `pt_BR`; None for anything that is not a plausible language tag."""
    if not tag or not _TAG.match(tag):
        return None
    parts = re.split(r"[_-]", tag)
    return "_".join([parts[0].lower(), *[p.upper() if len(p) == 2 else p for p in parts[1:]]])


# Tags a phone may send that name, or are best served by, a language under another code.
# Checked in order after the exact tag; the first one enabled wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "prs": ("fa_AF",),  # Dari's own ISO 639-3 code
    "fa_AF": ("prs",),
    "ku": ("kmr",),  # Telegram's "ku" is Kurmanji (Latin script) ...
    "ku_Arab": ("ckb",),  # ... unless written in Arabic script: Sorani
    "ku_IQ": ("ckb",),
    "ku_IR": ("ckb",),
    "kmr": ("ku",),
    "ckb": ("ku_Arab",),
    "zh_TW": ("zh_Hant",),
    "zh_HK": ("zh_Hant",),
    "zh_MO": ("zh_Hant",),
    "zh_Hant_TW": ("zh_Hant",),
    "zh_Hant_HK": ("zh_Hant",),
    "pt_BR": ("pt",),
    "pt_PT": ("pt",),
}


def negotiate(hint: str | None, available: Iterable[str], default: str) -> str:
    """Pick the enabled language closest to a client's hint (e.g. Telegram's language_code)."""
    avail = list(available)
    tag = normalise_tag(hint)
    if tag is None:
        return default
    if tag in avail:
        return tag
    for alias in ALIASES.get(tag, ()):
        if alias in avail:
            return alias
    bare = tag.split("_")[0]
    if bare in avail:
        return bare
    for code in avail:
        if code.split("_")[0] == bare:
            return code
    return default


def _locale(code: str) -> Locale | None:
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return None


# Where CLDR's own name is not what a speaker would look for on a button: Dari is "Persian
# (Afghanistan)" in CLDR, Kurmanji carries its script and country, Sorani is "Central Kurdish".
OWN_NAMES = {
    "fa_AF": "دری",
    "prs": "دری",
    "kmr": "Kurmancî",
    "ckb": "کوردی (سۆرانی)",
    "zh_Hant": "繁體中文",
}


@lru_cache(maxsize=256)
def native_name(code: str) -> str:
    """The language's name in itself, as CLDR writes it ("polski", "العربية"), or ours where
    CLDR's does not serve (OWN_NAMES)."""
    if code in OWN_NAMES:
        return OWN_NAMES[code]
    loc = _locale(code)
    name = (loc.get_display_name(loc) if loc else None) or code
    # CLDR writes some names in lower case ("polski"); a button label starts with a capital.
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=256)
def is_rtl(code: str | None) -> bool:
    loc = _locale(code) if code else None
    return bool(loc and loc.text_direction == "rtl")
