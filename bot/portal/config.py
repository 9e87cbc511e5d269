"""The portal's settings, from the environment (read by the composition root and the CLI).

SAFEBOT_PUBLIC_URL            origin of set-up links (default: SAFEBOT_WEBHOOK_URL's origin,
                              else http://SAFEBOT_HOST:SAFEBOT_PORT); https makes cookies Secure
SAFEBOT_PORTAL_IDLE_MINUTES   a session ends after this long without a request (15)
SAFEBOT_PORTAL_SESSION_HOURS  and after this long in any case (8)
SAFEBOT_PORTAL_LEASE_MINUTES  a claim with no recorded action is released after this (30)
SAFEBOT_PORTAL_LANGUAGE       the interface's catalogue in locales/portal (en)
SAFEBOT_BOT_USERNAME          the bot's @username: the campaign pages' links, QR codes and
                              posters (https://t.me/USERNAME?start=...); unset, they offer none
SAFEBOT_PORTAL_KEY            base64 server secret (generated into the data dir): seals TOTP
                              secrets, keys the audit chain, CSRF tokens, hashed codes and
                              the authentication of case notes
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

from bot.config import ConfigError, Settings, _int
from bot.portal import i18n
from storage.keys import KdfParams
from storage.portal import ThrottleRule
from storage.server_secrets import load_or_create

PORTAL_PATH = "/portal"


@dataclass(frozen=True)
class PasswordCost:
    """argon2-cffi PasswordHasher parameters (its defaults: argon2id, 64 MiB, 3 passes)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


@dataclass(frozen=True)
class PortalSettings:
    public_url: str = "http://127.0.0.1:8080"
    idle: dt.timedelta = dt.timedelta(minutes=15)
    absolute: dt.timedelta = dt.timedelta(hours=8)
    lease: dt.timedelta = dt.timedelta(minutes=30)
    setup_link_lifetime: dt.timedelta = dt.timedelta(hours=72)
    throttle: ThrottleRule = field(default_factory=ThrottleRule)
    # Tests pass cheap costs; a real server keeps the defaults.
    kdf: KdfParams = field(default_factory=KdfParams)
    password_cost: PasswordCost = field(default_factory=PasswordCost)
    language: str = "en"  # a catalogue in locales/portal (bot/portal/i18n.py)
    # The bot's @username (bot/config.py checks it), for campaign links; None: not set.
    bot_username: str | None = None

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def setup_url(self, token: str) -> str:
        return f"{self.public_url}{PORTAL_PATH}/setup/{token}"

    def campaign_link(self, payload: str) -> str | None:
        """The Telegram link that opens the bot with `payload`; None without a username."""
        if self.bot_username is None:
            return None
        return f"https://t.me/{self.bot_username}?start={payload}"


def load_portal_settings(
    settings: Settings, env: Mapping[str, str] | None = None
) -> PortalSettings:
    env = os.environ if env is None else env
    public = env.get("SAFEBOT_PUBLIC_URL") or settings.webhook_url or ""
    if public:
        parsed = urlparse(public)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise ConfigError("SAFEBOT_PUBLIC_URL must be a full http(s) URL")
        origin = f"{parsed.scheme}://{parsed.netloc}"
    else:
        origin = f"http://{settings.host}:{settings.port}"
    return PortalSettings(
        public_url=origin,
        idle=dt.timedelta(minutes=_int(env, "SAFEBOT_PORTAL_IDLE_MINUTES", 15)),
        absolute=dt.timedelta(hours=_int(env, "SAFEBOT_PORTAL_SESSION_HOURS", 8)),
        lease=dt.timedelta(minutes=_int(env, "SAFEBOT_PORTAL_LEASE_MINUTES", 30)),
        language=_portal_language(env.get("SAFEBOT_PORTAL_LANGUAGE") or "en"),
        bot_username=settings.bot_username,
    )


def _portal_language(language: str) -> str:
    have = i18n.languages()
    if language not in have:
        raise ConfigError(
            f"SAFEBOT_PORTAL_LANGUAGE {language!r} has no portal catalogue "
            f"(locales/portal has: {', '.join(have) or 'none'})"
        )
    return language


@dataclass(frozen=True)
class PortalSecrets:
    """Sub-keys of the one portal secret, one per purpose, so no two uses share a key."""

    root: bytes = field(repr=False)

    def _sub(self, label: str) -> bytes:
        return hmac.new(self.root, b"safebot-portal:" + label.encode(), hashlib.sha256).digest()

    @property
    def totp(self) -> bytes:
        return self._sub("totp")

    @property
    def audit(self) -> bytes:
        return self._sub("audit")

    @property
    def csrf(self) -> bytes:
        return self._sub("csrf")

    @property
    def codes(self) -> bytes:
        return self._sub("recovery-codes")

    @property
    def advocate_keys(self) -> bytes:
        return self._sub("advocate-keys")

    @property
    def throttle(self) -> bytes:
        return self._sub("throttle")

    @property
    def notes(self) -> bytes:
        """Authenticates case notes (an HMAC inside the sealed note): one written straight
        into the database, by whoever holds only the organisation's public key, is refused."""
        return self._sub("case-notes")


def load_portal_secrets(settings: Settings, env: Mapping[str, str] | None = None) -> PortalSecrets:
    env = os.environ if env is None else env
    given = env.get("SAFEBOT_PORTAL_KEY")
    return PortalSecrets(load_or_create(settings.secret_files, "portal", given))


def have_portal_secrets(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether the portal's secret is at hand (SAFEBOT_PORTAL_KEY, or the file in the
    secrets dir), so that a command run away from the server does not make a new one and take every
    advocate's key for one changed in the database."""
    env = os.environ if env is None else env
    if env.get("SAFEBOT_PORTAL_KEY"):
        return True
    return (settings.secret_files / "portal.key").exists()  # as load_portal_secrets names it
