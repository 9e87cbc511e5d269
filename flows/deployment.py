"""A deployment's content: the force, its policy wording, organisations, helplines, languages.

Pure data, parsed from the deployment TOML (`bot/config.py` reads the file). Policy wording is
the force's own, quoted with the date it was last reviewed: the bot never paraphrases the
exception into something narrower or broader than the force wrote.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.errors import FlowError


# Victim-facing text the deployment writes itself: language code -> text. The checks require
# one for every enabled language, so a screen never shows English as if it were her language.
LocalText = Mapping[str, str]


def local(texts: LocalText, language: str, fallback: str) -> str:
    """`texts` in `language`, else in `fallback` (the deployment's default language)."""
    return texts.get(language) or texts.get(fallback) or ""


@dataclass(frozen=True)
class Helpline:
    id: str
    name: str
    number: str
    free: bool
    always_open: bool
    # The date the deployment last checked the number and the hours.
    checked: str
    # Opening hours, per language; required unless always_open.
    hours: LocalText = field(default_factory=dict)
    website: str = ""
    # "now" puts it under "I need help now"; every helpline shows under "Specialist support"
    urgent: bool = False


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    description: LocalText = field(default_factory=dict)
    phone: str = ""
    website: str = ""
    languages: tuple[str, ...] = ()
    receives_requests: bool = False
    # For organisations that receive requests (required there): how soon they try to make
    # contact, in working days, and what they keep of a request and for how long.
    contact_within_days: int | None = None
    keeps: LocalText = field(default_factory=dict)
    # A Telegram group for neutral "new request" notices; never gets personal data.
    notify_chat_id: int | None = None


@dataclass(frozen=True)
class Policy:
    force: str
    # The date the force last reviewed its wording (the force's date) ...
    reviewed: str
    # ... and the date this deployment last checked that wording against the force's source.
    checked: str
    commitment: str
    exception: str
    source: str = ""
    # The language the force wrote it in; every other enabled language needs a translation.
    language: str = "en"
    # Unofficial translations of the quoted wording: language -> {"commitment", "exception"}.
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    name: str
    area: str
    default_language: str
    languages: tuple[str, ...]
    policy: Policy
    helplines: tuple[Helpline, ...]
    organisations: tuple[Organisation, ...]
    default_organisation: str
    routing_by_language: Mapping[str, str] = field(default_factory=dict)
    allow_org_choice: bool = False
    retention_days: int = 30
    closed_retention_days: int = 7
    fictional: bool = False

    def organisation(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)

    def text(self, texts: LocalText, language: str) -> str:
        return local(texts, language, self.default_language)

    @property
    def receiving_organisations(self) -> tuple[Organisation, ...]:
        return tuple(o for o in self.organisations if o.receives_requests)

    def route(self, language: str, chosen: str | None) -> str:
        """Which organisation receives a request: the victim's choice where allowed, else by
        language, else the default."""
        receiving = {o.id for o in self.receiving_organisations}
        if self.allow_org_choice and chosen in receiving:
            return str(chosen)
        by_lang = self.routing_by_language.get(language)
        if by_lang in receiving:
            return str(by_lang)
        return self.default_organisation


def parse_deployment(data: Mapping[str, Any]) -> Deployment:
    problems: list[str] = []
    d = data.get("deployment", {})
    p = data.get("policy", {})
    for key in ("force", "reviewed", "commitment", "exception"):
        if not p.get(key):
            problems.append(f"[policy] needs {key!r}")
    reviewed = str(p.get("reviewed", ""))
    try:
        dt.date.fromisoformat(reviewed)
    except ValueError:
        problems.append("[policy] reviewed must be a date (YYYY-MM-DD)")
    languages = tuple(str(x) for x in d.get("languages", ["en"]))
    default_language = str(d.get("default_language", languages[0] if languages else "en"))
    if default_language not in languages:
        problems.append(f"default_language {default_language!r} is not in languages")

    helplines = []
    for h in data.get("helplines", []):
        try:
            helplines.append(
                Helpline(
                    id=str(h["id"]),
                    name=str(h["name"]),
                    number=str(h["number"]),
                    free=bool(h.get("free", True)),
                    always_open=bool(h.get("always_open", False)),
                    hours=_local(h.get("hours", {})),
                    website=str(h.get("website", "")),
                    checked=str(h.get("checked", "")),
                    urgent=bool(h.get("urgent", False)),
                )
            )
        except KeyError as exc:
            problems.append(f"a helpline is missing {exc.args[0]!r}")
    orgs = []
    for o in data.get("organisations", []):
        try:
            orgs.append(
                Organisation(
                    id=str(o["id"]),
                    name=str(o["name"]),
                    description=_local(o.get("description", {})),
                    phone=str(o.get("phone", "")),
                    website=str(o.get("website", "")),
                    languages=tuple(o.get("languages", [])),
                    receives_requests=bool(o.get("receives_requests", False)),
                    contact_within_days=o.get("contact_within_days"),
                    keeps=_local(o.get("keeps", {})),
                    notify_chat_id=o.get("notify_chat_id"),
                )
            )
        except KeyError as exc:
            problems.append(f"an organisation is missing {exc.args[0]!r}")
    ids = [o.id for o in orgs]
    if len(ids) != len(set(ids)):
        problems.append("organisation ids must be unique")
    for o in orgs:
        if len(o.id.encode()) > 40 or not o.id.replace("-", "").replace("_", "").isalnum():
            problems.append(f"organisation id {o.id!r}: use up to 40 letters, digits, - or _")
    routing = data.get("routing", {})
    default_org = str(routing.get("default", ""))
    receiving = {o.id for o in orgs if o.receives_requests}
    if default_org not in receiving:
        problems.append(
            f"[routing] default {default_org!r} is not an organisation that receives requests"
        )
    by_language = {str(k): str(v) for k, v in routing.get("by_language", {}).items()}
    for lang, org in by_language.items():
        if org not in receiving:
            problems.append(f"[routing.by_language] {lang} -> {org!r} does not receive requests")
    retention = data.get("retention", {})
    if problems:
        raise FlowError(problems)
    return Deployment(
        name=str(d.get("name", "safebot")),
        area=str(d.get("area", "")),
        default_language=default_language,
        languages=languages,
        policy=Policy(
            force=str(p["force"]),
            reviewed=reviewed,
            checked=str(p.get("checked", reviewed)),
            language=str(p.get("language", "en")),
            commitment=str(p["commitment"]).strip(),
            exception=str(p["exception"]).strip(),
            source=str(p.get("source", "")),
            translations={str(k): dict(v) for k, v in p.get("translations", {}).items()},
        ),
        helplines=tuple(helplines),
        organisations=tuple(orgs),
        default_organisation=default_org,
        routing_by_language=by_language,
        allow_org_choice=bool(routing.get("allow_choice", False)),
        retention_days=int(retention.get("days", 30)),
        closed_retention_days=int(retention.get("closed_days", 7)),
        fictional=bool(d.get("fictional", False)),
    )


def _local(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"en": value} if value else {}
    return {str(k): str(v) for k, v in dict(value).items()}
