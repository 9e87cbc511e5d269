"""Turning a conversation's state into what the person sees: one `Reply` per screen or notice.

    screen(ctx, state, offer_help)  the current step as a message with its buttons
    change_list(ctx, state)         the summary's "which answer do you want to change?"
    cancel_confirm(ctx, state)      the summary's "delete your answers?"
    notice(ctx, state, key, ...)    one of the flow's interface strings, on its own

Every screen but the exit line ends with the global rows (menu, language, quick exit). An
information screen seen while a draft is kept starts with "Continue my request"; a screen shown
after unexpected input starts with "I need help now". Action buttons carry the state's sequence
number, so a press on an older screen is stale.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from flows import callbacks, form
from flows.blocks import render_block
from flows.callbacks import (
    Act,
    Action,
    GoTo,
    OpenLanguages,
    OpenMenu,
    QuickExit,
    Resume,
    SetLanguage,
)
from flows.context import Context
from flows.definition import Step
from flows.i18n import native_name
from flows.kinds import InputKind, StepKind
from flows.replies import Button, Reply
from flows.state import ConversationState
from flows.text import Text, format_reference, plain
from flows.validators import display_phone

Row = tuple[Button, ...]
# A `choices` question's buttons show whether each option is picked.
PICKED, NOT_PICKED = "✅ ", "▫️ "


def screen(
    ctx: Context, state: ConversationState, *, offer_help: bool = False, language_page: int = 0
) -> Reply:
    page = _Page(ctx, state, language_page)
    current = ctx.flow.step(state.step)
    parts, rows = page.common_parts(current), list[Row]()
    if offer_help and ctx.flow.help_step not in {current.id, *(b.goto for b in current.buttons)}:
        help_now = ctx.flow.step(ctx.flow.help_step)
        rows.append((page.button(plain(page.text.t(help_now.title)), GoTo(help_now.id)),))
    if current.kind == StepKind.SCREEN and state.answers and state.resume:
        rows.append((page.button(plain(page.text.s("resume")), Resume()),))
    extra = _KIND_EXTRAS.get(current.kind)
    if extra is not None:
        more_parts, more_rows = extra(page, current)
        parts += more_parts
        rows += more_rows
    rows += [
        (page.button(plain(page.text.t(b.label)), GoTo(b.goto)),)
        for b in current.buttons
        if page.shows_button(b.when)
    ]
    if current.kind != StepKind.EXIT:  # the line left after a quick exit has no buttons
        rows += page.global_rows(current)
    return Reply("\n\n".join(parts), tuple(rows), protect=current.protect, rtl=page.text.rtl)


def change_list(ctx: Context, state: ConversationState) -> Reply:
    page = _Page(ctx, state)
    rows: list[Row] = [
        (page.action(plain(page.text.t(q.summary_label)), callbacks.edit_value(index)),)
        for index, q in form.applicable(ctx.flow, state.answers, ctx.deployment)
        if q.in_summary  # what the summary shows, and nothing else (not consent)
    ]
    rows += page.global_rows(ctx.flow.step(state.step))
    return Reply(page.text.s("change_which"), tuple(rows), protect=True, rtl=page.text.rtl)


def cancel_confirm(ctx: Context, state: ConversationState) -> Reply:
    page = _Page(ctx, state)
    text = page.text
    rows: list[Row] = [
        (page.action(text.s("delete_yes"), Action.DELETE),),
        (page.action(text.s("delete_no"), Action.KEEP),),
    ]
    rows += page.global_rows(ctx.flow.step(state.step))
    return Reply(text.s("delete_confirm"), tuple(rows), protect=True, rtl=text.rtl)


def notice(ctx: Context, state: ConversationState, key: str, *more: str, **values: str) -> Reply:
    text = Text.of(ctx, state)
    html_text = "\n\n".join(text.s(k, **values) for k in (key, *more))
    return Reply(html_text, protect=True, rtl=text.rtl)


@dataclass(frozen=True)
class _Page:
    ctx: Context
    state: ConversationState
    language_page: int = 0

    @cached_property
    def text(self) -> Text:
        return Text.of(self.ctx, self.state)

    def button(
        self, label: str, press: QuickExit | OpenLanguages | OpenMenu | Resume | GoTo
    ) -> Button:
        return Button(label, callbacks.encode(press))

    def action(self, label: str, value: str) -> Button:
        """A button acting on this screen only (its data carries the sequence number)."""
        return Button(plain(label), callbacks.encode(Act(self.state.seq, value)))

    def common_parts(self, current: Step) -> list[str]:
        text = self.text
        values = {**text.placeholders(), "limit": str(current.max_length)}
        parts = [f"<b>{text.t(current.title, **values)}</b>"] if current.title else []
        parts.extend(text.t(p, **values) for p in current.text)
        blocks = (render_block(text, name) for name in current.blocks)
        parts.extend(b for b in blocks if b)
        return parts

    def shows_button(self, when: str | None) -> bool:
        """A navigation button's condition (`flows.definition.BUTTON_CONDITIONS`)."""
        if when == "policy_translated":
            return self.text.language != self.ctx.deployment.policy.language
        return True

    def global_rows(self, current: Step) -> list[Row]:
        text = self.text
        row = []
        if current.id != self.ctx.flow.menu:
            row.append(self.button(plain(text.s("menu")), OpenMenu()))
        if current.kind != StepKind.LANGUAGE:
            row.append(self.button(plain(text.s("language")), OpenLanguages()))
        exit_row = (self.button(plain(text.s("quick_exit")), QuickExit()),)
        return [tuple(row), exit_row] if row else [exit_row]

    # ---- answers -----------------------------------------------------------------------------

    def choices(self, q: Step) -> list[tuple[str, str]]:
        """(value, label) pairs, labels as HTML in the person's language; the values are
        `form.option_values`."""
        text = self.text
        dep = self.ctx.deployment
        if q.options_from == "languages":
            return [(code, html.escape(native_name(code))) for code in dep.languages]
        if q.options_from == "organisations":
            orgs = [(o.id, html.escape(o.name)) for o in dep.receiving_organisations]
            return [*orgs, (form.NO_PREFERENCE, text.s("no_preference"))]
        return [(o.value, text.t(o.label)) for o in q.options]

    def said(self, q: Step) -> dict[str, str]:
        """value -> how the summary says that answer, as HTML."""
        said = dict(self.choices(q))
        said.update({o.value: self.text.t(o.summary) for o in q.options if o.summary})
        return said

    def shown(self, q: Step, value: str) -> str:
        """An answer as the summary shows it: in words, never as a code."""
        text = self.text
        if q.input == InputKind.PHONE:
            return text.ltr(html.escape(display_phone(value)))
        if q.input == InputKind.CHOICE:
            return self.said(q).get(value, html.escape(value))
        if q.input == InputKind.CHOICES:
            values, own = form.picked(value)
            said = self.said(q)
            words = [said.get(v, html.escape(v)) for v in values]
            words += [f"“{html.escape(own, quote=False)}”"] if own else []
            return text.list(words)
        if q.input == InputKind.EMAIL:
            return text.ltr(html.escape(value))
        return html.escape(value, quote=False)


# ---- what each kind of step adds to the common parts ------------------------------------------

Extra = tuple[list[str], list[Row]]


def _question(page: _Page, q: Step) -> Extra:
    parts = []
    answers = page.state.answers
    if page.state.editing and q.field and q.field in answers:
        # While changing an answer from the summary, show what it is now.
        label = page.text.t(q.summary_label)
        parts.append(f"<i>{label}: {page.shown(q, answers[q.field])}</i>")
    rows: list[Row] = []
    if q.input == InputKind.CHOICE:
        rows += [(page.action(plain(label), value),) for value, label in page.choices(q)]
    if q.input == InputKind.CHOICES:
        picked, own = form.picked(answers.get(q.field or ""))
        for value, label in page.choices(q):
            mark = PICKED if value in picked else NOT_PICKED
            rows.append((page.action(mark + plain(label), value),))
        if own:
            parts.append(page.text.s("own_answer", answer=own))
        if picked or own:
            rows.append((page.action(page.text.s("done"), Action.DONE),))
    if q.optional:
        rows.append((page.action(page.text.s("skip"), Action.SKIP),))
    return parts, rows


def _summary(page: _Page, _: Step) -> Extra:
    text, answers = page.text, page.state.answers
    lines = []
    for _index, q in form.applicable(page.ctx.flow, answers, page.ctx.deployment):
        if not q.in_summary:
            continue
        value = answers.get(q.field or "")
        shown = page.shown(q, value) if value is not None else text.s("not_answered")
        lines.append(f"<b>{text.t(q.summary_label)}</b>: {shown}")
    rows = [
        (page.action(text.s("confirm"), Action.CONFIRM),),
        (
            page.action(text.s("change"), Action.CHANGE),
            page.action(text.s("cancel"), Action.CANCEL),
        ),
    ]
    return ["\n".join(lines)], rows


def _done(page: _Page, _: Step) -> Extra:
    text, answers, dep = page.text, page.state.answers, page.ctx.deployment
    code = format_reference(answers.get(form.REFERENCE, ""))
    parts = [text.s("reference_intro") + f"\n<code>{text.ltr(code)}</code>"]
    routed = answers.get(form.ROUTED)
    org = next((o for o in dep.receiving_organisations if o.id == routed), None)
    if org is not None and org.contact_within_days:
        parts.insert(0, text.plural("contact_within", org.contact_within_days, org=org.name))
    parts.append(text.s("after_send"))
    return parts, []


def _forget(page: _Page, _: Step) -> Extra:
    text = page.text
    return [], [(page.action(text.s("yes"), Action.YES), page.action(text.s("no"), Action.NO))]


# The language list: every language on one screen while they fit a phone without scrolling;
# beyond that, pages of LANGUAGES_PER_PAGE (two a row), with ◀ ▶ between them (symbols, so
# that someone who cannot read the current language can still page).
LANGUAGES_ON_ONE_SCREEN = 10
LANGUAGES_PER_PAGE = 8


def language_pages(languages: Sequence[str]) -> list[list[str]]:
    if len(languages) <= LANGUAGES_ON_ONE_SCREEN:
        return [list(languages)]
    step = LANGUAGES_PER_PAGE
    return [list(languages[i : i + step]) for i in range(0, len(languages), step)]


def _language(page: _Page, _: Step) -> Extra:
    pages = language_pages(page.ctx.deployment.languages)
    number = min(max(page.language_page, 0), len(pages) - 1)
    shown = pages[number]

    def button(code: str) -> Button:
        return Button(native_name(code), callbacks.encode(SetLanguage(code)))

    if len(pages) == 1:
        return [], [(button(code),) for code in shown]
    rows: list[Row] = [tuple(button(c) for c in shown[i : i + 2]) for i in range(0, len(shown), 2)]
    rows.append(
        (
            Button("◀", callbacks.encode(OpenLanguages((number - 1) % len(pages)))),
            Button("▶", callbacks.encode(OpenLanguages((number + 1) % len(pages)))),
        )
    )
    return [], rows


_KIND_EXTRAS: Mapping[StepKind, Callable[[_Page, Step], Extra]] = {
    StepKind.QUESTION: _question,
    StepKind.SUMMARY: _summary,
    StepKind.DONE: _done,
    StepKind.FORGET: _forget,
    StepKind.LANGUAGE: _language,
}
