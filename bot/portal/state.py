"""What every portal page needs, built once by the composition root (no globals)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.portal.config import PortalSecrets, PortalSettings
from bot.portal.keystore import KeyStore
from flows.definition import Flow
from flows.deployment import Deployment
from flows.i18n import Catalogs
from storage.models import Advocate
from storage.portal import ROLE_ADVOCATE
from storage.sealing import RecipientPrivateKey
from storage.signing import VerifyKey


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Portal:
    sessions: async_sessionmaker[AsyncSession]
    settings: PortalSettings
    secrets: PortalSecrets
    flow: Flow
    deployment: Deployment
    # Whose signature makes a request genuine: never from the database (bot/keyring.py).
    verify_keys: Sequence[VerifyKey] = ()
    keys: KeyStore = field(default_factory=KeyStore)
    # A set-up link made by an admin, shown once on the page the POST redirects to (so that
    # reloading that page does not invite the same person twice), by session.
    new_links: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Tests move time on; everything in the portal asks this for "now".
    clock: Callable[[], dt.datetime] = utc_now
    # The bot's catalogues, for the words on a campaign's posters (bot/app.py passes the
    # bot's own; None: loaded on first use).
    catalogs: Catalogs | None = None
    # Posters rendered at once (each takes about a second of one core).
    poster_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


@dataclass(frozen=True)
class Viewer:
    """The advocate behind a live session, and the keys that session unlocked here."""

    advocate: Advocate
    session_hash: str
    session_token: str
    keys: Mapping[str, RecipientPrivateKey]

    # What a role opens (docs: README, "Outreach role and campaign pages"). An outreach
    # worker sees the campaigns and their suppressed counts only: never a request, a key, the
    # team or the audit log. An admin sees everything of her organisation, campaigns
    # included. An advocate works requests and does not see the campaigns.

    @property
    def is_outreach(self) -> bool:
        """Confined to the campaigns: an outreach worker, or a role the portal does not know
        (a changed row fails closed, away from the requests)."""
        return self.advocate.role != ROLE_ADVOCATE

    @property
    def is_admin(self) -> bool:
        """An admin of her organisation (an outreach account never is, whatever the row says)."""
        return self.advocate.is_admin and not self.is_outreach

    @property
    def sees_campaigns(self) -> bool:
        return self.is_outreach or self.is_admin

    @property
    def home(self) -> str:
        """Where she lands after login (a path under the portal)."""
        return "/campaigns" if self.is_outreach else "/inbox"


PORTAL: web.AppKey[Portal] = web.AppKey("portal", Portal)
