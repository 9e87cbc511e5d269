"""`safebot translations check` and `safebot translations report`: whether each catalogue is fit
to put in front of a victim, and a table of where each language stands.

For every catalogue in the locales directory (`locales/<code>/LC_MESSAGES/messages.po`; the
portal's own domain, `locales/portal`, is not this one), against the flow's English source
strings and the deployment, the check finds:

- a source string (or plural pair) the catalogue lacks or leaves empty (any plural form), and
  a fuzzy entry (Babel's `message.fuzzy`: the engine leaves it out, English shows instead).
  Obsolete entries and msgids the flow no longer has are not problems: the report notes them;
- `{placeholder}` names that differ from the msgid's (each plural form against the singular or
  the plural), or a `{` or `}` that is no placeholder (it would fail where it is filled);
- broken HTML: the msgstr's tags (`</?([a-z]+)[^>]*>`) not the same multiset as the msgid's,
  unbalanced tags, or a raw `<` that is not one of the source's tags (`&` is fine: the engine
  escapes it);
- a button label over BUTTON_LABEL_MAX characters, counted with `len()` of the label as the
  button shows it, stripped: code points, so an emoji with its variation selector counts 2,
  and a `choices` option counts with its ▫️ mark. The labels are the steps' buttons, the
  questions' options, the summary labels (the change list's buttons), the emergency screen's
  title (the "I need help now" button after unexpected input) and the interface strings
  `flows.render` puts on buttons (LABEL_STRINGS). Also a command description over Telegram's
  256 characters, a profile text over its limit (`flows.definition.PROFILE_LIMITS`) and an
  outreach poster's word over its limit (`flows.definition.POSTER_LIMITS`: every size of
  poster, the card included, has room for it);
- a screen over the screen-length rule (`flows.replies.READABLE_CHARS`, 600 visible
  characters) or over Telegram's 4096 (UTF-16 units of the visible text), rendered with
  `flows.render` in each enabled language (and in each language asked for with `--lang`);
- a catalogue whose header has no `X-Review-Status`, or one that is not in a REVIEW_FORMATS
  form, and an enabled language whose status says `back-translation pending`. Babel drops
  header fields it does not know, so the header is read from the file's own text;
- what the deployment lacks for an enabled language (the schema's problems: its policy
  translation, organisation texts, helpline hours), and an enabled language without a catalogue.

How screens are rendered. Information screens, the status, forget, language and exit steps are
rendered from a state with no draft, as a person first sees them. The form's screens need a
draft to show their longest: each question while an answer is being changed (so the current
answer shows too), the summary, its change list and its cancel confirmation with a whole draft,
and the done screen with a reference and the organisation with the longest name. The draft is
REALISTIC_PLAN, the whole draft the content tests hold every screen to 600 with
(tests/unit/content/test_screen_length.py: `form_plan("call", times=...)`), so that this check
and those tests apply one rule: three safe times, a code word, a one-line message, no
preferred organisation. Where she types, that is a realistic answer, not the field's maximum
(500 characters of message would take any summary over 600). A question the plan does not
answer (a flow changed since) gets its longest realistic answer in that language: the option
whose words are longest, REALISTIC_PICKS options of a `choices` question, the longest language
or organisation name, a UK mobile number, an email address. Each value of a field that a `when`
condition reads is tried, and the longest summary kept. No step needs to be skipped: every
step renders without a draft, and those that show one get this one.
A notice joins the screen after it only while the two stay within the rule
(`flows.replies.coalesce`), so notices are rendered on their own only (for Telegram's limit).

Each problem is one line, `<language>: <what>: <which>` (the msgid shortened to 60
characters, the step, the header field); a deployment problem that names no language starts
`all:`. Pure functions where possible; the files are read by `read_catalogue` and
`check_translations`, and the picture written by `write_png`.
"""

from __future__ import annotations

import datetime as dt
import gettext
import html
import itertools
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, unescape

from bot.config import ConfigError, Settings, read_deployment_file
from flows import form, render
from flows.context import Context
from flows.definition import POSTER_LIMITS, PROFILE_LIMITS, Flow, Step, load_flow
from flows.deployment import Deployment, parse_deployment
from flows.errors import FlowError
from flows.i18n import Catalogs, bundled_locales_dir, compile_catalog, native_name
from flows.kinds import InputKind, StepKind
from flows.replies import READABLE_CHARS, Reply, visible_length
from flows.state import ConversationState
from flows.text import Text, plain

SOURCE_LANGUAGE = "en"
PORTAL_DOMAIN = "portal"  # locales/portal: the advocates' portal's own catalogues
BUTTON_LABEL_MAX = 40  # what a phone shows on one button without cutting it
COMMAND_DESCRIPTION_MAX = 256  # Telegram's BotCommand.description
TEXT_LIMIT = 4096  # Telegram's limit for one message, in UTF-16 units of the visible text
SCREEN_LIMIT = READABLE_CHARS
MSGID_SHOWN = 60
PLURAL_NUMBER = "n"  # the placeholder a plural string's number fills
PLURAL_NUMBERS = 200  # plural forms are told apart on 0..200 (every CLDR integer category)

# [strings] that `flows.render` puts on buttons (`text.s(...)` as a Button's label).
LABEL_STRINGS = (
    "quick_exit",
    "language",
    "menu",
    "resume",
    "skip",
    "done",
    "confirm",
    "change",
    "cancel",
    "yes",
    "no",
    "delete_yes",
    "delete_no",
    "no_preference",
)

# The realistic whole draft (see the module docstring): field -> answer, as the content tests'
# `form_plan` writes it (several `choices` values joined with "+").
REALISTIC_PLAN: Mapping[str, str] = {
    "consent": "yes",
    "method": "call",
    "phone": "+447911123456",
    "email": "safe.person@example.org",
    "times": "mornings+evenings+weekends",
    "leave_message": "no",
    "someone_else": "wrong_number",
    "codeword": "bluebird",
    "language": "pl",
    "interpreter": "yes",
    "urgent": "yes",
    "threats": "yes",
    "documents": "no",
    "children": "yes",
    "organisation": form.NO_PREFERENCE,
    "message": "Please call after 6pm.",
}
# For a question the plan does not answer:
REALISTIC_PICKS = 3
REALISTIC_PHONE = "+447911123456"
REALISTIC_EMAIL = "safe.person@example.org"
REALISTIC_CODE_WORD = "bluebird"  # a typed answer of at most SHORT_TEXT characters
REALISTIC_LINE = "Please call after 6pm."  # a longer typed answer
SHORT_TEXT = 40
REALISTIC_REFERENCE = "1234567890123456"
# More combinations of the fields `when` conditions read are not tried.
MAX_DRAFTS = 64

_DATE = r"(\d{4}-\d{2}-\d{2})"
REVIEW_FORMATS = (
    "machine-written YYYY-MM-DD, back-translation checked YYYY-MM-DD, pending native review",
    "machine-written YYYY-MM-DD, back-translation pending, pending native review",
    "reviewed by <who> on YYYY-MM-DD...",
)
_CHECKED = re.compile(
    rf"machine-written {_DATE}, back-translation checked {_DATE}, pending native review"
)
_PENDING = re.compile(rf"machine-written {_DATE}, back-translation pending, pending native review")
_REVIEWED = re.compile(rf"reviewed by (\S.*?) on {_DATE}(?!\d).*")

_HTML_TAG = re.compile(r"</?([a-z]+)[^>]*>")
_ANY_TAG = re.compile(r"<[^>]*>")
_QUOTED_CODE = re.compile(r"'([A-Za-z]{2,3}(?:_[A-Za-z0-9]{2,8})*)'")


@dataclass(frozen=True)
class Problem:
    language: str
    what: str
    which: str

    def __str__(self) -> str:
        return f"{self.language}: {self.what}: {self.which}"


@dataclass(frozen=True)
class Screen:
    name: str  # a step id, "<summary>:change" / ":cancel", or "notice <key>"
    visible: int  # what the person reads (`flows.replies.visible_length`)
    telegram: int  # what Telegram counts: UTF-16 units of the visible text


@dataclass(frozen=True)
class Review:
    """A catalogue's `X-Review-Status`, as its header says it."""

    status: str | None  # the header's words; None: the header has none
    machine_written: str | None = None
    back_translation_checked: str | None = None
    reviewer: str | None = None
    reviewed: str | None = None
    problem: str | None = None  # why it is not an honest status (None: it is one)

    @property
    def back_translation_pending(self) -> bool:
        return (
            self.problem is None
            and self.machine_written is not None
            and self.back_translation_checked is None
        )

    @property
    def short(self) -> str:
        if self.status is None:
            return "none"
        if self.problem is not None:
            return "not understood"
        if self.reviewer is not None:
            return f"reviewed by {self.reviewer} on {self.reviewed}"
        if self.back_translation_checked is not None:
            return f"back-translation checked {self.back_translation_checked}"
        return "machine-written"


@dataclass(frozen=True)
class CatalogueFile:
    language: str
    path: Path
    raw: str
    catalog: Catalog | None  # None: Babel could not read it (`error` says why)
    error: str | None = None


@dataclass(frozen=True)
class LanguageRow:
    """One language of the report."""

    code: str
    name: str  # in English (CLDR)
    enabled: bool
    source: bool  # the flow's own language: no catalogue
    translated: int
    total: int
    review: Review | None  # None: the source language, or no catalogue
    longest: Screen | None  # None: the screens could not be rendered (a broken deployment)
    # Obsolete entries, and msgids the flow no longer has: not problems, noted in the report.
    unused: tuple[str, ...] = ()
    has_catalogue: bool = True


@dataclass(frozen=True)
class Findings:
    problems: tuple[Problem, ...]
    languages: tuple[LanguageRow, ...]
    screens: Mapping[str, tuple[Screen, ...]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


# ---- pure parts ----------------------------------------------------------------------------


def shorten(text: str, limit: int = MSGID_SHOWN) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis where it is cut)."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def header_fields(raw: str) -> dict[str, str]:
    """The header entry's fields (lower-case names), read from the .po file's own text: the
    first entry, if its msgid is empty; its msgstr lines unquoted, joined, split at newlines."""
    lines = raw.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("msgid")), None)
    if start is None or lines[start].strip() != 'msgid ""':
        return {}
    if start + 1 >= len(lines) or not lines[start + 1].strip().startswith('msgstr "'):
        return {}
    parts = [lines[start + 1].strip()[len("msgstr ") :]]
    for line in lines[start + 2 :]:
        if not line.strip().startswith('"'):
            break
        parts.append(line.strip())
    text = "".join(unescape(part) for part in parts)
    fields: dict[str, str] = {}
    for entry in text.split("\n"):
        name, colon, value = entry.partition(":")
        if colon and name.strip():
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _date_problem(*dates: str) -> str | None:
    for date in dates:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            return f"{date} is not a date"
    return None


def parse_review(status: str | None) -> Review:
    """An `X-Review-Status` value (None: there is none) against REVIEW_FORMATS."""
    if status is None:
        return Review(None, problem="no X-Review-Status")
    words = " ".join(status.split())
    if m := _CHECKED.fullmatch(words):
        written, checked = m.groups()
        bad = _date_problem(written, checked)
        if bad is None and checked < written:
            bad = "back-translation checked before it was machine-written"
        return Review(words, written, checked, problem=bad)
    if m := _PENDING.fullmatch(words):
        return Review(words, m.group(1), problem=_date_problem(m.group(1)))
    if m := _REVIEWED.fullmatch(words):
        who, on = m.groups()
        return Review(words, reviewer=who, reviewed=on, problem=_date_problem(on))
    return Review(words, problem="not one of: " + " | ".join(REVIEW_FORMATS))


def review_problems(language: str, review: Review, *, enabled: bool) -> list[Problem]:
    if review.status is None:
        return [Problem(language, "no review status", "X-Review-Status is missing from the header")]
    if review.problem is not None:
        return [Problem(language, "review status not understood", review.status)]
    if enabled and review.back_translation_pending:
        return [Problem(language, "enabled before its back-translation check", review.status)]
    return []


def placeholder_names(text: str) -> frozenset[str] | None:
    """The `{placeholder}` names in `text`; None for a `{` or `}` that is none."""
    try:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)
    except ValueError:
        return None


def _shown_names(names: Iterable[str]) -> str:
    return " ".join(f"{{{n}}}" for n in sorted(names)) or "none"


def placeholder_problem(
    sources: Sequence[str], translated: str, *, one_number: bool = False
) -> str | None:
    """Whether `translated` names the placeholders of one of `sources` (a msgid, or a plural
    pair: a form may follow the singular or the plural). `one_number`: a plural form used for
    one number only, which may say it in words ("one day", Arabic's "two days") without `{n}`."""
    found = placeholder_names(translated)
    if found is None:
        return "a { or } that is not a placeholder"
    expected = [placeholder_names(s) or frozenset() for s in sources]
    if one_number and len(sources) > 1:
        found = found | {PLURAL_NUMBER}
    if found in expected or found == frozenset().union(*expected):
        return None
    return (
        f"placeholders differ (expected {_shown_names(expected[-1])}, found {_shown_names(found)})"
    )


def _tag(m: re.Match[str]) -> str:
    return f"</{m.group(1)}>" if m.group(0).startswith("</") else f"<{m.group(1)}>"


def _tags_in_order(tags: Iterable[str]) -> str:
    return " ".join(sorted(tags, key=lambda t: (t.strip("</>"), t.startswith("</"))))


def html_problem(source: str, translated: str) -> str | None:
    """Broken HTML in `translated` against its `source`, or None."""
    want = Counter(_tag(m) for m in _HTML_TAG.finditer(source))
    got = Counter(_tag(m) for m in _HTML_TAG.finditer(translated))
    if want != got:
        changes = []
        if got - want:
            changes.append("added " + _tags_in_order((got - want).elements()))
        if want - got:
            changes.append("removed " + _tags_in_order((want - got).elements()))
        return f"HTML tags differ from the source ({'; '.join(changes)})"
    stack: list[str] = []
    for m in _HTML_TAG.finditer(translated):
        if not m.group(0).startswith("</"):
            stack.append(m.group(1))
        elif not stack or stack.pop() != m.group(1):
            return "unbalanced HTML tags"
    if stack:
        return "unbalanced HTML tags"
    names = set(m.group(1) for m in _HTML_TAG.finditer(source))
    rest = _HTML_TAG.sub(lambda m: "" if m.group(1) in names else m.group(0), translated)
    if "<" in rest and "<" not in _HTML_TAG.sub("", source):
        return "broken HTML (a < that is not a tag of the source)"
    return None


def _forms(message: Message) -> tuple[str, ...]:
    translated = message.string
    if translated is None:
        return ("",)
    if isinstance(translated, str):
        return (translated,)
    return tuple(str(s or "") for s in translated)


def source_entries(flow: Flow) -> dict[str, tuple[str, ...]]:
    """Every entry a catalogue must have: msgid (the singular, for a plural pair) -> the
    English source (one string, or singular and plural)."""
    entries: dict[str, tuple[str, ...]] = {m: (m,) for m in flow.source_strings()}
    for singular, plural in flow.plurals.values():
        entries[singular] = (singular, plural)
    return entries


def shown_translations(catalog: Catalog, flow: Flow) -> dict[str, str]:
    """msgid -> what the engine shows for it: only translated entries that are not fuzzy."""
    out = {}
    for msgid, sources in source_entries(flow).items():
        message = catalog.get(msgid)
        if message is None or message.fuzzy or len(sources) != 1:
            continue
        if isinstance(message.string, str) and message.string:
            out[msgid] = message.string
    return out


def is_translated(message: Message | None, sources: tuple[str, ...], num_plurals: int) -> bool:
    """Whether `message` has a translation for each form (fuzzy or not)."""
    if message is None:
        return False
    if len(sources) == 1:
        return isinstance(message.string, str) and bool(message.string)
    forms = _forms(message)
    return not isinstance(message.string, str) and len(forms) >= num_plurals and all(forms)


def translated_count(catalog: Catalog, flow: Flow) -> int:
    """Source entries the engine shows translated: every form there, not fuzzy."""
    count = 0
    for msgid, sources in source_entries(flow).items():
        message = catalog.get(msgid)
        if message is not None and not message.fuzzy:
            count += is_translated(message, sources, catalog.num_plurals)
    return count


def one_number_forms(catalog: Catalog) -> frozenset[int]:
    """The plural forms that the catalogue's Plural-Forms picks for one whole number only
    (of 0..PLURAL_NUMBERS), as the content tests allow (tests/unit/content/test_plurals.py)."""
    try:
        rule = gettext.c2py(catalog.plural_expr)
    except (ValueError, SyntaxError):
        return frozenset()
    used = Counter(rule(n) for n in range(PLURAL_NUMBERS + 1))
    return frozenset(form for form, count in used.items() if count == 1)


def catalogue_problems(language: str, catalog: Catalog, flow: Flow) -> list[Problem]:
    """Missing and fuzzy entries, changed placeholders and broken HTML."""
    problems: list[Problem] = []
    one_number = one_number_forms(catalog)
    for msgid, sources in source_entries(flow).items():
        message = catalog.get(msgid)
        which = shorten(msgid)
        if message is None or not is_translated(message, sources, catalog.num_plurals):
            problems.append(Problem(language, "missing translation", which))
            continue
        if message.fuzzy:
            problems.append(Problem(language, "fuzzy translation", which))
        found: list[str] = []
        for index, translated in enumerate(_forms(message)):
            for problem in (
                placeholder_problem(sources, translated, one_number=index in one_number),
                html_problem(sources[-1], translated),
            ):
                if problem is not None and problem not in found:
                    found.append(problem)
        problems += [Problem(language, what, which) for what in found]
    return problems


def unused_entries(catalog: Catalog, flow: Flow) -> tuple[str, ...]:
    """Obsolete entries (`#~`) and msgids the flow does not have: not problems."""
    known = source_entries(flow)
    ids = [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]
    unknown = [msgid for msgid in ids if msgid not in known]
    obsolete = [m.id if isinstance(m.id, str) else m.id[0] for m in catalog.obsolete.values()]
    return tuple([*unknown, *obsolete])


def button_labels(flow: Flow) -> dict[str, int]:
    """Every source string shown on a button -> the characters its button adds (a mark)."""
    mark = max(len(render.PICKED), len(render.NOT_PICKED))
    labels: dict[str, int] = {}
    for key in LABEL_STRINGS:
        if key in flow.strings:
            labels.setdefault(flow.strings[key], 0)
    labels.setdefault(flow.step(flow.help_step).title, 0)
    for step in flow.steps.values():
        for button in step.buttons:
            labels.setdefault(button.label, 0)
        for option in step.options:
            extra = mark if step.input == InputKind.CHOICES else 0
            labels[option.label] = max(labels.get(option.label, 0), extra)
        if step.kind == StepKind.QUESTION and step.summary_label:
            labels.setdefault(step.summary_label, 0)  # the change list's buttons
    return labels


def length_problems(language: str, flow: Flow, shown: Mapping[str, str]) -> list[Problem]:
    """Button labels, command descriptions, profile texts and poster words over their limits,
    as `shown` (msgid -> what the engine shows; a msgid not in it shows in English)."""
    problems = []
    for msgid, extra in button_labels(flow).items():
        if msgid not in shown:
            continue
        n = len(shown[msgid].strip()) + extra
        if n > BUTTON_LABEL_MAX:
            note = " with its mark" if extra else ""
            what = f"button label over {BUTTON_LABEL_MAX} characters ({n}{note})"
            problems.append(Problem(language, what, shorten(msgid)))
    for msgid in flow.commands.values():
        if msgid in shown and (n := len(shown[msgid])) > COMMAND_DESCRIPTION_MAX:
            what = f"command description over {COMMAND_DESCRIPTION_MAX} characters ({n})"
            problems.append(Problem(language, what, shorten(msgid)))
    for name, msgid in flow.profile.items():
        limit = PROFILE_LIMITS.get(name, 0)
        if msgid in shown and (n := len(shown[msgid])) > limit:
            what = f"profile {name} over {limit} characters ({n})"
            problems.append(Problem(language, what, shorten(msgid)))
    for name, msgid in flow.poster.items():
        limit = POSTER_LIMITS.get(name, 0)
        if msgid in shown and (n := len(shown[msgid])) > limit:
            what = f"poster {name} over {limit} characters ({n})"
            problems.append(Problem(language, what, shorten(msgid)))
    return problems


# ---- screens -------------------------------------------------------------------------------


def telegram_length(reply_html: str) -> int:
    """What Telegram counts against 4096: UTF-16 units of the text once its HTML is parsed."""
    text = html.unescape(_ANY_TAG.sub("", reply_html))
    return len(text.encode("utf-16-le")) // 2


def _measure(name: str, reply: Reply) -> Screen:
    return Screen(name, visible_length(reply.html), telegram_length(reply.html))


def _longest(values: Iterable[str], shown: Callable[[str], str]) -> str | None:
    return max(values, key=lambda v: len(shown(v)), default=None)


def realistic_answers(ctx: Context, language: str) -> dict[str, str]:
    """An answer to every question of the form, as the engine stores it: REALISTIC_PLAN's
    where it answers the question, else the longest realistic one in `language`."""
    text = Text.of(ctx, ConversationState(step=ctx.flow.menu, language=language))
    dep = ctx.deployment
    answers: dict[str, str] = {}
    for sid in ctx.flow.form:
        q = ctx.flow.step(sid)
        value = _planned(q, dep) or _realistic(q, text, dep)
        if q.field and value is not None:
            answers[q.field] = value
    return answers


def _planned(q: Step, dep: Deployment) -> str | None:
    """REALISTIC_PLAN's answer to `q`, if it has one that `q` accepts."""
    planned = REALISTIC_PLAN.get(q.field or "")
    if planned is None:
        return None
    if q.input == InputKind.CHOICES:
        values = planned.split("+")
        accepted = set(form.option_values(q, dep))
        return form.choices_answer(values, "") if set(values) <= accepted else None
    if q.input == InputKind.CHOICE:
        return planned if planned in form.option_values(q, dep) else None
    return planned[: q.max_length]


def _realistic(q: Step, text: Text, dep: Deployment) -> str | None:
    def said(o_value: str) -> str:
        option = next((o for o in q.options if o.value == o_value), None)
        return plain(text.t(option.summary or option.label)) if option else ""

    if q.input == InputKind.PHONE:
        return REALISTIC_PHONE
    if q.input == InputKind.EMAIL:
        return REALISTIC_EMAIL
    if q.input == InputKind.TEXT:
        typed = REALISTIC_CODE_WORD if q.max_length <= SHORT_TEXT else REALISTIC_LINE
        return typed[: q.max_length]
    if q.options_from == "languages":
        return _longest(dep.languages, native_name)
    if q.options_from == "organisations":
        names = {o.id: o.name for o in dep.receiving_organisations}
        names[form.NO_PREFERENCE] = plain(text.s("no_preference"))
        return _longest(names, lambda v: names[v])
    values = [o.value for o in q.options]
    if q.input == InputKind.CHOICES:
        longest = sorted(values, key=lambda v: -len(said(v)))[:REALISTIC_PICKS]
        return form.choices_answer([v for v in values if v in longest], "")
    return _longest(values, said)


def realistic_drafts(ctx: Context, language: str) -> list[dict[str, str]]:
    """The realistic answers with each value of the fields that `when` conditions read (which
    questions the summary lists depends on them)."""
    base = realistic_answers(ctx, language)
    steps = [ctx.flow.step(sid) for sid in ctx.flow.form]
    read = list(dict.fromkeys(q.when.field for q in steps if q.when and q.when.field))
    choices = []
    for name in read:
        asker = next((q for q in steps if q.field == name), None)
        values = form.option_values(asker, ctx.deployment) if asker is not None else []
        choices.append([(name, v) for v in values] or [(name, base.get(name, ""))])
    combos = itertools.islice(itertools.product(*choices), MAX_DRAFTS)
    return [{**base, **dict(combo)} for combo in combos]


def render_screens(ctx: Context, language: str) -> tuple[Screen, ...]:
    """Every step of the flow in `language` as `flows.render` shows it (see the module
    docstring for the states), then each interface string that is not a label, alone."""
    flow = ctx.flow
    plain_state = ConversationState(step=flow.menu, language=language, flow_version=flow.version)
    answers = realistic_answers(ctx, language)
    drafts = realistic_drafts(ctx, language)
    out: list[Screen] = []
    for sid, step in flow.steps.items():
        state = plain_state.with_(step=sid)
        if step.kind == StepKind.QUESTION:
            out.append(
                _measure(sid, render.screen(ctx, state.with_(answers=answers, editing=True)))
            )
        elif step.kind == StepKind.SUMMARY:
            states = [state.with_(answers=d) for d in drafts]
            whole = max(states, key=lambda s: visible_length(render.screen(ctx, s).html))
            out.append(_measure(sid, render.screen(ctx, whole)))
            out.append(_measure(f"{sid}:change", render.change_list(ctx, whole)))
            out.append(_measure(f"{sid}:cancel", render.cancel_confirm(ctx, whole)))
        elif step.kind == StepKind.DONE:
            orgs = ctx.deployment.receiving_organisations
            routed = max(orgs, key=lambda o: len(o.name), default=None)
            done = {**answers, form.REFERENCE: REALISTIC_REFERENCE}
            if routed is not None:
                done[form.ROUTED] = routed.id
            out.append(_measure(sid, render.screen(ctx, state.with_(answers=done))))
        else:
            out.append(_measure(sid, render.screen(ctx, state)))
    labels = set(LABEL_STRINGS)
    limit = str(max((s.max_length for s in flow.steps.values()), default=0))
    for key in flow.strings:
        if key not in labels:
            notice = render.notice(ctx, plain_state, key, limit=limit, answer=REALISTIC_LINE)
            out.append(_measure(f"notice {key}", notice))
    return tuple(out)


def screen_problems(language: str, screens: Iterable[Screen]) -> list[Problem]:
    problems = []
    for s in screens:
        if s.visible > SCREEN_LIMIT and not s.name.startswith("notice "):
            what = f"screen over {SCREEN_LIMIT} visible characters ({s.visible})"
            problems.append(Problem(language, what, s.name))
        if s.telegram > TEXT_LIMIT:
            what = f"message over Telegram's {TEXT_LIMIT} characters ({s.telegram})"
            problems.append(Problem(language, what, s.name))
    return problems


def longest_screen(screens: Iterable[Screen]) -> Screen | None:
    steps = [s for s in screens if not s.name.startswith("notice ")]
    return max(steps, key=lambda s: s.visible, default=None)


# ---- the deployment ------------------------------------------------------------------------


def enabled_languages(deployment_data: Mapping[str, Any]) -> list[str]:
    """The languages the deployment file enables, read before (and whether or not) it parses."""
    table = deployment_data.get("deployment")
    langs = table.get("languages") if isinstance(table, Mapping) else None
    if not isinstance(langs, list):
        return []
    return list(dict.fromkeys(str(lang) for lang in langs))


def deployment_problems(
    deployment_data: Mapping[str, Any], catalogues: Collection[str], known: Collection[str]
) -> tuple[Deployment | None, list[Problem]]:
    """The deployment checked against its schema (`parse_deployment`, what `load_deployment`
    does): each problem line under the language it names (`all` where it names none).
    `catalogues`: the languages it may enable (a missing catalogue is reported apart)."""
    try:
        return parse_deployment(deployment_data, catalogues), []
    except FlowError as exc:
        problems = []
        for line in exc.problems:
            named = [c for c in _QUOTED_CODE.findall(line) if c in known]
            problems.append(Problem(named[0] if named else "all", "deployment", line))
        return None, problems


# ---- the edges: files ------------------------------------------------------------------------


def find_catalogues(locales_dir: Path) -> dict[str, Path]:
    """language -> its messages.po, in the order of the codes (never the portal's domain)."""
    found = {
        po.parent.parent.name: po
        for po in locales_dir.glob("*/LC_MESSAGES/messages.po")
        if po.parent.parent.name != PORTAL_DOMAIN
    }
    return dict(sorted(found.items()))


def read_catalogue(language: str, path: Path) -> CatalogueFile:
    """The .po file's text and its catalogue. A line Babel cannot parse makes it unreadable
    here (`abort_invalid`), where the engine would skip it with a warning."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language, abort_invalid=True)
    except Exception as exc:  # a damaged .po: Babel's own errors, whatever their class
        return CatalogueFile(language, path, raw, None, f"{type(exc).__name__}: {exc}")
    return CatalogueFile(language, path, raw, catalog)


# Where CLDR's English name is not the one a reader of the report would look for.
ENGLISH_NAMES = {
    "fa_AF": "Dari",
    "kmr": "Kurdish (Kurmanji)",
    "ckb": "Kurdish (Sorani)",
    "bn": "Bengali",
}


def english_name(code: str) -> str:
    if code in ENGLISH_NAMES:
        return ENGLISH_NAMES[code]
    try:
        return Locale.parse(code).get_display_name("en") or code
    except (UnknownLocaleError, ValueError):
        return code


def check_translations(
    flow: Flow,
    deployment_data: Mapping[str, Any],
    locales_dir: Path | None = None,
    languages: Sequence[str] | None = None,
    *,
    draft_minutes: int = 60,
    state_hours: int = 6,
) -> Findings:
    """Every problem of the catalogues in `locales_dir` (default: the bundled ones), and a row
    of the report for each. `languages`: only these (their screens are checked whether or not
    they are enabled); default: every catalogue, the enabled languages and the source."""
    locales_dir = locales_dir or bundled_locales_dir()
    paths = find_catalogues(locales_dir)
    enabled = enabled_languages(deployment_data)
    everything = [SOURCE_LANGUAGE, *sorted(({*paths, *enabled}) - {SOURCE_LANGUAGE})]
    if languages is None:
        selected = everything
    else:
        unknown = [code for code in languages if code not in everything]
        if unknown:
            raise ConfigError(
                f"no catalogue for {', '.join(map(repr, unknown))} (--lang); there are: "
                + ", ".join(everything)
            )
        selected = list(dict.fromkeys(languages))
    files = {code: read_catalogue(code, paths[code]) for code in selected if code in paths}

    deployment, dep_problems = deployment_problems(
        deployment_data, {SOURCE_LANGUAGE, *paths, *enabled}, {*everything}
    )
    problems = [p for p in dep_problems if p.language in {"all", *selected}]
    if deployment is None:  # then no screen can be rendered: say so, whatever --lang hides
        hidden = len(dep_problems) - len(problems)
        more = f" ({hidden} of them in languages not checked here)" if hidden else ""
        why = f"the deployment has {len(dep_problems)} problem(s){more}"
        problems.append(Problem("all", "screens not checked", why))
    catalogs = Catalogs(
        {code: compile_catalog(f.catalog) for code, f in files.items() if f.catalog is not None},
        source_language=SOURCE_LANGUAGE,
    )
    ctx = None
    if deployment is not None:
        ctx = Context(flow, deployment, catalogs, draft_minutes, state_hours)

    total = len(source_entries(flow))
    rows, screens = [], {}
    for code in selected:
        is_enabled = code in enabled
        rendered = render_screens(ctx, code) if ctx is not None else ()
        screens[code] = rendered
        file = files.get(code)
        shown: Mapping[str, str] = {}
        review: Review | None = None
        translated, unused = total, tuple[str, ...]()
        if code == SOURCE_LANGUAGE:
            shown = {m: m for m in source_entries(flow)}
        elif file is None:
            problems.append(
                Problem(code, "no catalogue", str(paths.get(code) or _po(locales_dir, code)))
            )
            translated = 0
        elif file.catalog is None:
            problems.append(
                Problem(code, "catalogue cannot be read", shorten(file.error or "", 200))
            )
            translated = 0
        else:
            catalog = file.catalog
            problems += catalogue_problems(code, catalog, flow)
            review = parse_review(header_fields(file.raw).get("x-review-status"))
            problems += review_problems(code, review, enabled=is_enabled)
            shown = shown_translations(catalog, flow)
            translated = translated_count(catalog, flow)
            unused = unused_entries(catalog, flow)
        problems += length_problems(code, flow, shown)
        if is_enabled or languages is not None:
            problems += screen_problems(code, rendered)
        rows.append(
            LanguageRow(
                code=code,
                name=english_name(code),
                enabled=is_enabled,
                source=code == SOURCE_LANGUAGE,
                translated=translated,
                total=total,
                review=review,
                longest=longest_screen(rendered),
                unused=unused,
                has_catalogue=code == SOURCE_LANGUAGE or code in files,
            )
        )
    order = {code: n for n, code in enumerate(["all", *selected])}
    problems.sort(key=lambda p: order.get(p.language, len(order)))
    return Findings(tuple(problems), tuple(rows), screens)


def check_from_settings(settings: Settings, languages: Sequence[str] | None) -> Findings:
    """`check_translations` on the bundled flow and catalogues and the deployment that
    `settings` names (`SAFEBOT_CONFIG`): what the commands run."""
    return check_translations(
        load_flow(),
        read_deployment_file(settings.config_path),
        languages=languages,
        draft_minutes=max(1, int(settings.draft_ttl.total_seconds() // 60)),
        state_hours=max(1, int(settings.state_ttl.total_seconds() // 3600)),
    )


def _po(locales_dir: Path, code: str) -> Path:
    return locales_dir / code / "LC_MESSAGES" / "messages.po"


# ---- the report ----------------------------------------------------------------------------

HEADINGS = ("code", "language", "enabled", "coverage", "review status", "longest screen")


def coverage(row: LanguageRow) -> str:
    if row.source:
        return "source"
    percent = math.floor(100 * row.translated / row.total) if row.total else 0
    return f"{row.translated}/{row.total} {percent}%"


def table_rows(findings: Findings) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for row in findings.languages:
        if row.source:
            review = "source"
        elif row.review is None:
            review = "no catalogue" if not row.has_catalogue else "unreadable"
        else:
            review = row.review.short
        longest = f"{row.longest.visible} ({row.longest.name})" if row.longest else "-"
        enabled = "yes" if row.enabled else "no"
        out.append((row.code, row.name, enabled, coverage(row), review, longest))
    return out


def format_table(findings: Findings) -> str:
    rows = [HEADINGS, *table_rows(findings)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    for row in findings.languages:
        if row.unused:
            lines.append(
                f"note: {row.code}: {len(row.unused)} obsolete or unknown entr"
                f"{'y' if len(row.unused) == 1 else 'ies'} (not a problem), e.g. "
                f"{shorten(row.unused[0])!r}"
            )
    count = len(findings.problems)
    lines.append(
        f"{count} problem(s): `safebot translations check` lists them" if count else "no problems"
    )
    return "\n".join(lines) + "\n"


def _latin(cell: str) -> str:
    """A cell for the picture: the default font's Latin letters only; `$` kept literal."""
    return "".join(c if ord(c) < 0x250 else "?" for c in cell).replace("$", r"\$")


def check_png_path(path: Path) -> None:
    """ConfigError, in one line, unless a PNG can be written at `path` (`--png`)."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory (--png FILE)")
    if not path.parent.is_dir():
        raise ConfigError(f"directory {path.parent} does not exist (--png {path})")


def write_png(findings: Findings, path: Path, date: dt.date) -> None:
    """The report's table as a PNG (matplotlib's Agg backend; codes and English names only,
    so no font beyond the default one is needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [tuple(_latin(c) for c in r) for r in table_rows(findings)]
    figure = Figure(figsize=(12, 0.5 + 0.21 * (len(rows) + 1)), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axis("off")
    axes.set_title(f"safebot translations, {date.isoformat()}", fontsize=12, loc="left")
    table = axes.table(
        cellText=[list(r) for r in rows] or [["-"] * len(HEADINGS)],
        colLabels=list(HEADINGS),
        cellLoc="left",
        colLoc="left",
        loc="upper center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.auto_set_column_width(list(range(len(HEADINGS))))
    for (r, _c), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(fontweight="bold")
    figure.savefig(path, format="png", bbox_inches="tight")
