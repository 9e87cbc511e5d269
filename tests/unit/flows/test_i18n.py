"""Languages: the fallback chain, native names, direction, catalogues and plurals."""

from __future__ import annotations

import gettext

import pytest

from flows.engine import Context
from flows.i18n import (
    Catalogs,
    bundled_locales_dir,
    is_rtl,
    native_name,
    negotiate,
    normalise_tag,
)

AVAILABLE = ["en", "pl", "ar", "pt_BR", "zh_Hant"]


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("pl", "pl"),  # exact
        ("pt_BR", "pt_BR"),  # exact, with region
        ("pt-br", "pt_BR"),  # exact after normalising
        ("pl-PL", "pl"),  # bare language
        ("ar_EG", "ar"),
        ("EN-gb", "en"),
        ("pt", "pt_BR"),  # same language, other region
        ("pt-PT", "pt_BR"),
        ("zh-TW", "zh_Hant"),
        ("de", "en"),  # default
        ("de-DE", "en"),
        ("../../etc", "en"),  # garbage
        ("", "en"),
        (None, "en"),
        ("e", "en"),
        ("en-", "en"),
        ("pl;q=0.9", "en"),
        ("p" * 100, "en"),
        ("\x00pl", "en"),
    ],
)
def test_negotiate_fallback_chain(hint: str | None, expected: str) -> None:
    assert negotiate(hint, AVAILABLE, "en") == expected


WIDE = ["en", "pt", "zh_Hant", "fa", "fa_AF", "kmr", "ckb", "ur"]


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("pt-BR", "pt"),  # Brazilian phones get the one Portuguese
        ("pt-PT", "pt"),
        ("zh-TW", "zh_Hant"),
        ("zh-HK", "zh_Hant"),
        ("zh-Hant", "zh_Hant"),
        ("zh-Hant-HK", "zh_Hant"),
        ("zh-CN", "zh_Hant"),  # the only Chinese there is
        ("prs", "fa_AF"),  # Dari by its own code
        ("fa-AF", "fa_AF"),
        ("fa-IR", "fa"),
        ("fa", "fa"),
        ("ku", "kmr"),  # Kurmanji
        ("ku-IQ", "ckb"),  # Kurdish from Iraq: Sorani
        ("ckb", "ckb"),
        ("ur-PK", "ur"),
        ("xx", "en"),  # unknown: English (the picker is offered first)
    ],
)
def test_negotiate_sends_every_spelling_to_the_language_it_means(
    hint: str, expected: str
) -> None:
    assert negotiate(hint, WIDE, "en") == expected


def test_negotiate_default_when_nothing_available() -> None:
    assert negotiate("pl", [], "en") == "en"
    assert negotiate("pl", ("ar",), "ar") == "ar"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("pt-br", "pt_BR"),
        ("EN_gb", "en_GB"),
        ("zh-Hant-TW", "zh_Hant_TW"),
        ("ar", "ar"),
        ("../../etc", None),
        ("", None),
        (None, None),
        ("1234", None),
    ],
)
def test_normalise_tag(tag: str | None, expected: str | None) -> None:
    assert normalise_tag(tag) == expected


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("en", "English"),
        ("pl", "Polski"),  # CLDR writes "polski": a button starts with a capital
        ("ar", "العربية"),
        ("ti", "ትግርኛ"),
        ("fa_AF", "دری"),  # not CLDR's "Persian (Afghanistan)"
        ("kmr", "Kurmancî"),  # not "Kurdî (kurmancî) (latînî, Türkiye)"
        ("zh_Hant", "繁體中文"),
    ],
)
def test_native_name(code: str, name: str) -> None:
    assert native_name(code) == name


def test_native_name_of_nonsense_does_not_raise() -> None:
    for code in ("", "../../etc", "xx", "zz_ZZ"):
        assert isinstance(native_name(code), str)


@pytest.mark.parametrize(
    ("code", "rtl"),
    [("ar", True), ("he", True), ("fa", True), ("ur", True), ("pl", False), ("en", False)],
)
def test_is_rtl(code: str, rtl: bool) -> None:
    assert is_rtl(code) is rtl


@pytest.mark.parametrize("code", [None, "", "xx", "../../etc"])
def test_is_rtl_of_nonsense_is_false(code: str | None) -> None:
    assert is_rtl(code) is False


def test_shipped_catalogues_load(ctx: Context) -> None:
    shipped = {p.parent.parent.name for p in bundled_locales_dir().glob("*/LC_MESSAGES/*.po")}
    assert {"pl", "ar", "ro", "ur"} <= shipped
    assert set(ctx.catalogs.translations) == shipped
    assert ctx.catalogs.languages == tuple(sorted({"en", *shipped}))
    assert set(ctx.deployment.languages) <= set(ctx.catalogs.languages)
    for code in shipped:  # each one really translates (not an empty catalogue)
        assert ctx.catalogs.missing(code, ["Continue"]) == [], code


def test_unknown_language_falls_back_to_the_source(ctx: Context) -> None:
    for code in (None, "", "xx"):
        tr = ctx.catalogs.get(code)
        assert tr.gettext("Welcome") == "Welcome"
        assert tr.ngettext("{n} day", "{n} days", 2) == "{n} days"


def test_missing_is_empty_for_the_source_language() -> None:
    catalogs = Catalogs(translations={})
    assert catalogs.missing("en", ["a", "b"]) == []
    assert catalogs.missing("pl", ["a", "b"]) == ["a", "b"]


def test_missing_lists_untranslated_strings() -> None:
    tr = gettext.NullTranslations()
    tr._catalog = {"a": "A", "b": ""}  # type: ignore[attr-defined]
    assert Catalogs(translations={"pl": tr}).missing("pl", ["a", "b", "c"]) == ["b", "c"]


def test_polish_plural_forms(ctx: Context) -> None:
    singular, plural = ctx.flow.plurals["retention_days"]
    tr = ctx.catalogs.get("pl")
    forms = {n: tr.ngettext(singular, plural, n) for n in (1, 2, 5, 22, 25)}
    if forms[1] == singular:
        pytest.skip("the pl catalogue has no translation for 'retention_days' yet")
    assert forms[2] == forms[22] != forms[1]
    assert forms[5] == forms[25] != forms[1]


def skip_unless_arabic_plural_translated(ctx: Context, key: str) -> None:
    """Translators are still at work: an untranslated plural is compiled as the English source
    (Babel fills empty msgstr[n] with the msgid), so `_catalog` holds English, not nothing."""
    singular, plural = ctx.flow.plurals[key]
    catalog = getattr(ctx.catalogs.translations["ar"], "_catalog", {})
    entries = [catalog.get((singular, i)) for i in range(6)]
    if not all(e and e not in (singular, plural) for e in entries):
        pytest.skip(f"the ar catalogue's {key!r} entry is not (fully) translated yet")


def test_arabic_plural_forms_differ(ctx: Context) -> None:
    skip_unless_arabic_plural_translated(ctx, "retention_days")
    singular, plural = ctx.flow.plurals["retention_days"]
    tr = ctx.catalogs.translations["ar"]
    forms = [tr.ngettext(singular, plural, n) for n in (1, 2, 3, 11, 100)]
    assert len(set(forms)) == len(forms), forms


def test_arabic_one_day_is_said_without_a_number(ctx: Context) -> None:
    # Arabic says "one day" as يوم واحد; "{n} يوم" for n == 1 reads as "1 day(s)".
    skip_unless_arabic_plural_translated(ctx, "retention_days")
    singular, plural = ctx.flow.plurals["retention_days"]
    one = ctx.catalogs.get("ar").ngettext(singular, plural, 1)
    assert "يوم واحد" in one
    assert "{n}" not in one
    assert "{n}" in ctx.catalogs.get("ar").ngettext(singular, plural, 30)
