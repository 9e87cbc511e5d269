"""Loading a flow file: parse, validate, build frozen objects. A loaded flow is valid.

A flow is data (TOML): the step graph and the English source strings that gettext extracts.
`load_flow` reports *every* problem it finds in one `FlowError` (as goflow's `NewFlow` does),
so an editor fixes a file in one pass instead of one error at a time.

Step kinds and question inputs are listed, with what each does, in `flows.kinds`. Besides the
shape of each step, the loader refuses a flow the engine could not run to the end: unknown
targets, unreachable steps, and `when` conditions that could skip round a loop forever.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from flows import form
from flows.callbacks import CALLBACK_DATA_MAX_BYTES as CALLBACK_DATA_MAX_BYTES
from flows.callbacks import LONGEST_SEQ, Act, GoTo, encode, fits
from flows.errors import FlowError
from flows.kinds import SINGLE_KINDS, InputKind, StepKind

MAX_FLOW_BYTES = 512 * 1024

STEP_KINDS = frozenset(StepKind)
INPUT_KINDS = frozenset(InputKind)
BLOCKS = frozenset(
    {
        "helplines_now",
        "helplines_all",
        "helplines_other",
        "organisations",
        "policy_commitment",
        "policy_exception",
        "policy_original",
        "recipients",
        "retention",
    }
)
DYNAMIC_OPTIONS = frozenset({"languages", "organisations"})
DEPLOYMENT_CONDITIONS = frozenset({form.ORG_CHOICE})

# Interface strings the engine itself uses; the flow file must define each.
REQUIRED_STRINGS = frozenset(
    {
        "quick_exit",
        "language",
        "menu",
        "skip",
        "yes",
        "no",
        "stale_button",
        "buttons_only",
        "not_text",
        "edited",
        "too_long",
        "confirm",
        "change",
        "cancel",
        "change_which",
        "not_answered",
        "submit_failed",
        "submit_interrupted",
        "language_changed",
        "status_unknown",
        "status_waiting",
        "status_picked_up",
        "status_closed",
        "status_withdrawn",
        "forgotten",
        "forgotten_withdrawn",
        "reference_intro",
        "free_24h",
        "emergency_line",
        "policy_reviewed",
        "policy_quote_intro",
        "policy_exception_intro",
        "no_preference",
        "phone_label",
        "website_label",
        "languages_label",
        "unofficial_translation",
        "invalid_phone",
        "invalid_email",
        "invalid_text",
        "status_bad_code",
        "status_deleted",
        "resume",
        "draft_gone",
        "draft_deleted",
        "delete_confirm",
        "delete_yes",
        "delete_no",
        "choose_one",
        "own_answer",
        "done",
        "free",
        "after_send",
        "policy_source",
    }
)
REQUIRED_PLURALS = frozenset({"retention_days", "retention_closed_days", "contact_within"})
_TITLED_KINDS = frozenset(
    {StepKind.SUMMARY, StepKind.FORGET, StepKind.DONE, StepKind.STATUS, StepKind.LANGUAGE}
)
# Reachable from every screen through the global buttons and commands.
_GLOBAL_KINDS = frozenset({StepKind.LANGUAGE, StepKind.EXIT, StepKind.STATUS, StepKind.FORGET})


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    next: str | None = None
    # How the summary says this answer, when the button's words do not read as an answer
    # ("Yes, a message is safe" is fine; "Yes, go on" is not).
    summary: str = ""
    # A screen shown at once after this answer (e.g. the emergency route after "I am in
    # danger"); the form goes on from there with "Continue my request".
    show: str | None = None


# Conditions a navigation button may carry; see `flows.render`.
BUTTON_CONDITIONS = frozenset({"policy_translated"})


@dataclass(frozen=True)
class NavButton:
    label: str
    goto: str
    when: str | None = None


@dataclass(frozen=True)
class Condition:
    field: str | None = None
    values: frozenset[str] = frozenset()
    deployment: str | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    title: str = ""
    text: tuple[str, ...] = ()
    blocks: tuple[str, ...] = ()
    buttons: tuple[NavButton, ...] = ()
    next: str | None = None
    field: str | None = None
    input: InputKind | None = None
    options: tuple[Option, ...] = ()
    options_from: str | None = None
    optional: bool = False
    max_length: int = 200
    summary_label: str = ""
    when: Condition | None = None
    protect: bool = True
    # An emergency screen: delivered ahead of ordinary replies to everyone. The first one is
    # the "I need help now" screen every calm answer to unexpected input offers.
    urgent: bool = False
    # A question whose answer the summary does not list (the consent to start the form).
    in_summary: bool = True
    # A `choices` question that also takes typed words as an answer of her own.
    own_text: bool = False


@dataclass(frozen=True)
class Flow:
    id: str
    version: int
    entry: str
    menu: str
    steps: Mapping[str, Step]
    strings: Mapping[str, str]
    # key -> (singular, plural) English source; gettext picks the form for each language
    plurals: Mapping[str, tuple[str, str]]
    # question steps in form order, for the summary
    form: tuple[str, ...] = field(default_factory=tuple)
    # command name -> English description, for channels with a command menu
    commands: Mapping[str, str] = field(default_factory=dict)
    # The bot's own name, description and short description, per language (PROFILE_LIMITS)
    profile: Mapping[str, str] = field(default_factory=dict)
    # The words of an outreach poster (POSTER_LIMITS), translated like every other string
    poster: Mapping[str, str] = field(default_factory=dict)

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]

    @cached_property
    def help_step(self) -> str:
        """The "I need help now" screen: the flow's first urgent step (checked at load)."""
        return next(s.id for s in self.steps.values() if s.urgent)

    @cached_property
    def by_kind(self) -> Mapping[StepKind, str]:
        """Kind -> step id, for the kinds a flow has exactly one of (checked at load)."""
        return {s.kind: s.id for s in self.steps.values()}

    @cached_property
    def nav_targets(self) -> frozenset[str]:
        """Steps some navigation button leads to: the only targets a `g:` press may name (the
        "I need help now" screen is offered on every screen after unexpected input)."""
        targets = {b.goto for s in self.steps.values() for b in s.buttons}
        return frozenset({*targets, self.help_step})

    def string(self, key: str) -> str:
        return self.strings[key]

    def source_strings(self) -> list[str]:
        """Every translatable English string, in file order (what gettext extracts)."""
        out: list[str] = [
            *self.strings.values(),
            *self.commands.values(),
            *self.profile.values(),
            *self.poster.values(),
        ]
        for s in self.steps.values():
            out.extend(x for x in (s.title, *s.text, s.summary_label) if x)
            out.extend(b.label for b in s.buttons)
            out.extend(o.label for o in s.options)
            out.extend(o.summary for o in s.options if o.summary)
        return list(dict.fromkeys(out))


# What Telegram shows of the bot before a chat starts, and its limits (setMyName,
# setMyDescription, setMyShortDescription).
PROFILE_LIMITS = {"name": 64, "description": 512, "short_description": 120}

# An outreach poster's words (bot/poster.py lays them out) and the most characters each may
# have in any language, so that every size of poster, the card included, has room for it.
POSTER_LIMITS = {
    "headline": 60,
    "what": 130,
    "private": 170,
    "not_police": 170,
    "emergency": 170,
    "scan": 70,
}


def bundled_flow_path() -> Path:
    return Path(str(resources.files("flows") / "content" / "victim.toml"))


def load_flow(path: Path | None = None) -> Flow:
    path = path or bundled_flow_path()
    raw = path.read_bytes()
    if len(raw) > MAX_FLOW_BYTES:
        raise FlowError([f"{path.name}: file is larger than {MAX_FLOW_BYTES} bytes"])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FlowError([f"{path.name}: not valid TOML: {exc}"]) from exc
    return build_flow(data)


def build_flow(data: Mapping[str, Any]) -> Flow:
    problems: list[str] = []
    meta = data.get("flow", {})
    steps_raw = data.get("steps", {})
    strings_raw = data.get("strings", {})
    if not isinstance(steps_raw, dict) or not steps_raw:
        raise FlowError(["[steps] is missing or empty"])

    strings = {str(k): str(v) for k, v in strings_raw.items()}
    for key in sorted(REQUIRED_STRINGS - strings.keys()):
        problems.append(f"[strings] is missing {key!r}")
    plurals: dict[str, tuple[str, str]] = {}
    for key, forms in data.get("plurals", {}).items():
        if not (isinstance(forms, list) and len(forms) == 2):
            problems.append(f"[plurals] {key!r} needs [singular, plural]")
        else:
            plurals[str(key)] = (str(forms[0]), str(forms[1]))
    for key in sorted(REQUIRED_PLURALS - plurals.keys()):
        problems.append(f"[plurals] is missing {key!r}")

    steps: dict[str, Step] = {}
    questions: list[str] = []
    for sid, raw in steps_raw.items():
        step = _build_step(sid, raw, problems)
        if step is not None:
            steps[sid] = step
            if step.kind == StepKind.QUESTION:
                questions.append(sid)

    commands = {str(k): str(v) for k, v in data.get("commands", {}).items()}
    for name, description in commands.items():
        if not (
            1 <= len(name) <= 32 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in name)
        ):
            problems.append(f"[commands] {name!r}: 1-32 characters of a-z, 0-9, _")
        if not 1 <= len(description) <= 256:
            problems.append(f"[commands] {name!r}: description must be 1-256 characters")

    profile = {str(k): str(v) for k, v in data.get("profile", {}).items()}
    for name, text in profile.items():
        limit = PROFILE_LIMITS.get(name)
        if limit is None:
            problems.append(f"[profile] {name!r}: only {', '.join(PROFILE_LIMITS)}")
        elif not 1 <= len(text) <= limit:
            problems.append(f"[profile] {name!r}: 1-{limit} characters")

    poster = {str(k): str(v) for k, v in data.get("poster", {}).items()}
    for name, text in poster.items():
        limit = POSTER_LIMITS.get(name)
        if limit is None:
            problems.append(f"[poster] {name!r}: only {', '.join(POSTER_LIMITS)}")
        elif not 1 <= len(text) <= limit:
            problems.append(f"[poster] {name!r}: 1-{limit} characters")
    if poster and set(poster) != set(POSTER_LIMITS):
        missing = ", ".join(sorted(set(POSTER_LIMITS) - set(poster)))
        problems.append(f"[poster] needs every one of {', '.join(POSTER_LIMITS)} ({missing})")

    entry = str(meta.get("entry", ""))
    menu = str(meta.get("menu", ""))
    for name, target in (("entry", entry), ("menu", menu)):
        if target not in steps:
            problems.append(f"[flow] {name} points to unknown step {target!r}")

    for sid, step in steps.items():
        for target in _targets(step):
            if target not in steps:
                problems.append(f"step {sid!r}: transition to unknown step {target!r}")
        if (
            step.when
            and step.when.field
            and not any(s.field == step.when.field for s in steps.values())
        ):
            problems.append(
                f"step {sid!r}: 'when' names field {step.when.field!r} no question sets"
            )

    for sid, step in steps.items():
        for o in step.options:
            if o.show is not None and (
                o.show not in steps or steps[o.show].kind != StepKind.SCREEN
            ):
                problems.append(f"step {sid!r}: option {o.value!r} shows {o.show!r}, not a screen")
    if not any(s.urgent and s.kind == StepKind.SCREEN for s in steps.values()):
        problems.append("the flow needs an urgent screen (urgent = true): the emergency route")
    elif next(s for s in steps.values() if s.urgent).kind != StepKind.SCREEN:
        problems.append("the first urgent step must be a screen: the emergency route")

    fields_seen: dict[str, str] = {}
    for sid in questions:
        fld = steps[sid].field or ""
        if fld in fields_seen:
            problems.append(f"step {sid!r}: field {fld!r} is already set by {fields_seen[fld]!r}")
        fields_seen[fld] = sid

    for kind in SINGLE_KINDS:
        count = sum(1 for s in steps.values() if s.kind == kind)
        if count != 1:
            problems.append(f"the flow needs exactly one {kind.value!r} step, found {count}")

    summary = next((s.id for s in steps.values() if s.kind == StepKind.SUMMARY), "")
    for loop in form.skip_loops(steps, summary):
        chain = " -> ".join(repr(sid) for sid in [*loop, loop[0]])
        problems.append(
            f"step {loop[0]!r}: questions whose 'when' does not hold could be skipped round"
            f" {chain} forever"
        )

    # Unknown targets are skipped by the walk, so every unreachable step is listed too.
    for sid in sorted(set(steps) - _reachable(steps, entry, menu)):
        problems.append(f"step {sid!r} is unreachable")

    if problems:
        raise FlowError(problems)
    return Flow(
        id=str(meta.get("id", "flow")),
        version=int(meta.get("version", 1)),
        entry=entry,
        menu=menu,
        steps=steps,
        strings=strings,
        plurals=plurals,
        form=tuple(questions),
        commands=commands,
        profile=profile,
        poster=poster,
    )


def _build_step(sid: str, raw: Any, problems: list[str]) -> Step | None:
    where = f"step {sid!r}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    if not fits(encode(GoTo(sid))):
        problems.append(f"{where}: id too long for a button's callback data")
    if raw.get("kind") not in STEP_KINDS:
        problems.append(f"{where}: unknown kind {raw.get('kind')!r}")
        return None
    kind = StepKind(raw["kind"])
    text = raw.get("text", [])
    if isinstance(text, str):
        text = [text]
    blocks = tuple(raw.get("blocks", []))
    for b in blocks:
        if b not in BLOCKS:
            problems.append(f"{where}: unknown block {b!r}")
    buttons = []
    for b in raw.get("buttons", []):
        if not isinstance(b, dict) or "label" not in b or "goto" not in b:
            problems.append(f"{where}: a button needs 'label' and 'goto'")
            continue
        cond = b.get("when")
        if cond is not None and cond not in BUTTON_CONDITIONS:
            problems.append(f"{where}: unknown button condition {cond!r}")
        buttons.append(NavButton(label=str(b["label"]), goto=str(b["goto"]), when=cond))
    options = []
    for o in raw.get("options", []):
        if not isinstance(o, dict) or "value" not in o or "label" not in o:
            problems.append(f"{where}: an option needs 'value' and 'label'")
            continue
        value = str(o["value"])
        if not fits(encode(Act(LONGEST_SEQ, value))):
            problems.append(f"{where}: option value {value!r} too long for callback data")
        options.append(
            Option(
                value=value,
                label=str(o["label"]),
                next=o.get("next"),
                summary=str(o.get("summary", "")),
                show=o.get("show"),
            )
        )
    when = None
    if "when" in raw:
        w = raw["when"]
        if w.get("deployment") and w["deployment"] not in DEPLOYMENT_CONDITIONS:
            problems.append(f"{where}: unknown deployment condition {w['deployment']!r}")
        when = Condition(
            field=w.get("field"), values=frozenset(w.get("in", [])), deployment=w.get("deployment")
        )
    step = Step(
        id=sid,
        kind=kind,
        title=str(raw.get("title", "")),
        text=tuple(str(t) for t in text),
        blocks=blocks,
        buttons=tuple(buttons),
        next=raw.get("next"),
        field=raw.get("field"),
        # Only questions take input; anything else here is reported below or ignored.
        input=InputKind(raw["input"]) if _is_one_of(raw.get("input"), INPUT_KINDS) else None,
        options=tuple(options),
        options_from=raw.get("options_from"),
        optional=bool(raw.get("optional", False)),
        max_length=int(raw.get("max_length", 200)),
        summary_label=str(raw.get("summary_label", "")),
        urgent=bool(raw.get("urgent", False)),
        in_summary=bool(raw.get("in_summary", True)),
        own_text=bool(raw.get("own_text", False)),
        when=when,
        protect=bool(raw.get("protect", True)),
    )
    if kind == StepKind.QUESTION:
        if not step.field:
            problems.append(f"{where}: a question needs a 'field'")
        if step.input is None:
            problems.append(f"{where}: unknown input {raw.get('input')!r}")
        if step.input == InputKind.CHOICE and not (step.options or step.options_from):
            problems.append(f"{where}: a choice needs options or options_from")
        if step.input == InputKind.CHOICES and (not step.options or step.options_from):
            problems.append(f"{where}: a 'choices' question needs its own options")
        if step.own_text and step.input != InputKind.CHOICES:
            problems.append(f"{where}: own_text is for 'choices' questions")
        if step.input == InputKind.CHOICES and any(o.next or o.show for o in step.options):
            problems.append(f"{where}: options of a 'choices' question cannot lead elsewhere")
        if step.options_from and step.options_from not in DYNAMIC_OPTIONS:
            problems.append(f"{where}: unknown options_from {step.options_from!r}")
        if not step.next and not all(o.next for o in step.options):
            problems.append(f"{where}: a question needs 'next'")
        if not step.summary_label:
            problems.append(f"{where}: a question needs a 'summary_label'")
    if kind in _TITLED_KINDS and not step.title:
        problems.append(f"{where}: needs a title")
    return step


def _is_one_of(value: object, names: frozenset[str]) -> bool:
    return isinstance(value, str) and value in names


def _targets(step: Step) -> list[str]:
    out = [b.goto for b in step.buttons]
    out += [o.next for o in step.options if o.next]
    out += [o.show for o in step.options if o.show]
    if step.next:
        out.append(step.next)
    return out


def _reachable(steps: Mapping[str, Step], entry: str, menu: str) -> set[str]:
    # The menu, language, exit, status and forget screens are reachable from every screen
    # through the global buttons and commands.
    roots = [entry, menu] + [s.id for s in steps.values() if s.kind in _GLOBAL_KINDS]
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in steps:
            continue
        seen.add(sid)
        step = steps[sid]
        todo.extend(_targets(step))
        if step.kind in {StepKind.QUESTION, StepKind.SUMMARY}:
            # questions lead on through the form; the summary submits
            todo.extend(
                s.id for s in steps.values() if s.kind in {StepKind.SUBMITTING, StepKind.DONE}
            )
    return seen
