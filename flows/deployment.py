"""A deployment's content: the force, its policy wording, organisations, helplines, languages.

Pure data, parsed from the deployment TOML (`bot/config.py` reads the file). Policy wording is
the force's own, quoted with the date it was last reviewed: the bot never paraphrases the
exception into something narrower or broader than the force wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    # Who it is for, per language, when the name alone does not say it in her language (the
    # name is the service's own, English, as it answers the phone).
    about: LocalText = field(default_factory=dict)


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
    # SHA-256 fingerprints (hex) of the keys requests may be sealed to: the database alone
    # cannot add a key. Empty: unpinned, which only a fictional deployment accepts.
    key_fingerprints: tuple[str, ...] = ()


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
    # The bot's request-signing public keys (`safebot-sig1:...`), for checking requests away
    # from the server (the export); empty: the server's own key is used where it is at hand.
    request_signing_keys: tuple[str, ...] = ()

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

    def key_pins(self, org_id: str) -> frozenset[str] | None:
        """The fingerprints a request for `org_id` may be sealed to; None (any registered
        key) only for an unpinned organisation of a fictional deployment."""
        pins = self.organisation(org_id).key_fingerprints
        if not pins and self.fictional:
            return None
        return frozenset(pins)

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


def parse_deployment(
    data: Mapping[str, Any], catalogues: Collection[str] | None = None
) -> Deployment:
    """The deployment in a parsed TOML document, checked against its schema; FlowError lists
    every problem. `catalogues`: languages with a catalogue (default: those in locales/)."""
    # Imported here: pydantic is needed once, at start-up, never by the engine.
    from flows.deployment_schema import parse

    return parse(data, catalogues)
