"""Shared fixtures for the conversation engine's tests: the bundled context and a `Driver`.

The `Driver` holds a conversation's state, sends events through `flows.engine.step`, checks
the invariants every outcome must keep (valid HTML, callback data within 64 bytes, a known
step) and can press a button of the latest replies by its label, its data or a data prefix.
"""

from __future__ import annotations

import copy
import html
import tomllib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from bot.config import bundled_deployment_path
from flows.callbacks import encode_seq
from flows.check import TEXT_LIMIT, _TagChecker
from flows.definition import CALLBACK_DATA_MAX_BYTES, Flow, Step, bundled_flow_path, load_flow
from flows.deployment import parse_deployment
from flows.effects import Effect
from flows.engine import Context, Outcome, initial_state, step
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    NonTextReceived,
    QuickExitRequested,
    RequestStored,
    Started,
    TextReceived,
)
from flows.form import choices_answer
from flows.i18n import is_rtl, load_catalogs, native_name
from flows.replies import Button, Reply
from flows.state import ConversationState
from flows.text import FSI, PDI, isolate_ltr_runs
from tests.walker import OWN, Move, Type, walk

# Every shipped language: the rules hold in each (the catalogues are checked by their own
# tests; these drive the engine through every screen in every one).
LANGUAGES = tuple(load_catalogs().languages)
METHODS = ("call", "sms", "whatsapp", "email")
# A valid UK mobile number (phonenumbers refuses Ofcom's 07700 900xxx drama range).
PHONE_TYPED = "07911 123456"
PHONE_E164 = "+447911123456"
PHONE_SHOWN = "07911 123456"
EMAIL = "safe.person@example.org"
REFERENCE = "1234567890123456"
REFERENCE_SHOWN = "1234 5678 9012 3456"


def make_context() -> Context:
    return Context(
        load_flow(),
        parse_deployment(tomllib.loads(bundled_deployment_path().read_text())),
        load_catalogs(),
    )


def check_reply(reply: Reply) -> list[str]:
    """Problems with one reply as Telegram would see it (empty when it is fine)."""
    problems = []
    checker = _TagChecker()
    checker.feed(reply.html)
    checker.close()
    problems += checker.errors
    if checker.stack:
        problems.append(f"unclosed tags {checker.stack}")
    if checker.text_len > TEXT_LIMIT:
        problems.append(f"{checker.text_len} characters, over {TEXT_LIMIT}")
    for row in reply.buttons:
        for button in row:
            if len(button.data.encode()) > CALLBACK_DATA_MAX_BYTES:
                problems.append(f"callback data over 64 bytes: {button.data!r}")
            if not button.label.strip():
                problems.append("a button has an empty label")
    return problems


class Driver:
    """One conversation: holds the state, sends events, presses buttons of the latest replies."""

    def __init__(self, ctx: Context, state: ConversationState | None = None) -> None:
        self.ctx = ctx
        self.state = state or initial_state(ctx.flow)
        self.outcome = Outcome(self.state)
        self.history: list[Outcome] = []
        # Replies of the most recent outcome that had any: what is on screen now.
        self.screen_replies: tuple[Reply, ...] = ()

    # ---- sending --------------------------------------------------------------------------

    def send(self, event: Event) -> Outcome:
        outcome = step(self.ctx, self.state, event)
        assert outcome.state.step in self.ctx.flow.steps, outcome.state
        for reply in outcome.replies:
            assert not check_reply(reply), (check_reply(reply), reply)
            assert reply.rtl == is_rtl(outcome.state.language or "en"), reply
        self.state = outcome.state
        self.outcome = outcome
        self.history.append(outcome)
        if outcome.replies:
            self.screen_replies = outcome.replies
        return outcome

    def start(self, hint: str | None = None, payload: str = "") -> Outcome:
        return self.send(Started(payload=payload, language_hint=hint))

    def text(self, text: str) -> Outcome:
        return self.send(TextReceived(text))

    def command(self, name: str, argument: str = "") -> Outcome:
        return self.send(CommandReceived(name, argument))

    def non_text(self, kind: str) -> Outcome:
        return self.send(NonTextReceived(kind))

    def quick_exit(self) -> Outcome:
        return self.send(QuickExitRequested())

    def data(self, data: str) -> Outcome:
        """Press a button with this callback data, whether or not one is on screen."""
        return self.send(ButtonPressed(data))

    # ---- what is on screen ----------------------------------------------------------------

    @property
    def replies(self) -> tuple[Reply, ...]:
        return self.outcome.replies

    @property
    def effects(self) -> tuple[Effect, ...]:
        return self.outcome.effects

    @property
    def screen(self) -> Reply:
        """The last reply of the latest outcome (the current screen after a re-render)."""
        assert self.replies, "the latest outcome has no replies"
        return self.replies[-1]

    @property
    def step_id(self) -> str:
        return self.state.step

    @property
    def answers(self) -> Mapping[str, str]:
        return self.state.answers

    @property
    def language(self) -> str:
        return self.state.language or self.ctx.deployment.default_language

    def buttons(self) -> list[Button]:
        """Buttons of the latest replies, the newest message first."""
        return [b for reply in reversed(self.screen_replies) for row in reply.buttons for b in row]

    def find(
        self, label: str | None = None, *, data: str | None = None, prefix: str | None = None
    ) -> Button:
        for button in self.buttons():
            if label is not None and button.label != label:
                continue
            if data is not None and button.data != data:
                continue
            if prefix is not None and not button.data.startswith(prefix):
                continue
            return button
        shown = [(b.label, b.data) for b in self.buttons()]
        raise AssertionError(f"no button {label=} {data=} {prefix=} among {shown}")

    def has(self, label: str | None = None, *, data: str | None = None) -> bool:
        try:
            self.find(label, data=data)
        except AssertionError:
            return False
        return True

    def choose_language(self, code: str) -> None:
        """On the language list, press `code`'s own name, turning pages (▶) until it shows."""
        name = native_name(code)
        for _ in range(len(self.ctx.deployment.languages)):
            if self.has(name):
                self.press(name)
                return
            self.press("▶")
        raise AssertionError(f"{name!r} is on no page of the language list")

    def press(
        self, label: str | None = None, *, data: str | None = None, prefix: str | None = None
    ) -> Outcome:
        return self.send(ButtonPressed(self.find(label, data=data, prefix=prefix).data))

    def answer(self, value: str) -> Outcome:
        """Press the current screen's action button for `value` (option, skip, confirm...)."""
        return self.press(data=f"a:{encode_seq(self.state.seq)}:{value}")

    # ---- expected wording ------------------------------------------------------------------

    def tr(self, source: str) -> str:
        """`source` in the conversation's language, escaped as the engine escapes it."""
        text = html.escape(self.ctx.catalogs.get(self.language).gettext(source), quote=False)
        return isolate_ltr_runs(text) if is_rtl(self.language) else text

    def ltr(self, value: str) -> str:
        return f"{FSI}{value}{PDI}" if is_rtl(self.language) else value

    def msg(self, key: str, **values: str) -> str:
        """The engine's interface string `key`, rendered as `say` renders it."""
        dep = self.ctx.deployment
        urgent = [h for h in dep.helplines if h.urgent] or list(dep.helplines)
        filled = {
            "force": dep.policy.force,
            "area": dep.area,
            "reviewed": self.ltr(dep.policy.reviewed),
            "checked": self.ltr(dep.policy.checked),
            "draft_minutes": self.ltr(str(self.ctx.draft_minutes)),
            "state_hours": self.ltr(str(self.ctx.state_hours)),
            "helpline": self.ltr(urgent[0].number) if urgent else "999",
            **values,
        }
        text = self.tr(self.ctx.flow.string(key))
        return text.format_map({k: html.escape(v, quote=False) for k, v in filled.items()})

    def notice(self, key: str, *more: str, **values: str) -> str:
        """A notice of several interface strings, one paragraph each, as `Turn.say` joins them."""
        return "\n\n".join(self.msg(k, **values) for k in (key, *more))

    def plural(self, key: str, n: int, **values: str) -> str:
        """The flow's plural string `key` for `n`, in the conversation's language."""
        singular, plural = self.ctx.flow.plurals[key]
        text = self.ctx.catalogs.get(self.language).ngettext(singular, plural, n)
        filled = {k: html.escape(v, quote=False) for k, v in values.items()}
        return html.escape(text, quote=False).format_map({**filled, "n": self.ltr(str(n))})

    def label(self, key: str) -> str:
        """A button label from [strings], as plain text."""
        return html.unescape(self.msg(key))

    # ---- the contact form -----------------------------------------------------------------

    def perform(self, move: Move) -> Outcome:
        """Do what the walker says: type, or press the button with the walker's label (which
        must be the one carrying the answer it means: `a:<seq>:<value>`, or `skip`)."""
        if isinstance(move.action, Type):
            return self.text(move.action.text)
        button = self.find(move.action.label)
        if move.field is not None:
            meant = "skip" if move.value is None else move.value
            assert button.data == f"a:{encode_seq(self.state.seq)}:{meant}", (move, button)
        return self.send(ButtonPressed(button.data))

    def walk(self, plan: Mapping[str, str | None], *, until: str | None = None) -> Iterator[Move]:
        """The shared walker's moves (tests/walker.py) for `plan`, in this conversation's
        language."""
        ctx = self.ctx
        return walk(
            ctx.flow, ctx.deployment, plan, lang=self.language, catalogs=ctx.catalogs, until=until
        )

    def fill_form(self, plan: Mapping[str, str | None]) -> list[str]:
        """Open the contact form from the menu and answer each question from `plan`
        (field -> value; None presses Skip), as the shared walker says. The engine must ask
        exactly the questions the walker expects. Returns the question steps visited."""
        self.press(data="m")
        visited = []
        for move in self.walk(plan):
            assert self.step_id == move.step, (move, self.replies)
            current = self.ctx.flow.step(self.step_id)
            if current.kind == "question" and current.id not in visited[-1:]:
                visited.append(current.id)
                assert current.field in plan, f"the plan has no answer for {current.field!r}"
            self.perform(move)
            assert move.stays or self.step_id != current.id, (current.id, self.replies)
        assert self.ctx.flow.step(self.step_id).kind != "question", (visited, self.replies)
        return visited


def form_plan(method: str, **overrides: str | None) -> dict[str, str | None]:
    """Answers for every question of the bundled form (more than any one path asks)."""
    plan: dict[str, str | None] = {
        "consent": "yes",
        "method": method,
        "phone": PHONE_TYPED,
        "email": EMAIL,
        "times": "evenings",
        "leave_message": "no",
        "someone_else": "wrong_number",
        "codeword": "bluebird",
        "language": "pl",
        "interpreter": "yes",
        "urgent": "yes",
        "threats": "yes",
        "documents": "no",
        "children": "yes",
        "organisation": "none",
        "message": "Please call after 6pm.",
    }
    plan.update(overrides)
    return plan


OPTIONAL_FIELDS = (
    "codeword",
    "interpreter",
    "urgent",
    "threats",
    "documents",
    "children",
    "message",
)


@pytest.fixture(scope="session")
def ctx() -> Context:
    return make_context()


@pytest.fixture(scope="session")
def flow_toml() -> Callable[[], dict[str, Any]]:
    """A fresh deep copy of the bundled flow's parsed TOML, to mutate."""
    parsed = tomllib.loads(bundled_flow_path().read_text(encoding="utf-8"))
    return lambda: copy.deepcopy(parsed)


@pytest.fixture(scope="session")
def drive(ctx: Context) -> Callable[..., Driver]:
    """`drive("pl")`: a conversation started with that language hint (on its welcome screen);
    `drive(None)`: one not started; `drive(state=...)`: one resuming a stored state."""

    def make(language: str | None = "en", *, state: ConversationState | None = None) -> Driver:
        driver = Driver(ctx, state)
        if language is not None and state is None:
            driver.start(hint=language)
            assert driver.step_id == ctx.flow.entry and driver.language == language
        return driver

    return make


@pytest.fixture(params=LANGUAGES)
def lang(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def stored_answer(question: Step, value: str) -> str:
    """A plan value (tests/walker.py) as the engine stores it for `question`."""
    if question.input == "phone":
        return PHONE_E164 if value == PHONE_TYPED else value
    if question.input == "choices":
        if value.startswith(OWN):
            stored = choices_answer([], value[len(OWN) :])
        else:
            stored = choices_answer(value.split("+"), "")
        assert stored is not None
        return stored
    return value


def shown_screens(flow: Flow) -> set[str]:
    """Screens an answer shows at once (an option's `show`: help.now after "in danger")."""
    return {o.show for s in flow.steps.values() for o in s.options if o.show}


def help_row(d: Driver) -> tuple[Button, ...]:
    """The "I need help now" row offered after unexpected input."""
    help_now = d.ctx.flow.step(d.ctx.flow.help_step)
    return (Button(html.unescape(d.tr(help_now.title)), f"g:{help_now.id}"),)


def resume_row(d: Driver) -> tuple[Button, ...]:
    """The "Continue my request" row information screens start with while a draft is kept."""
    return (Button(d.label("resume"), "r"),)


def assert_help_row_added(d: Driver, before: Reply) -> None:
    """The latest screen is `before` again, with "I need help now" as its first row; or, where
    the screen has that button of its own (the menu), with it there exactly once."""
    assert d.screen.html == before.html
    own = [b for row in before.buttons for b in row if b.data == help_row(d)[0].data]
    if own:
        assert d.screen.buttons == before.buttons, d.screen.buttons
        assert len(own) == 1
    else:
        assert d.screen.buttons == (help_row(d), *before.buttons), d.screen.buttons


Drive = Callable[..., Driver]


def at_summary(drive: Drive, lang: str, method: str = "call", **overrides: str | None) -> Driver:
    d = drive(lang)
    d.fill_form(form_plan(method, **overrides))
    assert d.step_id == "contact.summary"
    return d


def at_question(drive: Drive, lang: str, target: str, method: str = "call") -> Driver:
    d = drive(lang)
    d.data("g:contact.consent")  # the form opened from the welcome screen, not the menu
    for move in d.walk(form_plan(method), until=target):
        if move.step == d.ctx.flow.menu:
            continue
        assert d.step_id == move.step, (move, d.replies)
        # a question, or the screen an answer shows first (help.now after "in danger")
        kind = d.ctx.flow.step(d.step_id).kind
        assert kind == "question" or d.step_id in shown_screens(d.ctx.flow), d.step_id
        d.perform(move)
    assert d.step_id == target, (target, d.replies)
    return d


def answer_until_summary(d: Driver, plan: dict[str, str | None]) -> list[str]:
    """Answer whatever question is shown from `plan` until the summary; the steps asked."""
    asked = []
    for _ in range(len(d.ctx.flow.form) + 1):
        if d.step_id == "contact.summary":
            return asked
        current = d.ctx.flow.step(d.step_id)
        assert current.kind == "question", d.step_id
        asked.append(current.id)
        value = plan[current.field or ""]
        if value is None:
            d.answer("skip")
        elif current.input == "choice":
            d.answer(value)
        elif current.input == "choices":
            for picked in value.split("+"):
                d.answer(picked)
            d.answer("done")
        else:
            d.text(value)
        assert d.step_id != current.id, (current.id, d.replies)
    raise AssertionError(f"the form did not reach the summary: {asked}")


def method_for(sid: str) -> str:
    """A contact method under which question `sid` is asked."""
    return {"contact.email": "email"}.get(sid, "call")


def reach_step(drive: Drive, lang: str, sid: str) -> Driver:
    """A conversation in `lang` on step `sid`, reached as a person would (the form with the
    bundled plan's answers so far; the done screen after a stored request)."""
    flow = drive(None).ctx.flow
    step = flow.step(sid)
    if step.kind == "question":
        return at_question(drive, lang, sid, method=method_for(sid))
    if step.kind in ("summary", "done"):
        d = at_summary(drive, lang)
        if step.kind == "done":
            d.answer("confirm")
            d.send(RequestStored(REFERENCE))
        assert d.step_id == sid
        return d
    d = drive(lang)
    if sid == flow.entry:
        pass
    elif sid == flow.menu:
        d.press(data="m")
    elif step.kind == "language":
        d.press(data="l")
    elif step.kind in ("status", "forget"):
        d.command(step.kind)
    elif step.kind == "exit":
        d.quick_exit()
    else:
        d.data(f"g:{sid}")
    assert d.step_id == sid, (sid, d.replies)
    return d
