"""A request's answers in words, laid out for the phone call: how and when to make contact,
what to do if someone else answers, the code word, language, the risk answers, the message.

Labels and options come from the flow file (flows/content/victim.toml), so a value is shown
as the words the victim chose ("Say it is a wrong number"), never as its code. Plain strings
come out: the templates escape them (everything here may hold what a victim typed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError

from bot.portal.i18n import N_, _
from flows.definition import Flow, Step
from flows.deployment import Deployment
from flows.form import NO_PREFERENCE, picked
from flows.i18n import native_name
from flows.kinds import InputKind
from flows.validators import display_phone

FIELD_CODEWORD = "codeword"

# Sections of the call sheet, in order, and the fields each holds. A field the flow gains
# later and nobody placed here still shows, under "Other answers".
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("How to make contact"), ("method", "phone", "email", "times")),
    (
        N_("If the person cannot be reached, or someone else answers"),
        ("leave_message", "someone_else"),
    ),
    (N_("Code word"), (FIELD_CODEWORD,)),
    (N_("Language"), ("language", "interpreter")),
    (N_("Risk"), ("urgent", "threats", "documents", "children")),
    (N_("Their message"), ("message",)),
)
# The flow's summary labels speak to the victim ("How to contact me"); the advocate reads these.
LABELS = {
    "method": N_("How to make contact"),
    "phone": N_("Safe phone number"),
    "email": N_("Safe email address"),
    "times": N_("Safe times"),
    "leave_message": N_("May a message be left?"),
    "someone_else": N_("If someone else answers"),
    "codeword": N_("Code word"),
    "language": N_("Language to speak"),
    "interpreter": N_("Interpreter"),
    "urgent": N_("In danger now or soon"),
    "threats": N_("Threats about their visa"),
    "documents": N_("Passport or papers taken"),
    "children": N_("Children at home"),
    "message": N_("Their message"),
}
HIDDEN = frozenset({"consent", "organisation"})

OUTCOMES = {
    "contacted": N_("Contacted"),
    "not_reached": N_("Could not reach"),
    "closed": N_("Closed"),
}
CLOSE_REASONS = {
    "supported": N_("Contacted and supported"),
    "referred": N_("Referred to another service"),
    "declined": N_("The person did not want support now"),
    "unreachable": N_("Could not reach the person after several attempts"),
    "duplicate": N_("Duplicate request"),
    "other": N_("Other reason"),
}
STATUSES = {
    "new": N_("New"),
    "picked_up": N_("Picked up"),
    "closed": N_("Closed"),
    "withdrawn": N_("Withdrawn by the person"),
}


@dataclass(frozen=True)
class Answer:
    field: str
    label: str
    words: tuple[str, ...]  # one line each (several for a multi-choice answer)


@dataclass(frozen=True)
class Section:
    title: str
    answers: tuple[Answer, ...]


def language_name(code: str) -> str:
    """ "Polish (polski)": the English name for the advocate, the native one to say it."""
    try:
        english = Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (UnknownLocaleError, ValueError):
        return code
    native = native_name(code)
    return english if native.lower() == english.lower() else f"{english} ({native})"


def _option_words(question: Step, value: str, deployment: Deployment) -> str:
    if question.options_from == "languages":
        return language_name(value)
    if question.options_from == "organisations":
        if value == NO_PREFERENCE:
            return _("No preference")
        try:
            return deployment.organisation(value).name
        except KeyError:
            return value
    for option in question.options:
        if option.value == value:
            return option.summary or option.label
    return value


def words_for(question: Step, value: str, deployment: Deployment) -> tuple[str, ...]:
    if question.input == InputKind.PHONE:
        return (display_phone(value),)
    if question.input == InputKind.CHOICE:
        return (_option_words(question, value, deployment),)
    if question.input == InputKind.CHOICES:
        values, own = picked(value)
        if not values and not own:
            return (value,)  # an answer from before `times` took several choices
        words = [_option_words(question, v, deployment) for v in values]
        return (*words, *([f"“{own}”"] if own else []))
    return (value,)


def call_sheet(
    flow: Flow, deployment: Deployment, answers: Mapping[str, object]
) -> tuple[Section, ...]:
    questions = {flow.step(sid).field: flow.step(sid) for sid in flow.form}
    shown: dict[str, Answer] = {}
    for field, question in questions.items():
        if field is None or field in HIDDEN:
            continue
        value = answers.get(field)
        if not isinstance(value, str) or not value:
            continue
        label = _(LABELS[field]) if field in LABELS else question.summary_label or field
        shown[field] = Answer(field, label, words_for(question, value, deployment))
    sections = []
    placed: set[str] = set()
    for title, fields in SECTIONS:
        placed.update(fields)
        found = tuple(shown[f] for f in fields if f in shown)
        if found or FIELD_CODEWORD in fields:
            sections.append(Section(_(title), found))
    rest = tuple(a for f, a in shown.items() if f not in placed)
    if rest:
        sections.append(Section(_("Other answers"), rest))
    return tuple(sections)
