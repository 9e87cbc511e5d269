"""`check_flow`: what is not fit to ship (translations, placeholders, lengths, HTML)."""

from __future__ import annotations

import dataclasses
import gettext
from collections.abc import Mapping

from flows.check import TEXT_LIMIT, Issue, check_flow
from flows.engine import Context
from flows.i18n import Catalogs


class FakeTranslations(gettext.NullTranslations):
    """A catalogue from a dict (msgid -> msgstr); `_catalog` as GNUTranslations keeps it."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        super().__init__()
        self._catalog = dict(mapping)

    def gettext(self, message: str) -> str:
        return self._catalog.get(message) or message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


def identity_catalogs(ctx: Context, **changed: Mapping[str, str]) -> Catalogs:
    """Every language "translated" as the English source, with `changed` entries on top."""
    sources = ctx.flow.source_strings()
    out = {}
    for code in ctx.deployment.languages:
        if code != "en":
            out[code] = FakeTranslations({**{m: m for m in sources}, **changed.get(code, {})})
    return Catalogs(translations=out)


def with_catalogs(ctx: Context, catalogs: Catalogs) -> Context:
    return dataclasses.replace(ctx, catalogs=catalogs)


def test_shipped_catalogues_have_no_issues(ctx: Context) -> None:
    """Fails until the pl and ar translators finish: every line names what is missing."""
    issues = check_flow(ctx)
    assert not issues, "\n".join(str(i) for i in issues[:40]) + f"\n({len(issues)} issues)"


def test_english_only_deployment_has_no_issues(ctx: Context) -> None:
    english = dataclasses.replace(ctx.deployment, languages=("en",))
    assert check_flow(dataclasses.replace(ctx, deployment=english)) == []


def test_complete_catalogues_have_no_issues(ctx: Context) -> None:
    assert check_flow(with_catalogs(ctx, identity_catalogs(ctx))) == []


def test_missing_language_catalogue_lists_every_string(ctx: Context) -> None:
    catalogs = identity_catalogs(ctx)
    without_ar = Catalogs({k: v for k, v in catalogs.translations.items() if k != "ar"})
    issues = check_flow(with_catalogs(ctx, without_ar))
    missing = [i for i in issues if i.where == "catalogue" and "no translation" in i.problem]
    assert {i.language for i in missing} == {"ar"}
    assert len(missing) == len(ctx.flow.source_strings())


def test_untranslated_string_is_reported(ctx: Context) -> None:
    msgid = ctx.flow.string("stale_button")
    catalogs = identity_catalogs(ctx, pl={msgid: ""})
    issues = check_flow(with_catalogs(ctx, catalogs))
    assert issues == [Issue("pl", "catalogue", f"no translation for {msgid[:60]!r}")]


def test_changed_placeholder_is_reported(ctx: Context) -> None:
    msgid = ctx.flow.string("too_long")
    assert "{limit}" in msgid
    catalogs = identity_catalogs(ctx, pl={msgid: "Za długie. Najwyżej {nome} znaków."})
    issues = check_flow(with_catalogs(ctx, catalogs))
    assert Issue("pl", "catalogue", f"placeholders differ in {msgid[:60]!r}") in issues
    assert {i.language for i in issues} == {"pl"}


def test_dropped_placeholder_is_reported(ctx: Context) -> None:
    msgid = ctx.flow.string("submit_failed")
    catalogs = identity_catalogs(ctx, ar={msgid: "لم يتم الإرسال."})
    issues = check_flow(with_catalogs(ctx, catalogs))
    assert Issue("ar", "catalogue", f"placeholders differ in {msgid[:60]!r}") in issues


def test_over_long_translation_is_reported(ctx: Context) -> None:
    msgid = "Hello. Here you can find information and support, in your language."
    assert msgid in ctx.flow.step("welcome").text
    catalogs = identity_catalogs(ctx, pl={msgid: "x" * 5000})
    issues = check_flow(with_catalogs(ctx, catalogs))
    too_long = [i for i in issues if f"over {TEXT_LIMIT}" in i.problem]
    assert too_long and all(i.language == "pl" for i in too_long)
    assert any(i.where == "welcome" for i in too_long)


def test_markup_in_a_translation_is_escaped_not_reported(ctx: Context) -> None:
    msgid = ctx.flow.step("welcome").title
    catalogs = identity_catalogs(ctx, pl={msgid: "<script>Witamy</b>"})
    assert check_flow(with_catalogs(ctx, catalogs)) == []


def test_issue_prints_language_and_place() -> None:
    assert str(Issue("pl", "welcome", "renders empty")) == "[pl] welcome: renders empty"
