"""Golden conversation transcripts: one scripted conversation per shipped language, driven
through the pure engine only and written down turn by turn (see README.md here).

The script is the same in every language: welcome, every menu screen, a language switch, the
contact form (walked by tests/walker.py) with a phone number, "in danger" and the emergency
screen, a changed multi-choice answer with words of her own, the menu and "Continue my
request", a cancel not confirmed, and Send, the
form again with an email address, typed text where buttons are expected, an invalid phone
number, a stale button, /status with a code, the status screen with a bad code and a good
one, /forget and quick exit. Effects are answered as the edges answer them (a stored request,
a status "new", forgotten). The transcript shows the event, the step reached, the effects'
type names and every reply's HTML and buttons.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from bot.config import bundled_deployment_path, load_deployment
from flows.definition import NavButton, load_flow
from flows.effects import CheckStatus, Effect, ForgetMe, SubmitRequest
from flows.engine import Context, Outcome, initial_state, step
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    Forgotten,
    QuickExitRequested,
    RequestStored,
    Started,
    StatusChecked,
    TextReceived,
)
from flows.i18n import load_catalogs, native_name
from flows.render import NOT_PICKED, PICKED
from flows.replies import Button, Reply
from tests.walker import Move, Press, option_label, walk

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
REFERENCE = "1234567812345678"
STATUS_CODE = "1234 5678 1234 5678"
PHONE = "07911 123456"
EMAIL = "safe.person@example.org"
# Typed answers with characters the engine must escape, and one outside the Latin script.
CODEWORD = "Kingfisher żółw"
MESSAGE = "Please call after 6pm & ask for <Ana>."
TIMES = "contact.times"  # the question changed from the summary


def golden_context() -> Context:
    """The Context as bot/app.py `build_context` builds it for the bundled deployment."""
    return Context(
        flow=load_flow(),
        deployment=load_deployment(bundled_deployment_path()),
        catalogs=load_catalogs(),
    )


def shipped_languages() -> tuple[str, ...]:
    return tuple(load_deployment(bundled_deployment_path()).languages)


def transcript_path(lang: str) -> Path:
    return TRANSCRIPTS / f"{lang}.txt"


def edge_answer(effect: Effect) -> Event | None:
    """What the edges feed back after performing `effect` (None: nothing to report)."""
    if isinstance(effect, SubmitRequest):
        return RequestStored(reference=REFERENCE)
    if isinstance(effect, CheckStatus):
        return StatusChecked(status="new")
    if isinstance(effect, ForgetMe):
        return Forgotten()
    return None  # DeleteConversation: the channel deletes the messages, the engine hears nothing


def visible(text: str) -> str:
    """Invisible characters (bidi isolates and marks, controls) as {U+XXXX}, newlines kept."""
    return "".join(
        f"{{U+{ord(ch):04X}}}" if ch != "\n" and unicodedata.category(ch) in {"Cc", "Cf"} else ch
        for ch in text
    )


class Conversation:
    """One person talking to the engine; every turn is written to `lines`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = initial_state(ctx.flow)
        self.screen: tuple[Reply, ...] = ()  # the replies of the latest turn that had any
        self.lines: list[str] = []
        self.turns = 0
        self.pressed: dict[str, Button] = {}  # step id -> the button last pressed on it

    # ---- what the person sees ---------------------------------------------------------------

    @property
    def language(self) -> str:
        return self.state.language or self.ctx.deployment.default_language

    def tr(self, english: str) -> str:
        return str(self.ctx.catalogs.get(self.language).gettext(english))

    def label(self, key: str) -> str:
        """A button label from the flow's [strings], in the conversation's language."""
        return self.tr(self.ctx.flow.string(key))

    def button(self, label: str) -> Button:
        for reply in reversed(self.screen):
            for row in reply.buttons:
                for button in row:
                    if button.label == label:
                        return button
        shown = [b.label for r in self.screen for row in r.buttons for b in row]
        raise AssertionError(f"turn {self.turns + 1}: no button {label!r} on screen: {shown}")

    # ---- what the person does ---------------------------------------------------------------

    def start(self, hint: str) -> None:
        self.send(
            f"start (the phone's language is {hint!r})", Started(payload="", language_hint=hint)
        )

    def press(self, label: str) -> Button:
        button = self.button(label)
        self.pressed[self.state.step] = button
        self.send(f"press {label!r}", ButtonPressed(button.data))
        return button

    def choose_language(self, code: str) -> None:
        """On the language list: page on with ▶ until the language shows, then press it."""
        name = native_name(code)
        for _page in self.ctx.deployment.languages:
            shown = {b.label for r in self.screen for row in r.buttons for b in row}
            if name in shown:
                break
            self.press("▶")
        self.press(name)

    def press_old(self, button: Button) -> None:
        self.send(f"press {button.label!r} on an earlier message", ButtonPressed(button.data))

    def type(self, text: str) -> None:
        self.send(f"type {text!r}", TextReceived(text))

    def command(self, name: str, argument: str = "") -> None:
        shown = f"/{name} {argument}".rstrip()
        self.send(f"send the command {shown!r}", CommandReceived(name, argument))

    def quick_exit(self) -> None:
        self.send("quick exit (the channel's own exit)", QuickExitRequested())

    def perform(self, move: Move) -> None:
        assert self.state.step == move.step, (move, self.state.step)
        if isinstance(move.action, Press):
            self.press(move.action.label)
        else:
            self.type(move.action.text)

    def fill_form(self, answers: Mapping[str, str | None], *, before: Mapping[str, str]) -> None:
        """Walk the form from the menu with the shared walker; `before` types a text on a
        question's screen before answering it (step id -> text)."""
        moves = walk(
            self.ctx.flow,
            self.ctx.deployment,
            answers,
            lang=self.language,
            catalogs=self.ctx.catalogs,
        )
        unused = dict(before)
        for move in moves:
            if move.step in unused:
                self.type(unused.pop(move.step))
            self.perform(move)
        assert self.ctx.flow.step(self.state.step).kind == "summary", self.state.step
        assert not unused, f"the form never asked {sorted(unused)}"

    # ---- the engine, and the edges answering its effects --------------------------------------

    def send(self, what: str, event: Event) -> None:
        self.turns += 1
        self.lines += ["", f"=== {what}"]
        todo: deque[Event] = deque([event])
        first = True
        while todo:
            current = todo.popleft()
            if not first:
                self.lines.append("--- the edges answer")
            first = False
            outcome = step(self.ctx, self.state, current)
            self.record(current, outcome)
            self.state = outcome.state
            if outcome.replies:
                self.screen = outcome.replies
            for effect in outcome.effects:
                answer = edge_answer(effect)
                if answer is not None:
                    todo.append(answer)

    def record(self, event: Event, outcome: Outcome) -> None:
        effects = ", ".join(type(e).__name__ for e in outcome.effects) or "none"
        self.lines += [
            f"event: {visible(repr(event))}",
            f"step: {outcome.state.step}",
            f"effects: {effects}",
        ]
        if not outcome.replies:
            self.lines.append("replies: none")
        for number, reply in enumerate(outcome.replies, 1):
            flags = [name for name, on in (("protect", reply.protect), ("rtl", reply.rtl)) if on]
            self.lines.append(f"reply {number}" + (f" ({', '.join(flags)})" if flags else "") + ":")
            self.lines += [f"  | {line}".rstrip() for line in visible(reply.html).split("\n")]
            if reply.buttons:
                self.lines.append("  buttons:")
            for row in reply.buttons:
                cells = "  ".join(f"[{visible(b.label)}]({visible(b.data)})" for b in row)
                self.lines.append(f"    {cells}")


def script(ctx: Context, lang: str) -> Conversation:
    """The scripted conversation in `lang` (see the module docstring)."""
    c = Conversation(ctx)
    flow, dep = ctx.flow, ctx.deployment
    others = [code for code in dep.languages if code != lang]
    receiving = [o.id for o in dep.receiving_organisations]

    c.start(lang)
    c.press(c.tr(next(b.label for b in flow.step(flow.entry).buttons if b.goto == flow.menu)))
    c.type("hello")  # typed text where buttons are expected

    # every information screen, each reached from the menu by its shortest path of buttons
    def is_screen(step_id: str) -> bool:
        return flow.step(step_id).kind == "screen"

    def shown_here(button: NavButton) -> bool:
        return button.when != "policy_translated" or lang != dep.policy.language

    paths: dict[str, list[NavButton]] = {flow.menu: []}
    todo = deque([flow.menu])
    while todo:
        at = todo.popleft()
        for b in flow.step(at).buttons:
            if is_screen(b.goto) and b.goto not in paths and shown_here(b):
                paths[b.goto] = [*paths[at], b]
                todo.append(b.goto)
    for target, path in paths.items():
        if target == flow.menu:
            continue
        for b in path:
            c.press(c.tr(b.label))
        c.press(c.label("menu"))

    # switch to another language and back
    if others:
        c.press(c.label("language"))
        c.choose_language(others[0])
        c.press(c.label("language"))
        c.choose_language(lang)

    # the contact form with a phone number; an invalid number and typed text on the way
    phone_form: dict[str, str | None] = {
        "consent": "yes",
        "method": "call",
        "phone": PHONE,
        "times": "evenings",
        "leave_message": "no",
        "someone_else": "wrong_number",
        "codeword": CODEWORD,
        "language": lang,
        "interpreter": "yes",
        "urgent": "yes",
        "threats": "no",
        "documents": None,
        "children": None,
        "organisation": "none",
        "message": MESSAGE,
    }
    c.fill_form(phone_form, before={"contact.method": "by phone please", "contact.phone": "12"})
    consent_yes = c.pressed["contact.consent"]

    # change one answer from the summary; a button of an earlier screen is stale
    c.press(c.label("change"))
    c.press(c.tr(flow.step(TIMES).summary_label))
    c.press(PICKED + option_label(flow, dep, ctx.catalogs, lang, TIMES, "evenings"))
    c.press(NOT_PICKED + option_label(flow, dep, ctx.catalogs, lang, TIMES, "weekends"))
    c.type("Tuesdays after 10")  # words of her own, as one more safe time
    c.press(c.label("done"))
    c.press_old(consent_yes)
    # leave the form and come back: every answer kept
    c.press(c.label("menu"))
    c.press(c.label("resume"))
    # "Cancel and delete" asks first; "No, keep them" keeps them
    c.press(c.label("cancel"))
    c.press(c.label("delete_no"))
    c.press(c.label("confirm"))

    # the form again, with an email address and every optional question skipped
    c.press(c.label("menu"))
    email_form: dict[str, str | None] = {
        "consent": "yes",
        "method": "email",
        "email": EMAIL,
        "times": "any",
        "language": lang,
        "organisation": receiving[-1] if receiving else None,
    }
    c.fill_form(email_form, before={})
    c.press(c.label("confirm"))

    c.command("status", STATUS_CODE)
    status = next(b for b in flow.step(flow.menu).buttons if flow.step(b.goto).kind == "status")
    c.press(c.tr(status.label))
    c.type("1234")  # too short for a reference code
    c.type(STATUS_CODE)
    c.command("forget")
    c.press(c.label("yes"))
    c.quick_exit()
    c.type("hello")
    return c


def render(ctx: Context, lang: str) -> str:
    conversation = script(ctx, lang)
    header = [
        f"# Golden transcript, language {lang!r}: the pure engine driven by",
        "# tests/golden/transcript.py. Do not edit by hand; regenerate with",
        "#   .venv/bin/python -m pytest tests/golden --update-golden",
        "# and review the diff. Invisible characters are written as {U+XXXX}",
        "# (U+2068 and U+2069 isolate numbers and codes inside right-to-left text).",
    ]
    return "\n".join(header + conversation.lines) + "\n"
