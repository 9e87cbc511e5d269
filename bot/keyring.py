"""Organisation keys on the server side: register public keys; make demo keys for the
fictional example deployment so that it works out of the box.

The server only ever holds public keys. A demo identity (private key) is written next to the
database solely for the bundled example, with a loud warning: a real deployment generates its
keys with `safebot keys generate` on the organisation's own machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.deployment import Deployment
from storage import queries
from storage.db import transaction
from storage.keys import KdfParams, wrap_private_key, write_identity_file
from storage.models import OrganisationKey
from storage.sealing import RecipientPrivateKey, RecipientPublicKey, generate_keypair

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
    async with transaction(sessions) as session:
        return [
            o.id
            for o in deployment.receiving_organisations
            if await queries.newest_key(session, o.id) is None
        ]


async def ensure_keys(
    sessions: async_sessionmaker[AsyncSession], deployment: Deployment, data_dir: Path
) -> None:
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
