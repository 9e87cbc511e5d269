"""Words in one person's language, as Telegram HTML: translated, escaped, placeholders filled,
and numbers isolated inside right-to-left text so that they read the right way round."""

from __future__ import annotations

import html
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from babel import UnknownLocaleError
from babel.lists import format_list

from flows.context import Context
from flows.definition import Flow
from flows.deployment import Deployment
from flows.i18n import Translator, is_rtl
from flows.state import ConversationState

FSI, PDI = "\u2068", "\u2069"  # first-strong isolate ... pop directional isolate
_WELSH_AND = re.compile(r"a\(c\) (\w)(\w?)")
_WELSH_VOWELS = frozenset("aeiouwyâêîôûŵŷáéíóúàèìòùäëïöü")


def _welsh_and(m: re.Match[str]) -> str:
    """CLDR writes Welsh "and" as "a(c)": "ac" before a vowel; "a" before a consonant, which
    takes the aspirate mutation (p, t, c become ph, th, ch: "a Phenwythnos")."""
    first, second = m.group(1), m.group(2)
    if first.lower() in _WELSH_VOWELS:
        return f"ac {first}{second}"
    if first.lower() in "ptc" and second.lower() != "h":
        return f"a {first}h{second}"
    return f"a {first}{second}"


class _SafeFormat(dict[str, str]):
    """A translation that names an unknown placeholder shows nothing there, never fails."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Text:
    flow: Flow
    deployment: Deployment
    translator: Translator
    language: str
    draft_minutes: int = 60
    state_hours: int = 6

    @classmethod
    def of(cls, ctx: Context, state: ConversationState) -> Text:
        language = state.language or ctx.deployment.default_language
        return cls(
            ctx.flow,
            ctx.deployment,
            ctx.catalogs.get(language),
            language,
            ctx.draft_minutes,
            ctx.state_hours,
        )

    @property
    def rtl(self) -> bool:
        return is_rtl(self.language)

    def t(self, source: str, /, **values: str) -> str:
        """Translate, escape for HTML, then fill placeholders with escaped values."""
        text = html.escape(self.translator.gettext(source), quote=False)
        if self.rtl:
            text = isolate_ltr_runs(text)
        if values:
            text = text.format_map(
                _SafeFormat({k: html.escape(v, quote=False) for k, v in values.items()})
            )
        return text

    def s(self, key: str, **values: str) -> str:
        """The flow's interface string `key`, with the deployment's placeholders filled."""
        return self.t(self.flow.string(key), **{**self.placeholders(), **values})

    def plural(self, key: str, n: int, **values: str) -> str:
        """The flow's plural string `key` for `n`, with `{n}` and the placeholders filled."""
        singular, plural = self.flow.plurals[key]
        text = html.escape(self.translator.ngettext(singular, plural, n), quote=False)
        filled = {**self.placeholders(), **values}
        return text.format_map(
            _SafeFormat(
                {k: html.escape(v, quote=False) for k, v in filled.items()}, n=self.ltr(str(n))
            )
        )

    def list(self, items: Sequence[str]) -> str:
        """Items joined as this language joins a list ("a, b and c"), by CLDR."""
        if not items:
            return ""
        try:
            joined = format_list(
                list(items), style="standard", locale=self.language.replace("-", "_")
            )
        except (ValueError, UnknownLocaleError):
            return ", ".join(items)
        if self.language.startswith("cy"):
            joined = _WELSH_AND.sub(_welsh_and, joined)
        return joined

    def ltr(self, value: str) -> str:
        """A number, code or address kept left-to-right inside right-to-left text."""
        return f"{FSI}{value}{PDI}" if self.rtl else value

    def placeholders(self) -> dict[str, str]:
        dep = self.deployment
        urgent = [h for h in dep.helplines if h.urgent] or list(dep.helplines)
        return {
            "force": dep.policy.force,
            "area": dep.area,
            "reviewed": self.ltr(dep.policy.reviewed),
            "checked": self.ltr(dep.policy.checked),
            "draft_minutes": self.ltr(str(self.draft_minutes)),
            "state_hours": self.ltr(str(self.state_hours)),
            "helpline": self.ltr(urgent[0].number) if urgent else "999",
        }


# What a translator writes left-to-right inside right-to-left text: a /command, a number or
# a phone number (digits with spaces, a leading +). Not inside a word, a path or a
# {placeholder} (placeholder values are isolated when filled).
_LTR_RUN = re.compile(r"(?<![\w/{+\u2068])(/[a-z][a-z_]*|\+?\d(?:[\d ]*\d)?)(?![\w}\u2069])")


# A Latin word that ends in a neutral sign ("LGBT+"): in right-to-left text the sign would
# move to the other side ("+LGBT") unless the word is isolated.
_LATIN_SIGNED = re.compile(r"(?<![\w\u2068])([A-Za-z][A-Za-z0-9]*[+#*]+)(?![\w\u2069])")


def isolate_signed_words(text: str) -> str:
    return _LATIN_SIGNED.sub(lambda m: f"{FSI}{m.group(1)}{PDI}", text)


def isolate_ltr_runs(text: str) -> str:
    """Commands and numbers in a right-to-left sentence, each in a first-strong isolate, so
    that `/status` does not show as `status/` and "999 then 55" keeps its order."""
    return _LTR_RUN.sub(lambda m: f"{FSI}{m.group(1)}{PDI}", text)


def plain(rendered: str) -> str:
    """Button labels are plain text, not HTML."""
    return html.unescape(rendered)


_GROUP = re.compile(r"(\d{4})(?=\d)")


def format_reference(code: str) -> str:
    """`1234567890123456` -> `1234 5678 9012 3456`: easy to read aloud and copy."""
    return _GROUP.sub(r"\1 ", code)


def placeholders_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
