"""Organisation keys on the server side: register public keys; check that every receiving
organisation has a pinned key; make demo keys for the fictional example deployment so that it
works out of the box; the request-signing keys that verify requests.

The server only ever holds public keys. A demo identity (private key) is written next to the
database solely for the bundled example, with a loud warning: a real deployment generates its
keys with `safebot keys generate` on the organisation's own machine, and pins their
fingerprints in the deployment file, so that the database alone cannot add a key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.deployment import Deployment
from storage import org_keys, queries
from storage.db import transaction
from storage.errors import SealingError
from storage.keys import KdfParams, wrap_private_key, write_identity_file
from storage.models import OrganisationKey
from storage.sealing import RecipientPrivateKey, RecipientPublicKey, generate_keypair
from storage.signing import SigningKey, VerifyKey

log = logging.getLogger("safebot.keys")


async def register_public_key(
    sessions: async_sessionmaker[AsyncSession], org: str, public: RecipientPublicKey
) -> None:
    async with transaction(sessions) as session:
        await queries.add_org_key(
            session,
            OrganisationKey(
                key_id=public.key_id,
                organisation=org,
                suite=public.suite,
                public_key=public.to_text(),
                created_at=dt.datetime.now(dt.UTC),
                active=True,
            ),
        )


async def create_identity(
    org: str, out: Path, passphrase: bytes, params: KdfParams | None = None
) -> tuple[RecipientPrivateKey, RecipientPublicKey]:
    private, public = generate_keypair()
    # Argon2id takes tens of MiB and a fraction of a second: keep it off the event loop.
    data = await asyncio.to_thread(
        wrap_private_key, private, passphrase, org=org, params=params or KdfParams()
    )
    write_identity_file(out, data)
    return private, public


async def missing_keys(
    sessions: async_sessionmaker[AsyncSession], deployment: Deployment
) -> list[str]:
    """Receiving organisations with no key a new request could be sealed to (none active,
    or none of the active ones pinned where pins apply)."""
    async with transaction(sessions) as session:
        return [
            o.id
            for o in deployment.receiving_organisations
            if await org_keys.recipient(session, o.id, deployment.key_pins(o.id)) is None
        ]


def no_key_line(missing: Sequence[str]) -> str:
    """One line: which organisations have no active key, and the command that fixes it."""
    return "; ".join(
        f"organisation {org!r} has no active key, so its requests could not be sealed: run "
        f"`safebot keys generate --org {org} --out {org}.identity` on the organisation's "
        "machine, with this DATABASE_URL"
        for org in missing
    )


def unpinned_line(org: str) -> str:
    return (
        f"organisation {org!r} has no active key pinned in the deployment, so its requests "
        f"could not be sealed: add the fingerprint `safebot keys list` shows to its "
        f"[[organisations]] key_fingerprints, or run `safebot keys generate --org {org}`"
    )


def signing_line(signer: VerifyKey) -> str:
    return (
        f"the bot's request-signing key {signer.signer_id} is not in [deployment] "
        "request_signing_keys, so its requests would be reported as forged: add "
        f'"{signer.to_text()}" (or set SAFEBOT_SIGNING_KEY to the pinned key)'
    )


async def key_problems(
    sessions: async_sessionmaker[AsyncSession],
    deployment: Deployment,
    signer: VerifyKey | None = None,
) -> list[str]:
    """Why requests could not be sealed, or would not verify: a real deployment does not start
    with any, and `safebot check` lists them. `signer`: the bot's signing key, if known."""
    problems = []
    async with transaction(sessions) as session:
        for org in deployment.receiving_organisations:
            active = await org_keys.active_keys(session, org.id)
            if org_keys.choose(active, deployment.key_pins(org.id)) is not None:
                continue
            usable = org_keys.choose(active, None) is not None
            problems.append(unpinned_line(org.id) if usable else no_key_line([org.id]))
    pinned = deployment.request_signing_keys
    if signer is not None and pinned and signer.to_text() not in pinned:
        problems.append(signing_line(signer))
    return problems


async def key_warnings(
    sessions: async_sessionmaker[AsyncSession], deployment: Deployment, signer: VerifyKey
) -> list[str]:
    """What is allowed but worth saying at start: unpinned organisations (fictional only),
    registered keys that are not pinned (never sealed to), no pinned signing key."""
    warnings = []
    async with transaction(sessions) as session:
        for org in deployment.receiving_organisations:
            pins = deployment.key_pins(org.id)
            if pins is None:
                warnings.append(
                    f"organisation {org.id} pins no key (key_fingerprints): new requests go to "
                    "its newest key in the database; only a fictional deployment allows this"
                )
                continue
            for row in await org_keys.active_keys(session, org.id):
                key = org_keys.public_key(row)
                if key is None or key.fingerprint not in pins:
                    warnings.append(
                        f"key {row.key_id} of {org.id} is registered but not pinned in the "
                        "deployment: no request is sealed to it (pin it, or `safebot keys "
                        "revoke` it)"
                    )
    if not deployment.request_signing_keys and not deployment.fictional:
        warnings.append(
            "no request_signing_keys in [deployment]: an export made away from this server "
            f'cannot check who wrote a request; pin ["{signer.to_text()}"]'
        )
    return warnings


def trusted_signers(deployment: Deployment, local: SigningKey | None) -> list[VerifyKey]:
    """The keys a request's signature is checked against, never from the database: those the
    deployment pins, else the server's own signing key where it is at hand."""
    if deployment.request_signing_keys:
        try:
            return [VerifyKey.from_text(text) for text in deployment.request_signing_keys]
        except SealingError as exc:
            raise SealingError(f"[deployment] request_signing_keys: {exc}") from None
    return [] if local is None else [local.verify_key]


async def ensure_keys(
    sessions: async_sessionmaker[AsyncSession],
    deployment: Deployment,
    data_dir: Path,
    signer: VerifyKey | None = None,
) -> None:
    if signer is not None:
        for warning in await key_warnings(sessions, deployment, signer):
            log.warning("%s", warning)
    missing = await missing_keys(sessions, deployment)
    if not missing:
        return
    if not deployment.fictional:
        for org in missing:
            log.error(
                "organisation %s has no key: its requests cannot be stored until you run "
                "`safebot keys generate --org %s --out FILE`",
                org,
                org,
            )
        return
    folder = data_dir / "demo-identities"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pass_file = folder / "passphrase.txt"
    if not pass_file.exists():
        write_identity_file(pass_file, secrets.token_urlsafe(24).encode() + b"\n")
    passphrase = pass_file.read_bytes().strip()
    for org in missing:
        if deployment.key_pins(org) is not None:
            log.error("organisation %s pins keys the database does not have", org)
            continue  # a demo key would not be pinned either
        out = folder / f"{org}.identity"
        if out.exists():
            out.unlink()  # its public key is not registered: a leftover from a lost database
        _, public = await create_identity(org, out, passphrase)
        await register_public_key(sessions, org, public)
        log.warning(
            "EXAMPLE DEPLOYMENT: generated a demo key for %s in %s; never use demo keys for a "
            "real service",
            org,
            folder,
        )
