"""What every portal page needs, built once by the composition root (no globals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.portal.config import PortalSecrets, PortalSettings
from bot.portal.keystore import KeyStore
from flows.definition import Flow
from flows.deployment import Deployment
from storage.models import Advocate
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


@dataclass(frozen=True)
class Viewer:
    """The advocate behind a live session, and the keys that session unlocked here."""

    advocate: Advocate
    session_hash: str
    session_token: str
    keys: Mapping[str, RecipientPrivateKey]


PORTAL: web.AppKey[Portal] = web.AppKey("portal", Portal)
