"""Accounts: invite, set up, log in, grant access, remove. The portal's pages and the
`safebot advocates` commands both come here; nothing here knows HTTP.

Argon2 work never runs inside a database transaction: on SQLite every transaction holds the
write lock, and the bot's turns would wait behind a fraction of a second of hashing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.portal import crypto
from bot.portal.config import PortalSecrets, PortalSettings
from bot.portal.i18n import _
from bot.portal.passphrases import passphrase_problem
from bot.portal.state import Viewer
from storage import audit
from storage import portal as q
from storage.db import transaction
from storage.dialect import aware
from storage.errors import KeyUnlockError, SealingError
from storage.keys import unwrap_private_key
from storage.models import Advocate, KeyGrant, OrganisationKey
from storage.org_keys import public_key
from storage.queries import add_org_key
from storage.sealing import RecipientPrivateKey, RecipientPublicKey, public_key_of

log = logging.getLogger("safebot.portal")

LOGIN_RE = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")
Sessions = async_sessionmaker[AsyncSession]
# organisation -> the key fingerprints the deployment pins (None: unpinned, fictional only)
KeyPins = Callable[[str], frozenset[str] | None]


async def record(
    session: AsyncSession,
    secrets: PortalSecrets,
    action: str,
    now: dt.datetime,
    *,
    organisation: str | None,
    actor: str | None = None,
    subject: str | None = None,
    detail: str | None = None,
) -> None:
    await audit.append(
        session,
        secrets.audit,
        action=action,
        now=now,
        organisation=organisation,
        actor=actor,
        subject=subject,
        detail=detail,
    )


# ---- invitations and removal ------------------------------------------------------------------


async def invite(
    sessions: Sessions,
    settings: PortalSettings,
    secrets: PortalSecrets,
    *,
    organisation: str,
    name: str,
    is_admin: bool,
    now: dt.datetime,
    actor: str | None = None,
    role: str = q.ROLE_ADVOCATE,
) -> tuple[Advocate, str]:
    """A new advocate (or outreach worker: `role`) and her one-time set-up link (the only
    time the token exists). ValueError for an unknown role or an outreach admin."""
    link = crypto.token()
    async with transaction(sessions) as session:
        advocate = await q.add_advocate(
            session, organisation=organisation, name=name, is_admin=is_admin, now=now, role=role
        )
        await q.add_setup_link(
            session, advocate.id, crypto.token_hash(link), now, settings.setup_link_lifetime
        )
        await record(
            session,
            secrets,
            "advocate_added",
            now,
            organisation=organisation,
            actor=actor,
            subject=advocate.id,
            detail="admin" if is_admin else (role if role != q.ROLE_ADVOCATE else None),
        )
    return advocate, settings.setup_url(link)


async def remove(
    sessions: Sessions,
    secrets: PortalSecrets,
    advocate_id: str,
    now: dt.datetime,
    *,
    actor: str | None = None,
    organisation: str | None = None,
) -> Advocate | None:
    """Remove at once (sessions, wrapped key, grants); None if there is no such advocate
    (in `organisation`, when given)."""
    async with transaction(sessions) as session:
        advocate = await q.get_advocate(session, advocate_id)
        if advocate is None or (organisation is not None and advocate.organisation != organisation):
            return None
        if not await q.remove_advocate(session, advocate_id, now):
            return None
        await record(
            session,
            secrets,
            "advocate_removed",
            now,
            organisation=advocate.organisation,
            actor=actor,
            subject=advocate_id,
        )
    return advocate


# ---- set-up -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupOffer:
    display_name: str
    organisation: str
    totp_secret: str
    totp_uri: str


async def setup_offer(
    sessions: Sessions, secrets: PortalSecrets, link: str, now: dt.datetime
) -> SetupOffer | None:
    """What the set-up page shows; None for a used, expired or unknown link. The TOTP secret
    is made on the first visit and kept (sealed) with the link until the set-up completes."""
    token_hash = crypto.token_hash(link)
    async with transaction(sessions) as session:
        found = await q.usable_setup_link(session, token_hash, now)
        if found is None:
            return None
        row, advocate = found
        secret = crypto.open_totp(secrets.totp, advocate.id, row.pending_totp)
        if secret is None:
            secret = crypto.new_totp_secret()
            await q.set_pending_totp(
                session, token_hash, crypto.seal_totp(secrets.totp, advocate.id, secret)
            )
    uri = crypto.totp_uri(secret, name=advocate.display_name, organisation=advocate.organisation)
    return SetupOffer(advocate.display_name, advocate.organisation, secret, uri)


@dataclass(frozen=True)
class SetupResult:
    problems: Sequence[str] = ()
    recovery_codes: Sequence[str] = ()
    gone: bool = False  # the link was used or expired meanwhile

    @property
    def ok(self) -> bool:
        return not self.problems and not self.gone


async def complete_setup(
    sessions: Sessions,
    settings: PortalSettings,
    secrets: PortalSecrets,
    link: str,
    *,
    login: str,
    passphrase: str,
    again: str,
    code: str,
    now: dt.datetime,
) -> SetupResult:
    token_hash = crypto.token_hash(link)
    login = login.strip().lower()
    async with transaction(sessions) as session:
        found = await q.usable_setup_link(session, token_hash, now)
        if found is None:
            return SetupResult(gone=True)
        row, advocate = found
        secret = crypto.open_totp(secrets.totp, advocate.id, row.pending_totp)
        taken = await q.login_taken(session, login)
    problems = []
    if not LOGIN_RE.fullmatch(login):
        problems.append(_("Choose a login name of 3 to 40 small letters, digits, dots or dashes."))
    elif taken:
        problems.append(_("That login name is taken. Choose another."))
    if passphrase != again:
        problems.append(_("The two passphrases differ."))
    else:
        why = passphrase_problem(passphrase, [login, advocate.display_name, advocate.organisation])
        if why:
            problems.append(_("The passphrase was refused: {why}.").format(why=why))
    step = None if secret is None else crypto.totp_step(secret, code, now)
    if step is None:
        problems.append(_("The code from the authenticator app is wrong. Scan the code again."))
    if problems:
        return SetupResult(problems=problems)
    assert secret is not None and step is not None
    password_hash, (public, wrapped) = await asyncio.gather(
        asyncio.to_thread(crypto.hash_passphrase, settings.password_cost, passphrase),
        asyncio.to_thread(crypto.new_personal_key, passphrase, advocate.organisation, settings.kdf),
    )
    codes = crypto.new_recovery_codes()
    async with transaction(sessions) as session:
        if not await q.consume_setup_link(session, token_hash, now):
            return SetupResult(gone=True)
        if await q.login_taken(session, login):
            return SetupResult(problems=[_("That login name is taken. Choose another.")])
        await q.complete_setup(
            session,
            advocate.id,
            login=login,
            password_hash=password_hash,
            totp_secret=crypto.seal_totp(secrets.totp, advocate.id, secret),
            totp_step=step,  # the code typed here cannot log in again
            public_key=public.to_text(),
            public_key_mac=public_key_mac(secrets, advocate.id, public.to_text()),
            wrapped_key=wrapped,
            recovery_hashes=[crypto.recovery_hash(secrets.codes, advocate.id, c) for c in codes],
            now=now,
        )
        await record(
            session, secrets, "setup", now, organisation=advocate.organisation, actor=advocate.id
        )
    return SetupResult(recovery_codes=codes)


# ---- login ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    session_token: str | None = None
    advocate_id: str | None = None
    keys: Sequence[RecipientPrivateKey] = field(default_factory=tuple)
    throttled_until: dt.datetime | None = None
    role: str = q.ROLE_ADVOCATE

    @property
    def ok(self) -> bool:
        return self.session_token is not None


async def login(
    sessions: Sessions,
    settings: PortalSettings,
    secrets: PortalSecrets,
    *,
    login_name: str,
    passphrase: str,
    code: str,
    address: str,
    now: dt.datetime,
    pins: KeyPins,
) -> LoginResult:
    login_name = login_name.strip().lower()
    keys_to_throttle = [
        crypto.keyed(secrets.throttle, "account", login_name),
        crypto.keyed(secrets.throttle, "address", address),
    ]
    async with transaction(sessions) as session:
        locked = await q.locked_until(session, keys_to_throttle, now)
        advocate = await q.advocate_by_login(session, login_name)
        if locked is not None:
            await record(
                session,
                secrets,
                "login_failed",
                now,
                organisation=advocate.organisation if advocate else None,
                actor=advocate.id if advocate else None,
                detail="throttled",
            )
            return LoginResult(throttled_until=locked)
    stored = advocate.password_hash if advocate else None
    good = await asyncio.to_thread(
        crypto.passphrase_matches, settings.password_cost, stored, passphrase
    )
    personal = None
    if good and advocate is not None and advocate.wrapped_key is not None:
        try:
            personal = await asyncio.to_thread(
                crypto.unwrap_personal_key, advocate.wrapped_key, passphrase, advocate.organisation
            )
        except KeyUnlockError:
            log.warning("portal login: personal key did not unlock")
    async with transaction(sessions) as session:
        ok = advocate is not None and personal is not None
        if ok:
            assert advocate is not None
            ok = await _second_factor(session, secrets, advocate, code, now)
        if not ok or advocate is None or personal is None:
            for key in keys_to_throttle:
                await q.record_failure(session, key, now, settings.throttle)
            await record(
                session,
                secrets,
                "login_failed",
                now,
                organisation=advocate.organisation if advocate else None,
                actor=advocate.id if advocate else None,
            )
            return LoginResult()
        await q.clear_failures(session, keys_to_throttle[0])
        keys = await _open_grants(session, advocate, personal, pins(advocate.organisation))
        session_token = crypto.token()
        await q.create_session(session, crypto.token_hash(session_token), advocate.id, now)
        await record(
            session,
            secrets,
            "login_ok",
            now,
            organisation=advocate.organisation,
            actor=advocate.id,
            detail="unlocked" if keys else "no_key",
        )
    return LoginResult(
        session_token=session_token, advocate_id=advocate.id, keys=keys, role=advocate.role
    )


async def _second_factor(
    session: AsyncSession, secrets: PortalSecrets, advocate: Advocate, code: str, now: dt.datetime
) -> bool:
    """A TOTP code not used before, or an unused recovery code. Nothing else lets her in."""
    if crypto.looks_like_recovery_code(code):
        code_hash = crypto.recovery_hash(secrets.codes, advocate.id, code)
        return await q.use_recovery_code(session, advocate.id, code_hash, now)
    secret = crypto.open_totp(secrets.totp, advocate.id, advocate.totp_secret)
    step = None if secret is None else crypto.totp_step(secret, code, now)
    return step is not None and await q.accept_totp_step(session, advocate.id, step)


def _allowed(
    registered: OrganisationKey | None, organisation: str, pins: frozenset[str] | None
) -> bool:
    """A key registered for `organisation` and, where the deployment pins keys, pinned: the
    database alone cannot make the portal trust a key of someone else's."""
    if registered is None or registered.organisation != organisation:
        return False
    if pins is None:
        return True
    public = public_key(registered)
    return public is not None and public.fingerprint in pins


async def _open_grants(
    session: AsyncSession,
    advocate: Advocate,
    personal: RecipientPrivateKey,
    pins: frozenset[str] | None,
) -> list[RecipientPrivateKey]:
    grants = await q.grants_of(session, advocate.id)
    if advocate.role != q.ROLE_ADVOCATE:
        # An outreach account never holds a key: a grant row for one was not made here.
        if grants:
            log.error("portal login: key grants for an outreach account ignored")
        return []
    keys = []
    for grant in grants:
        registered = await q.organisation_key(session, grant.key_id)
        if not _allowed(registered, advocate.organisation, pins):
            log.warning("portal login: a key grant names a key that is not allowed")
            continue
        assert registered is not None
        try:
            keys.append(
                crypto.open_grant(
                    grant.envelope,
                    personal,
                    advocate_id=advocate.id,
                    organisation=advocate.organisation,
                    created_at=aware(grant.created_at),
                    registered_public_key=registered.public_key,
                )
            )
        except (SealingError, ValueError, KeyError):
            log.warning("portal login: a key grant did not open (key %s)", grant.key_id)
    return keys


# ---- access to the organisation key -----------------------------------------------------------


class IdentityRefused(Exception):
    """The identity file or its passphrase was refused; the message says why (no secrets)."""


async def unlock_with_identity(
    sessions: Sessions,
    secrets: PortalSecrets,
    advocate: Advocate,
    identity: bytes,
    passphrase: str,
    now: dt.datetime,
    pins: KeyPins,
) -> RecipientPrivateKey:
    """The offline recovery path, and how the first admin gets access: the organisation's
    identity file and its passphrase. The key must be one registered for her organisation;
    it is granted to her own personal key (so her next login unlocks it)."""
    try:
        key = await asyncio.to_thread(
            unwrap_private_key, identity, passphrase.encode(), expected_org=advocate.organisation
        )
    except KeyUnlockError as exc:
        raise IdentityRefused(str(exc)) from None
    async with transaction(sessions) as session:
        registered = await q.organisation_key(session, key.key_id)
        if (
            not _allowed(registered, advocate.organisation, pins(advocate.organisation))
            or registered is None
            or registered.public_key != public_key_of(key).to_text()
        ):
            raise IdentityRefused(
                "this key is not registered for your organisation, or the deployment does "
                "not pin it"
            )
        try:
            await _grant(session, secrets, key, advocate, granted_by=advocate.id, now=now)
        except q.GrantRefused:
            raise IdentityRefused("an outreach account never holds the organisation key") from None
        except KeyRefused:
            raise IdentityRefused(
                "your own key was changed in the database; tell the operator"
            ) from None
        await record(
            session,
            secrets,
            "unlock_identity",
            now,
            organisation=advocate.organisation,
            actor=advocate.id,
            subject=key.key_id,
        )
    return key


def public_key_mac(secrets: PortalSecrets, advocate_id: str, public_key: str) -> str:
    return crypto.keyed(secrets.advocate_keys, f"advocate-key:{advocate_id}", public_key)


def _key_is_hers(secrets: PortalSecrets, advocate: Advocate) -> bool:
    """Her public key is the one made at her set-up, not one written into the database
    since (which would let whoever wrote it open the grant)."""
    if not advocate.public_key or not advocate.public_key_mac:
        return False
    expected = public_key_mac(secrets, advocate.id, advocate.public_key)
    return hmac.compare_digest(expected, advocate.public_key_mac)


class KeyRefused(Exception):
    """An advocate's public key does not carry the server's MAC: never grant to it."""


async def _grant(
    session: AsyncSession,
    secrets: PortalSecrets,
    key: RecipientPrivateKey,
    to: Advocate,
    *,
    granted_by: str,
    now: dt.datetime,
) -> None:
    if to.role != q.ROLE_ADVOCATE:
        log.error("portal: refused to grant a key to an outreach account")
        raise q.GrantRefused("no key grant for an outreach account")
    if not _key_is_hers(secrets, to):
        log.error("portal: refused to grant to an advocate key that was changed in the database")
        raise KeyRefused
    assert to.public_key is not None
    created = now.astimezone(dt.UTC)
    envelope = crypto.seal_grant(
        key,
        RecipientPublicKey.from_text(to.public_key),
        advocate_id=to.id,
        organisation=to.organisation,
        created_at=created,
    )
    await q.add_grant(
        session,
        KeyGrant(
            advocate_id=to.id,
            key_id=key.key_id,
            envelope=envelope,
            granted_by=granted_by,
            created_at=created,
        ),
    )


async def grant_access(
    sessions: Sessions,
    secrets: PortalSecrets,
    admin: Advocate,
    keys: Sequence[RecipientPrivateKey],
    advocate_id: str,
    now: dt.datetime,
) -> bool:
    """An admin's unlocked session seals the organisation keys it holds to a colleague's
    personal public key. False if she is not an active, set-up colleague (or the session
    holds no key); q.GrantRefused if she is an outreach worker, who never gets access."""
    async with transaction(sessions) as session:
        target = await q.active_advocate(session, advocate_id)
        if target is None or target.organisation != admin.organisation or not target.public_key:
            return False
        if target.role != q.ROLE_ADVOCATE:
            log.warning("portal: refused to grant access to an outreach account")
            raise q.GrantRefused("no key grant for an outreach account")
        if not keys:
            return False
        if not _key_is_hers(secrets, target):
            log.error("portal: refused to grant to an advocate key changed in the database")
            return False
        for key in keys:
            await _grant(session, secrets, key, target, granted_by=admin.id, now=now)
        await record(
            session,
            secrets,
            "grant",
            now,
            organisation=admin.organisation,
            actor=admin.id,
            subject=target.id,
        )
    return True


ROTATE_ACTION = "key_rotate"
CLI_ACTOR = "cli"  # the audit log's actor (and a grant's granted_by) for `safebot` commands


@dataclass(frozen=True)
class Rotation:
    """What `rotate_key` did: who got the new key, who was refused, who was left out."""

    granted: Sequence[Advocate]
    # Her public key does not carry the portal key's MAC (changed in the database, or this is
    # not the server's portal key): no grant.
    refused: Sequence[Advocate]
    # Set up but never given access by an admin: rotating does not give it either.
    without_access: Sequence[Advocate]


async def rotate_key(
    sessions: Sessions,
    secrets: PortalSecrets,
    key: RecipientPrivateKey,
    organisation: str,
    now: dt.datetime,
    *,
    actor: str = CLI_ACTOR,
) -> Rotation:
    """A key rotation, in one transaction: register `key`'s public key for `organisation`
    (the deployment's pins decide when it becomes the one new requests go to) and seal `key`
    to the personal key of every advocate who has access now (set up, not removed, holding a
    grant), as an admin's grant does. No passphrase is needed: only their public keys. Their
    grants for the older keys stay, so earlier requests still open."""
    public = public_key_of(key)
    created = now.astimezone(dt.UTC)
    async with transaction(sessions) as session:
        await add_org_key(
            session,
            OrganisationKey(
                key_id=key.key_id,
                organisation=organisation,
                suite=key.suite,
                public_key=public.to_text(),
                created_at=created,
                active=True,
            ),
        )
        with_access = await q.granted_advocates(session, organisation)
        granted: list[Advocate] = []
        refused: list[Advocate] = []
        left_out: list[Advocate] = []
        for advocate in await q.list_advocates(session, organisation):
            if advocate.set_up_at is None or not advocate.public_key:
                continue  # invited only: an admin grants access after she sets up
            if advocate.role != q.ROLE_ADVOCATE:
                continue  # an outreach account never holds a key
            if advocate.id not in with_access:
                left_out.append(advocate)
            elif not _key_is_hers(secrets, advocate):
                refused.append(advocate)
            else:
                await _grant(session, secrets, key, advocate, granted_by=actor, now=created)
                granted.append(advocate)
        await record(
            session,
            secrets,
            ROTATE_ACTION,
            created,
            organisation=organisation,
            actor=actor,
            subject=key.key_id,
            detail=f"granted {len(granted)}, refused {len(refused)}",
        )
    return Rotation(granted, refused, left_out)


async def logout(
    sessions: Sessions, secrets: PortalSecrets, viewer: Viewer, now: dt.datetime
) -> None:
    async with transaction(sessions) as session:
        await q.delete_session(session, viewer.session_hash)
        await record(
            session,
            secrets,
            "logout",
            now,
            organisation=viewer.advocate.organisation,
            actor=viewer.advocate.id,
        )
