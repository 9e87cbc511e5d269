"""The conversation engine: the only code that moves a conversation's state.

    step(ctx, state, event) -> Outcome(state, replies, effects)

Rules:
1. Pure. No clock, randomness, logging or I/O; the edges pass everything in and perform the
   effects. Any person's input, however odd, yields a defined reply, never an exception.
2. Acknowledge after the effect. Confirming a request moves to the `submitting` step and emits
   `SubmitRequest`; only `RequestStored` leads to the screen that says it was received, and
   `RequestFailed` (or any event met in `submitting`, which means the process died mid-way)
   says it was not.
3. Buttons are untrusted. Question buttons carry the screen's sequence number; a press from
   an older screen is answered as stale and the current screen is shown again.
4. Quick exit, language and menu work from every screen, including stale messages.

Callback data (at most 64 bytes, checked when the flow loads):
    x            quick exit            l        language list        m       menu
    L:<code>     set language          g:<id>   go to a screen that some button leads to
    a:<seq>:<v>  answer/act on the current screen (question option, skip, confirm, ...)
"""

from __future__ import annotations

import html
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from flows.definition import Flow, Step
from flows.deployment import Deployment, Helpline
from flows.effects import CheckStatus, DeleteConversation, Effect, ForgetMe, SubmitRequest
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    Forgotten,
    NonTextReceived,
    QuickExitRequested,
    RequestFailed,
    RequestStored,
    Started,
    StatusChecked,
    TextReceived,
)
from flows.i18n import Catalogs, Translator, is_rtl, native_name, negotiate
from flows.replies import Button, Reply
from flows.state import ConversationState
from flows.validators import Invalid, display_phone, validate

MAX_SKIPPED_STEPS = 50  # a `when` chain longer than the form means a broken flow: stop loudly
FSI, PDI = "\u2068", "\u2069"  # isolate numbers and codes inside right-to-left text
FIELD_URGENT = "urgent"
FIELD_ORGANISATION = "organisation"
# A request's stored status -> what the victim is told (nothing more than this).
_STATUS_STRINGS = {
    "new": "status_waiting",
    "picked_up": "status_picked_up",
    "closed": "status_closed",
    "withdrawn": "status_withdrawn",
}


@dataclass(frozen=True)
class Context:
    flow: Flow
    deployment: Deployment
    catalogs: Catalogs


@dataclass(frozen=True)
class Outcome:
    state: ConversationState
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()


def initial_state(flow: Flow) -> ConversationState:
    return ConversationState(step=flow.entry, flow_version=flow.version)


def step(ctx: Context, state: ConversationState, event: Event) -> Outcome:
    turn = _Turn(ctx, _sane(ctx, state))
    turn.handle(event)
    return Outcome(turn.state, tuple(turn.replies), tuple(turn.effects))


def render_screen(ctx: Context, state: ConversationState) -> Reply:
    """The screen for `state` as the engine would show it (for checks and previews)."""
    turn = _Turn(ctx, state)
    turn.render()
    return turn.replies[-1]


def _sane(ctx: Context, state: ConversationState) -> ConversationState:
    """A stored state from an older flow, or whose step is gone, restarts at the menu."""
    if state.step not in ctx.flow.steps or state.flow_version != ctx.flow.version:
        return ConversationState(
            step=ctx.flow.menu,
            language=state.language if state.language in ctx.deployment.languages else None,
            seq=state.seq,
            flow_version=ctx.flow.version,
        )
    return state


class _SafeFormat(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass
class _Turn:
    ctx: Context
    state: ConversationState
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    # ---- plumbing ---------------------------------------------------------------------

    @property
    def flow(self) -> Flow:
        return self.ctx.flow

    @property
    def dep(self) -> Deployment:
        return self.ctx.deployment

    @property
    def lang(self) -> str:
        return self.state.language or self.dep.default_language

    @property
    def tr(self) -> Translator:
        return self.ctx.catalogs.get(self.lang)

    @property
    def rtl(self) -> bool:
        return is_rtl(self.lang)

    def t(self, source: str, **values: str) -> str:
        """Translate, escape for HTML, then fill placeholders with escaped values."""
        text = html.escape(self.tr.gettext(source), quote=False)
        if values:
            text = text.format_map(
                _SafeFormat({k: html.escape(v, quote=False) for k, v in values.items()})
            )
        return text

    def s(self, key: str, **values: str) -> str:
        return self.t(self.flow.string(key), **{**self._placeholders(), **values})

    def ltr(self, value: str) -> str:
        return f"{FSI}{value}{PDI}" if self.rtl else value

    def say(self, key: str, **values: str) -> None:
        self.replies.append(Reply(self.s(key, **values), protect=True, rtl=self.rtl))

    def go(self, step_id: str, **changes: object) -> None:
        if self.flow.step(self.state.step).kind == "done" and step_id != self.state.step:
            # The reference code is kept (encrypted) only until the person leaves that screen.
            changes.setdefault("answers", {})
        self.state = self.state.with_(step=step_id, seq=self.state.seq + 1, **changes)
        self.render()

    # ---- events -----------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        current = self.flow.step(self.state.step)
        wants_exit = event in (QuickExitRequested(), ButtonPressed("x"), CommandReceived("exit"))
        if current.kind == "submitting" and wants_exit:
            self.quick_exit()
            return
        if current.kind == "submitting" and not isinstance(event, RequestStored | RequestFailed):
            # Only a crash leaves a conversation here: the request was not acknowledged.
            self.say("submit_interrupted")
            self.go(self._summary_id())
            return
        if self._draft_lost(current) and _answers_the_form(event):
            # The draft expired (or its key was lost) while the person was in the form: never
            # carry on, and never submit, with answers that are no longer there.
            self.say("draft_expired")
            self.state = self.state.with_(answers={}, editing=False)
            self.go(self.flow.menu)
            return
        match event:
            case Started():
                self.started(event)
            case CommandReceived():
                self.command(event)
            case ButtonPressed():
                self.button(event.data)
            case TextReceived():
                self.text(event.text)
            case NonTextReceived():
                self.say("edited" if event.kind == "edited" else "not_text")
                self.render()
            case QuickExitRequested():
                self.quick_exit()
            case RequestStored():
                self.go(self._kind("done"), answers={"reference": event.reference}, editing=False)
            case RequestFailed():
                self.say("submit_failed")
                self.go(self._summary_id())
            case StatusChecked():
                self.say(_STATUS_STRINGS.get(event.status or "", "status_unknown"))
                self.go(self.flow.menu)
            case Forgotten():
                self.say("forgotten_withdrawn" if event.withdrawn else "forgotten")
                self.state = self.state.with_(answers={}, editing=False)
                self.go(self.flow.menu)
            case _:
                self.render()

    def started(self, event: Started) -> None:
        langs = self.dep.languages
        chosen = event.payload if event.payload in langs else None
        if chosen:
            self.state = self.state.with_(language=chosen)
        elif self.state.language is None:
            guess = negotiate(event.language_hint, langs, self.dep.default_language)
            self.state = self.state.with_(language=guess)
            hint = (event.language_hint or "").split("-")[0].split("_")[0].lower()
            if guess == self.dep.default_language and hint != guess.split("_")[0]:
                # No match for the phone's language: let the person choose first.
                self.go(self._kind("language"))
                return
        self.go(self.flow.entry)

    def command(self, event: CommandReceived) -> None:
        name = event.name
        if name in {"menu", "help"}:
            self.go(self.flow.menu)
        elif name == "language":
            self.go(self._kind("language"))
        elif name == "exit":
            self.quick_exit()
        elif name == "forget":
            self.go(self._kind("forget"))
        elif name == "status":
            if event.argument.strip():
                self.check_status(event.argument)
            else:
                self.go(self._kind("status"))
        else:
            self.say("buttons_only")
            self.render()

    def quick_exit(self) -> None:
        self.effects.append(DeleteConversation())
        self.state = ConversationState(
            step=self._kind("exit"),
            language=self.state.language,
            seq=self.state.seq + 1,
            flow_version=self.flow.version,
        )
        self.render()

    def check_status(self, raw: str) -> None:
        code = ascii_digits(raw)
        if not 8 <= len(code) <= 32:
            self.say("status_bad_code")
            self.go(self._kind("status"))
            return
        self.effects.append(CheckStatus(code))

    def button(self, data: str) -> None:
        if data == "x":
            self.quick_exit()
        elif data == "l":
            self.go(self._kind("language"))
        elif data == "m":
            self.go(self.flow.menu)
        elif data.startswith("L:") and data[2:] in self.dep.languages:
            self.state = self.state.with_(language=data[2:])
            self.say("language_changed")
            self.go(self.flow.menu)
        elif data.startswith("g:") and data[2:] in self.flow.nav_targets:
            target = self.flow.step(data[2:])
            if target.kind == "question":
                self.state = self.state.with_(answers={}, editing=False)
                self.advance_to(target.id)
            else:
                self.go(target.id)
        elif data.startswith("a:"):
            _, _, rest = data.partition(":")
            seq, _, value = rest.partition(":")
            if seq != _b36(self.state.seq) or not value:
                self.stale()
            else:
                self.act(self.flow.step(self.state.step), value)
        else:
            self.stale()

    def stale(self) -> None:
        if self.flow.step(self.state.step).kind == "exit":
            self.go(self.flow.entry)
            return
        self.say("stale_button")
        self.render()

    def act(self, current: Step, value: str) -> None:
        if current.kind == "question":
            if value == "skip" and current.optional:
                self.answered(current, None, None)
            elif current.input == "choice" and value in self._option_values(current):
                self.answered(current, value, self._option_next(current, value))
            else:
                self.stale()
        elif current.kind == "summary":
            self.summary_action(value)
        elif current.kind == "forget":
            if value == "yes":
                # What is on the screen was told too: clear it, as quick exit does.
                self.effects += [DeleteConversation(), ForgetMe()]
            else:
                self.go(self.flow.menu)
        else:
            self.stale()

    def text(self, text: str) -> None:
        current = self.flow.step(self.state.step)
        if current.kind == "status":
            self.check_status(text)
        elif current.kind == "question" and current.input in {"text", "phone", "email"}:
            result = validate(current.input or "text", text, max_length=current.max_length)
            if isinstance(result, Invalid):
                self.say(result.reason, limit=str(current.max_length))
                self.render()
            else:
                self.answered(current, result.value, None)
        elif current.kind == "exit":
            self.go(self.flow.entry)
        else:
            self.say("buttons_only")
            self.render()

    # ---- the contact form -------------------------------------------------------------

    def answered(self, current: Step, value: str | None, next_hint: str | None) -> None:
        answers = dict(self.state.answers)
        assert current.field is not None  # a loaded flow's questions all have one
        if value is None:
            answers.pop(current.field, None)
        else:
            answers[current.field] = value
        self.state = self.state.with_(answers=answers)
        target = next_hint or current.next or self._summary_id()
        if self.flow.step(target).kind != "question" and target != self._summary_id():
            # The answer leaves the form (e.g. consent withdrawn): nothing may be sent.
            self.state = self.state.with_(answers={}, editing=False)
            self.go(target)
            return
        self._drop_inapplicable()
        if self.state.editing:
            # Back to the summary, but first ask what the change made necessary (a new method
            # needs its phone number or email); answers that still stand are not asked again.
            missing = self._next_missing()
            if missing is not None:
                self.go(missing)
            else:
                self.state = self.state.with_(editing=False)
                self.go(self._summary_id())
            return
        self.advance_to(target)

    def _draft_lost(self, current: Step) -> bool:
        if current.kind not in {"question", "summary"} or current.id == self.flow.form[0]:
            return False
        first = self.flow.step(self.flow.form[0]).field or ""
        return first not in self.state.answers

    def _complete(self) -> bool:
        return all(
            q.optional or q.field in self.state.answers
            for q in (self.flow.step(sid) for sid in self.flow.form)
            if self._applies(q)
        )

    def _next_missing(self) -> str | None:
        for sid in self.flow.form:
            q = self.flow.step(sid)
            if self._applies(q) and not q.optional and q.field not in self.state.answers:
                return sid
        return None

    def _drop_inapplicable(self) -> None:
        """Forget answers to questions that no longer apply, so they are never sent."""
        answers = dict(self.state.answers)
        for sid in self.flow.form:
            q = self.flow.step(sid)
            if q.field in answers and not self._applies(q):
                del answers[q.field]
        self.state = self.state.with_(answers=answers)

    def advance_to(self, step_id: str) -> None:
        """Go to `step_id`, or past it while its `when` condition does not hold."""
        for _ in range(MAX_SKIPPED_STEPS):
            target = self.flow.step(step_id)
            if target.kind != "question" or self._applies(target):
                self.go(step_id)
                return
            step_id = target.next or self._option_next(target, "") or self._summary_id()
        raise RuntimeError("flow skips more steps than it has: check its 'when' conditions")

    def summary_action(self, value: str) -> None:
        if value == "confirm" and not self._complete():
            self.say("draft_expired")
            self.state = self.state.with_(answers={}, editing=False)
            self.go(self.flow.menu)
        elif value == "confirm":
            answers = {k: v for k, v in self.state.answers.items() if k != "reference"}
            org = self.dep.route(self.lang, answers.get(FIELD_ORGANISATION))
            self.effects.append(
                SubmitRequest(
                    answers=answers,
                    language=self.lang,
                    urgent=answers.get(FIELD_URGENT) == "yes",
                    organisation=org,
                )
            )
            self.state = self.state.with_(step=self._kind("submitting"))
        elif value == "change":
            self.state = self.state.with_(seq=self.state.seq + 1)
            self.render_change_list()
        elif value == "cancel":
            self.state = self.state.with_(answers={}, editing=False)
            self.go(self.flow.menu)
        elif (
            value.startswith("e.")
            and value[2:].isascii()
            and value[2:].isdigit()
            and int(value[2:]) < len(self.flow.form)
        ):
            target = self.flow.step(self.flow.form[int(value[2:])])
            if self._applies(target):
                self.state = self.state.with_(editing=True)
                self.go(target.id)
            else:
                self.stale()
        else:
            self.stale()

    def _applies(self, step: Step) -> bool:
        cond = step.when
        if cond is None:
            return True
        if cond.deployment == "org_choice" and not (
            self.dep.allow_org_choice and len(self.dep.receiving_organisations) > 1
        ):
            return False
        if cond.field is not None:
            return self.state.answers.get(cond.field) in cond.values
        return True

    def _options(self, step: Step) -> list[tuple[str, str]]:
        """(value, label) pairs, labels rendered in the person's language."""
        if step.options_from == "languages":
            return [(code, html.escape(native_name(code))) for code in self.dep.languages]
        if step.options_from == "organisations":
            orgs = [(o.id, html.escape(o.name)) for o in self.dep.receiving_organisations]
            return [*orgs, ("none", self.s("no_preference"))]
        return [(o.value, self.t(o.label)) for o in step.options]

    def _option_values(self, step: Step) -> set[str]:
        return {v for v, _ in self._options(step)}

    def _option_next(self, step: Step, value: str) -> str | None:
        for o in step.options:
            if o.value == value and o.next:
                return o.next
        return step.next

    def _kind(self, kind: str) -> str:
        return self.flow.by_kind[kind]

    def _summary_id(self) -> str:
        return self._kind("summary")

    # ---- rendering ----------------------------------------------------------------------

    def render(self) -> None:
        current = self.flow.step(self.state.step)
        parts: list[str] = []
        if current.title:
            parts.append(f"<b>{self.t(current.title)}</b>")
        values = {**self._placeholders(), "limit": str(current.max_length)}
        parts.extend(self.t(p, **values) for p in current.text)
        for block in current.blocks:
            rendered = self.block(block)
            if rendered:
                parts.append(rendered)
        rows: list[tuple[Button, ...]] = []
        if current.kind == "question":
            parts.extend(self._current_answer(current))
            rows += self.question_rows(current)
        elif current.kind == "summary":
            parts.append(self.summary_lines())
            rows += [
                (self._a(self.s("confirm"), "confirm"),),
                (self._a(self.s("change"), "change"), self._a(self.s("cancel"), "cancel")),
            ]
        elif current.kind == "done":
            ref = self.state.answers.get("reference", "")
            parts.append(
                self.s("reference_intro") + f"\n<code>{self.ltr(format_reference(ref))}</code>"
            )
        elif current.kind == "forget":
            rows.append((self._a(self.s("yes"), "yes"), self._a(self.s("no"), "no")))
        elif current.kind == "language":
            rows += [(Button(native_name(code), f"L:{code}"),) for code in self.dep.languages]
        rows += [(Button(self._plain(self.t(b.label)), f"g:{b.goto}"),) for b in current.buttons]
        if current.kind != "exit":
            rows += self.global_rows(current)
        self.replies.append(
            Reply("\n\n".join(parts), tuple(rows), protect=current.protect, rtl=self.rtl)
        )

    def render_change_list(self) -> None:
        rows: list[tuple[Button, ...]] = []
        for index, sid in enumerate(self.flow.form):
            question = self.flow.step(sid)
            if self._applies(question):
                rows.append((self._a(self._plain(self.t(question.summary_label)), f"e.{index}"),))
        rows += self.global_rows(self.flow.step(self.state.step))
        self.replies.append(Reply(self.s("change_which"), tuple(rows), protect=True, rtl=self.rtl))

    def question_rows(self, q: Step) -> list[tuple[Button, ...]]:
        rows: list[tuple[Button, ...]] = (
            [(self._a(self._plain(label), value),) for value, label in self._options(q)]
            if q.input == "choice"
            else []
        )
        if q.optional:
            rows.append((self._a(self.s("skip"), "skip"),))
        return rows

    def global_rows(self, current: Step) -> list[tuple[Button, ...]]:
        row = []
        if current.id != self.flow.menu:
            row.append(Button(self._plain(self.s("menu")), "m"))
        if current.kind != "language":
            row.append(Button(self._plain(self.s("language")), "l"))
        return (
            [tuple(row), (Button(self._plain(self.s("quick_exit")), "x"),)]
            if row
            else [(Button(self._plain(self.s("quick_exit")), "x"),)]
        )

    def _a(self, label: str, value: str) -> Button:
        return Button(self._plain(label), f"a:{_b36(self.state.seq)}:{value}")

    @staticmethod
    def _plain(rendered: str) -> str:
        """Button labels are plain text, not HTML."""
        return html.unescape(rendered)

    def _current_answer(self, q: Step) -> list[str]:
        if not self.state.editing or not q.field or q.field not in self.state.answers:
            return []
        return [
            f"<i>{self.t(q.summary_label)}: {self._display(q, self.state.answers[q.field])}</i>"
        ]

    def _display(self, q: Step, value: str) -> str:
        if q.input == "phone":
            return self.ltr(html.escape(display_phone(value)))
        if q.input == "choice":
            return dict(self._options(q)).get(value, html.escape(value))
        if q.input == "email":
            return self.ltr(html.escape(value))
        return html.escape(value, quote=False)

    def summary_lines(self) -> str:
        lines = []
        for sid in self.flow.form:
            q = self.flow.step(sid)
            if not self._applies(q):
                continue
            value = self.state.answers.get(q.field or "")
            shown = self._display(q, value) if value is not None else self.s("not_answered")
            lines.append(f"<b>{self.t(q.summary_label)}</b>: {shown}")
        return "\n".join(lines)

    def _placeholders(self) -> dict[str, str]:
        p = self.dep.policy
        urgent = [h for h in self.dep.helplines if h.urgent] or list(self.dep.helplines)
        return {
            "force": p.force,
            "area": self.dep.area,
            "reviewed": p.reviewed,
            "helpline": self.ltr(urgent[0].number) if urgent else "999",
        }

    def block(self, name: str) -> str:
        if name == "helplines_now":
            return self.helplines(h for h in self.dep.helplines if h.urgent)
        if name == "helplines_all":
            return self.helplines(self.dep.helplines)
        if name == "organisations":
            return self.organisations()
        if name == "policy":
            return self.policy()
        if name == "retention":
            return self.retention()
        return ""

    def helplines(self, helplines: Iterable[Helpline]) -> str:
        out = []
        for h in helplines:
            line = f"<b>{html.escape(h.name)}</b>\n{self.ltr(html.escape(h.number))}"
            notes = []
            if h.always_open and h.free:
                notes.append(self.s("free_24h"))
            elif h.hours:
                notes.append(self.s("hours", hours=h.hours))
            if notes:
                line += "\n" + " ".join(notes)
            out.append(line)
        return "\n\n".join(out)

    def organisations(self) -> str:
        out = []
        for o in self.dep.organisations:
            lines = [f"<b>{html.escape(o.name)}</b>"]
            if o.description:
                lines.append(html.escape(o.description))
            if o.phone:
                lines.append(self.s("phone_label", phone=self.ltr(o.phone)))
            if o.website:
                lines.append(self.s("website_label", website=o.website))
            if o.languages:
                names = ", ".join(native_name(c) for c in o.languages)
                lines.append(self.s("languages_label", languages=names))
            out.append("\n".join(lines))
        return "\n\n".join(out)

    def policy(self) -> str:
        p = self.dep.policy
        local = p.translations.get(self.lang, {})
        commitment = local.get("commitment", p.commitment)
        exception = local.get("exception", p.exception)
        parts = [
            self.s("policy_quote_intro", force=p.force),
            f"<blockquote>{html.escape(commitment)}</blockquote>",
            self.s("policy_exception_intro"),
            f"<blockquote>{html.escape(exception)}</blockquote>",
        ]
        if local:
            parts.append(f"<i>{self.s('unofficial_translation')}</i>")
        parts.append(
            f"<i>{self.s('policy_reviewed', force=p.force, reviewed=self.ltr(p.reviewed))}</i>"
        )
        return "\n".join(parts)

    def retention(self) -> str:
        singular, plural = self.flow.plurals["retention_days"]
        days = self.dep.retention_days
        text = html.escape(self.tr.ngettext(singular, plural, days), quote=False)
        return text.format_map(_SafeFormat(n=self.ltr(str(days))))


def _answers_the_form(event: Event) -> bool:
    """Events that act on the current question or summary (not navigation or commands)."""
    if isinstance(event, TextReceived):
        return True
    return isinstance(event, ButtonPressed) and event.data.startswith("a:")


def _b36(n: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    n = n % 36**6
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


_GROUP = re.compile(r"(\d{4})(?=\d)")


def format_reference(code: str) -> str:
    """`1234567890123456` -> `1234 5678 9012 3456`: easy to read aloud and copy."""
    return _GROUP.sub(r"\1 ", code)


def ascii_digits(text: str) -> str:
    """Digits in any script ("١٢٣", "۱۲۳") as ASCII; everything else dropped."""
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


def placeholders_of(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
