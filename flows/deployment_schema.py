"""The deployment TOML's schema: every key, its type, and the rules between them.

A deployment that is wrong in any way is refused at start-up with every problem at once, one
line each, named by its path (`helplines[2].hours_open`) and, for a misspelt key, the key it
probably meant. Nothing has a silent default that could put a wrong number or a missing
translation in front of a victim.

Two passes. Pydantic checks the shape of each table (unknown keys, types, required fields);
plain code then checks what needs the whole file (languages, routing, phone numbers by
whether the deployment is fictional). The result is the frozen dataclasses of
`flows.deployment`; pydantic is used here only, once, at start-up.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlparse

import phonenumbers
from phonenumbers import shortnumberinfo
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from flows.deployment import Deployment, Helpline, LocalText, Organisation, Policy
from flows.errors import FlowError
from flows.i18n import bundled_locales_dir

SOURCE_LANGUAGE = "en"  # the flow is written in English: it needs no catalogue
ORG_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
SIGNING_KEY = re.compile(r"^safebot-sig1:[A-Za-z0-9_-]{43}$")
# Ofcom's numbers for drama (national significant numbers, 10 digits): never connected.
# phonenumbers calls them "possible" but not "valid"; a fictional deployment may use them.
DRAMA_PREFIXES = (
    "1134960", "1144960", "1154960", "1164960", "1174960", "1184960", "1214960", "1314960",
    "1414960", "1514960", "1614960", "1914980", "2079460", "2896496", "2920180", "1632960",
    "7700900", "8081570", "9098790", "3069990",
)  # fmt: skip


# ---- values -------------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _iso_date(value: object) -> str:
    # TOML has dates of its own (checked = 2026-11-01); a quoted "2026-11-01" is fine too.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise PydanticCustomError("iso_date", "must be a date (YYYY-MM-DD), got {got}", _got(value))


def _org_id(value: str) -> str:
    # It goes into button data (64 bytes at most) and into sealed requests' bound context.
    if not ORG_ID.match(value):
        raise PydanticCustomError(
            "org_id", "{got}: use up to 40 letters, digits, - or _", _got(value)
        )
    return value


def _fingerprint(value: str) -> str:
    # As `safebot keys generate` prints it; case and spaces are forgiven.
    clean = value.replace(" ", "").lower()
    if not FINGERPRINT.match(clean):
        raise PydanticCustomError(
            "fingerprint",
            "{got}: a key fingerprint is 64 hex digits, as `safebot keys generate` prints it",
            _got(value),
        )
    return clean


def _signing_key(value: str) -> str:
    if not SIGNING_KEY.match(value.strip()):
        raise PydanticCustomError(
            "signing_key",
            "{got}: a request-signing key is safebot-sig1:..., as `safebot keys list` prints it",
            _got(value),
        )
    return value.strip()


def _https(value: str) -> str:
    url = urlparse(value)
    if url.scheme != "https" or not url.hostname or any(c.isspace() for c in value):
        raise PydanticCustomError(
            "https_url", "must be an https:// address, got {got}", _got(value)
        )
    return value


def _local_shape(value: object) -> str | dict[str, str]:
    """A per-language text as written: a table `{ en = "...", pl = "..." }`, or a plain
    string (allowed for a one-language deployment; checked in the second pass)."""
    if isinstance(value, str):
        return _not_blank(value)
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "local_text",
            'must be a table of texts by language (en = "...", ...), got {got}',
            _got(value),
        )
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise PydanticCustomError(
                "local_text", "the {lang!r} text must be non-empty text", {"lang": lang}
            )
    return dict(value)


def _got(value: object) -> dict[str, str]:
    shown = repr(value)
    return {"got": shown if len(shown) <= 60 else shown[:57] + "..."}


Text = Annotated[str, AfterValidator(_not_blank)]
IsoDate = Annotated[str, PlainValidator(_iso_date)]
OrgId = Annotated[str, AfterValidator(_org_id)]
Fingerprint = Annotated[str, AfterValidator(_fingerprint)]
SigningKeyText = Annotated[str, AfterValidator(_signing_key)]
HttpsUrl = Annotated[str, AfterValidator(_https)]
LocalIn = Annotated[str | dict[str, str], PlainValidator(_local_shape)]


# ---- the tables ---------------------------------------------------------------------------


class _Table(BaseModel):
    # strict: `free = "yes"` or `days = "30"` is a mistake, not something to coerce.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DeploymentIn(_Table):
    name: Text
    area: Text
    fictional: bool
    default_language: Text
    languages: list[Text] = Field(min_length=1)
    request_signing_keys: list[SigningKeyText] = []


class TranslationIn(_Table):
    commitment: Text
    exception: Text


class PolicyIn(_Table):
    force: Text
    language: Text = SOURCE_LANGUAGE
    reviewed: IsoDate
    checked: IsoDate
    source: Text
    commitment: Text
    exception: Text
    translations: dict[str, TranslationIn] = {}


class RetentionIn(_Table):
    days: int = Field(gt=0)
    closed_days: int = Field(gt=0)


class HelplineIn(_Table):
    id: Text
    name: Text
    number: Text
    free: bool
    always_open: bool
    checked: IsoDate
    hours: LocalIn | None = None
    website: HttpsUrl | None = None
    urgent: bool = False
    about: LocalIn | None = None


class OrganisationIn(_Table):
    id: OrgId
    name: Text
    description: LocalIn
    phone: Text | None = None
    website: HttpsUrl | None = None
    languages: list[Text] = []
    receives_requests: bool
    notify_chat_id: int | None = None
    contact_within_days: int | None = Field(default=None, ge=1, le=30)
    keeps: LocalIn | None = None
    key_fingerprints: list[Fingerprint] | None = None


class RoutingIn(_Table):
    default: Text
    allow_choice: bool = False
    by_language: dict[str, Text] = {}


TABLES: dict[str, type[_Table]] = {
    "deployment": DeploymentIn,
    "policy": PolicyIn,
    "retention": RetentionIn,
    "routing": RoutingIn,
}
ARRAYS: dict[str, type[_Table]] = {"helplines": HelplineIn, "organisations": OrganisationIn}


# ---- problems, as one line each ------------------------------------------------------------


def _path(prefix: str, loc: Sequence[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _suggest(word: str, allowed: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _inner(tp: Any) -> Any:
    """`X | None` -> X; Annotated[X, ...] -> X."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else tp
    return tp


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The table model found at `loc` inside `model` (for the keys it allows)."""
    tp: Any = model
    for part in loc:
        tp = _inner(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return None
    tp = _inner(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


EXPECTED = {
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "string_type": "must be text (in quotes)",
    "list_type": "must be a list [...]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def _describe(error: ErrorDetails, prefix: str, model: type[BaseModel]) -> str:
    loc, kind = error["loc"], error["type"]
    path = _path(prefix, loc)
    if kind == "missing":
        return f"{path} is required but missing"
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = parent.model_fields if parent is not None else ()
        hint = _suggest(str(loc[-1]), allowed) or (
            f"; allowed here: {', '.join(allowed)}" if allowed else ""
        )
        return f"{path}: unknown key{hint}"
    if kind in EXPECTED:
        return f"{path} {EXPECTED[kind]}, got {_got(error['input'])['got']}"
    if kind == "too_short":
        return f"{path} must not be empty"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        bound = next(iter((error.get("ctx") or {}).values()), "")
        words = {"greater_than": "over", "greater_than_equal": "at least"}
        return f"{path} must be {words.get(kind, 'at most')} {bound}, got {error['input']!r}"
    return f"{path} {error['msg']}"


class Problems(list[str]):
    def shape(self, model: type[_Table], value: object, prefix: str) -> Any:
        """`value` as `model`, or None with its problems recorded."""
        if not isinstance(value, dict):
            self.append(f"{prefix} must be a table, got {_got(value)['got']}")
            return None
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            self.extend(_describe(e, prefix, model) for e in exc.errors())
            return None


# ---- the second pass: what needs the whole file --------------------------------------------


def catalogue_languages() -> frozenset[str]:
    """Languages with a catalogue in locales/, plus the source language."""
    found = {p.parent.parent.name for p in bundled_locales_dir().glob("*/LC_MESSAGES/messages.po")}
    return frozenset({SOURCE_LANGUAGE, *found})


def phone_problem(number: str, *, drama_ok: bool) -> str | None:
    """Why `number` is not a UK number someone can call (None if it is one)."""
    try:
        parsed = phonenumbers.parse(number, "GB")
    except phonenumbers.NumberParseException:
        return "is not a phone number"
    nsn = phonenumbers.national_significant_number(parsed)
    # First: phonenumbers counts some drama ranges (020 7946 0xxx, 0113 496 0xxx) as valid.
    if len(nsn) == 10 and nsn.startswith(DRAMA_PREFIXES):
        return None if drama_ok else "is in Ofcom's drama range: only for fictional = true"
    if phonenumbers.is_valid_number(parsed):
        return None
    if shortnumberinfo.is_valid_short_number_for_region(parsed, "GB"):
        return None
    return "is not a valid UK number or short number"


class _Checker:
    def __init__(self, problems: Problems, languages: Sequence[str] | None) -> None:
        self.problems = problems
        self.languages = languages  # None: [deployment] is broken, per-language checks wait

    def local(self, value: str | dict[str, str] | None, path: str) -> LocalText:
        if value is None or self.languages is None:
            return {} if not isinstance(value, dict) else dict(value)
        langs = self.languages
        if isinstance(value, str):
            if len(langs) == 1:
                return {langs[0]: value}
            self.problems.append(
                f"{path} is one plain text, but the deployment has {len(langs)} languages: "
                f"give a table with one text each ({', '.join(langs)})"
            )
            return {}
        for lang in langs:
            if lang not in value:
                self.problems.append(f"{path} has no {lang!r} text")
        for lang in value:
            if lang not in langs:
                self.problems.append(
                    f"{path}.{lang}: {lang!r} is not an enabled language "
                    f"({', '.join(langs)}){_suggest(lang, langs)}"
                )
        return value

    def unique(self, items: Sequence[HelplineIn | OrganisationIn | None], what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item is not None and item.id in seen:
                self.problems.append(f"{what}[{i}].id {item.id!r} is used twice")
            seen.update([item.id] if item is not None else [])


def _languages(dep: DeploymentIn, catalogues: Collection[str], problems: Problems) -> list[str]:
    langs = list(dict.fromkeys(dep.languages))
    for i, lang in enumerate(dep.languages):
        if lang in dep.languages[:i]:
            problems.append(f"deployment.languages lists {lang!r} twice")
    for lang in langs:
        if lang not in catalogues:
            problems.append(
                f"deployment.languages: {lang!r} has no catalogue "
                f"(locales/{lang}/LC_MESSAGES/messages.po){_suggest(lang, catalogues)}"
            )
    if dep.default_language not in langs:
        problems.append(
            f"deployment.default_language {dep.default_language!r} is not in "
            f"deployment.languages ({', '.join(langs)})"
        )
    return langs


def _policy(p: PolicyIn, check: _Checker) -> Policy:
    if check.languages is not None:
        for lang in check.languages:
            if lang != p.language and lang not in p.translations:
                check.problems.append(
                    f"policy.translations has no {lang!r} translation: every enabled language "
                    f"other than policy.language ({p.language!r}) needs [policy.translations."
                    f"{lang}] with the commitment and the exception"
                )
        for lang in p.translations:
            if lang == p.language:
                check.problems.append(
                    f"policy.translations.{lang}: the policy is written in {lang!r} already"
                )
            elif lang not in check.languages:
                check.problems.append(
                    f"policy.translations.{lang}: {lang!r} is not an enabled language "
                    f"({', '.join(check.languages)}); enable it or remove the translation"
                )
    return Policy(
        force=p.force,
        reviewed=p.reviewed,
        checked=p.checked,
        commitment=p.commitment.strip(),
        exception=p.exception.strip(),
        source=p.source,
        language=p.language,
        translations={
            k: {"commitment": t.commitment.strip(), "exception": t.exception.strip()}
            for k, t in p.translations.items()
        },
    )


def _helpline(h: HelplineIn, path: str, check: _Checker) -> Helpline:
    why = phone_problem(h.number, drama_ok=False)
    if why:
        check.problems.append(f"{path}.number {h.number!r} {why}")
    if h.always_open and h.hours is not None:
        check.problems.append(f"{path}.hours: given, but always_open = true")
    if not h.always_open and h.hours is None:
        check.problems.append(f"{path}.hours is required when always_open = false")
    return Helpline(
        id=h.id,
        name=h.name,
        number=h.number,
        free=h.free,
        always_open=h.always_open,
        checked=h.checked,
        hours=check.local(h.hours, f"{path}.hours"),
        website=h.website or "",
        urgent=h.urgent,
        about=check.local(h.about, f"{path}.about"),
    )


def _organisation(
    o: OrganisationIn, path: str, fictional: bool | None, check: _Checker
) -> Organisation:
    if o.phone is not None and fictional is not None:
        why = phone_problem(o.phone, drama_ok=fictional)
        if why:
            check.problems.append(f"{path}.phone {o.phone!r} {why}")
    if o.receives_requests:
        for key in ("contact_within_days", "keeps"):
            if getattr(o, key) is None:
                check.problems.append(
                    f"{path}.{key} is required for an organisation that receives requests"
                )
    else:
        for key in ("contact_within_days", "keeps", "notify_chat_id", "key_fingerprints"):
            if getattr(o, key) is not None:
                check.problems.append(
                    f"{path}.{key}: only for an organisation that receives requests "
                    "(receives_requests = false)"
                )
    return Organisation(
        id=o.id,
        name=o.name,
        description=check.local(o.description, f"{path}.description"),
        phone=o.phone or "",
        website=o.website or "",
        languages=tuple(o.languages),
        receives_requests=o.receives_requests,
        contact_within_days=o.contact_within_days,
        keeps=check.local(o.keeps, f"{path}.keeps"),
        notify_chat_id=o.notify_chat_id,
        key_fingerprints=tuple(dict.fromkeys(o.key_fingerprints or ())),
    )


def _routing(r: RoutingIn, orgs: Sequence[OrganisationIn] | None, check: _Checker) -> None:
    if orgs is None:
        return  # an organisation is broken: its problems are listed already
    receiving = [o.id for o in orgs if o.receives_requests]
    known = [o.id for o in orgs]

    def refuse(path: str, org: str) -> None:
        if org in known:
            why = "does not receive requests (receives_requests = false)"
        else:
            why = f"is not an organisation{_suggest(org, known)}"
        check.problems.append(f"{path} {org!r} {why}")

    if r.default not in receiving:
        refuse("routing.default", r.default)
    for lang, org in r.by_language.items():
        if check.languages is not None and lang not in check.languages:
            check.problems.append(
                f"routing.by_language.{lang}: {lang!r} is not an enabled language "
                f"({', '.join(check.languages)})"
            )
        if org not in receiving:
            refuse(f"routing.by_language.{lang}", org)


def _array(problems: Problems, data: Mapping[str, Any], name: str) -> list[Any] | None:
    value = data.get(name)
    if value is None:
        problems.append(f"[[{name}]] is required but missing")
        return None
    if not isinstance(value, list):
        problems.append(f"{name} must be an array of tables [[{name}]], got {_got(value)['got']}")
        return None
    if not value:
        problems.append(f"[[{name}]] must have at least one entry")
    model = ARRAYS[name]
    return [problems.shape(model, item, f"{name}[{i}]") for i, item in enumerate(value)]


def parse(data: Mapping[str, Any], catalogues: Collection[str] | None = None) -> Deployment:
    """The deployment in `data` (a parsed TOML document), or FlowError listing every problem.

    `catalogues`: the languages that have a catalogue (default: those in locales/)."""
    problems = Problems()
    for key in data:
        if key not in TABLES and key not in ARRAYS:
            problems.append(f"{key}: unknown table{_suggest(key, [*TABLES, *ARRAYS])}")
    tables: dict[str, Any] = {}
    for name, model in TABLES.items():
        if name not in data:
            problems.append(f"[{name}] is required but missing")
        else:
            tables[name] = problems.shape(model, data[name], name)
    dep: DeploymentIn | None = tables.get("deployment")
    policy_in: PolicyIn | None = tables.get("policy")
    retention: RetentionIn | None = tables.get("retention")
    routing: RoutingIn | None = tables.get("routing")
    helplines_in = _array(problems, data, "helplines")
    orgs_in = _array(problems, data, "organisations")

    langs = None
    if dep is not None:
        langs = _languages(
            dep, catalogue_languages() if catalogues is None else catalogues, problems
        )
    check = _Checker(problems, langs)
    policy = _policy(policy_in, check) if policy_in is not None else None
    if retention is not None and retention.closed_days > retention.days:
        problems.append(
            f"retention.closed_days ({retention.closed_days}) must not be over "
            f"retention.days ({retention.days})"
        )
    helplines = []
    if helplines_in is not None:
        valid = [h for h in helplines_in if h is not None]
        check.unique(helplines_in, "helplines")
        helplines = [
            _helpline(h, f"helplines[{i}]", check)
            for i, h in enumerate(helplines_in)
            if h is not None
        ]
        if len(valid) == len(helplines_in) and valid and not any(h.urgent for h in valid):
            problems.append(
                'helplines: none has urgent = true; at least one must show under "I need help now"'
            )
    orgs = []
    whole_orgs = None
    if orgs_in is not None:
        fictional = dep.fictional if dep is not None else None
        orgs = [
            _organisation(o, f"organisations[{i}]", fictional, check)
            for i, o in enumerate(orgs_in)
            if o is not None
        ]
        check.unique(orgs_in, "organisations")
        if all(o is not None for o in orgs_in):
            whole_orgs = [o for o in orgs_in if o is not None]
    if routing is not None:
        _routing(routing, whole_orgs, check)
    if problems:
        raise FlowError(problems)
    assert dep is not None and policy is not None and retention is not None
    assert routing is not None and langs is not None
    return Deployment(
        name=dep.name,
        area=dep.area,
        default_language=dep.default_language,
        languages=tuple(langs),
        policy=policy,
        helplines=tuple(helplines),
        organisations=tuple(orgs),
        default_organisation=routing.default,
        routing_by_language=dict(routing.by_language),
        allow_org_choice=routing.allow_choice,
        retention_days=retention.days,
        closed_retention_days=retention.closed_days,
        fictional=dep.fictional,
        request_signing_keys=tuple(dict.fromkeys(dep.request_signing_keys)),
    )
