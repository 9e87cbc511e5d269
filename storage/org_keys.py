"""Which organisation key a new request is sealed to, and revoking keys.

The database holds the organisations' public keys, but it is not trusted to choose one:
whoever can write to it could insert a key of their own. A deployment pins the fingerprints
(SHA-256 of the public key, `RecipientPublicKey.fingerprint`) of each organisation's keys,
and a request is sealed only to the newest active key whose fingerprint is pinned. `pinned`
is None only where the deployment allows unpinned keys (a fictional one, with demo keys):
then the newest active key is used, as before pinning.

Revoking a key clears `active`: it is never sealed to again, and the requests sealed to it
still open with its identity file (opening never looks at this table).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import SealingError
from storage.models import OrganisationKey
from storage.sealing import RecipientPublicKey


@dataclass(frozen=True)
class KeyInfo:
    """A registered key as `keys list` shows it."""

    row: OrganisationKey
    # None: its public key text does not parse (a damaged or hostile row).
    fingerprint: str | None
    # None: the deployment does not pin this organisation's keys (fictional only).
    pinned: bool | None
    # The key new requests of its organisation go to.
    current: bool


def public_key(row: OrganisationKey) -> RecipientPublicKey | None:
    """The row's public key, or None when it is damaged or disagrees with its own key id."""
    try:
        key = RecipientPublicKey.from_text(row.public_key)
    except SealingError:
        return None
    return key if key.key_id == row.key_id and key.suite == row.suite else None


async def active_keys(session: AsyncSession, organisation: str) -> Sequence[OrganisationKey]:
    """Newest first (the order the old `newest_key` used, ties by key id)."""
    result = await session.scalars(
        select(OrganisationKey)
        .where(OrganisationKey.organisation == organisation, OrganisationKey.active.is_(True))
        .order_by(OrganisationKey.created_at.desc(), OrganisationKey.key_id)
    )
    return result.all()


def choose(
    rows: Sequence[OrganisationKey], pinned: Collection[str] | None
) -> OrganisationKey | None:
    """The first (newest) usable row: parseable and, where pins apply, pinned."""
    for row in rows:
        key = public_key(row)
        if key is not None and (pinned is None or key.fingerprint in pinned):
            return row
    return None


async def recipient(
    session: AsyncSession, organisation: str, pinned: Collection[str] | None
) -> RecipientPublicKey | None:
    """The key a new request for `organisation` is sealed to, or None if there is none."""
    row = choose(await active_keys(session, organisation), pinned)
    return None if row is None else public_key(row)


async def describe(
    session: AsyncSession, pins: Mapping[str, Collection[str] | None]
) -> list[KeyInfo]:
    """Every registered key, by organisation then age; `pins`: organisation -> its pins."""
    rows = (
        await session.scalars(
            select(OrganisationKey).order_by(
                OrganisationKey.organisation, OrganisationKey.created_at
            )
        )
    ).all()
    current: dict[str, str | None] = {}
    for org in {r.organisation for r in rows}:
        active = sorted(
            (r for r in rows if r.organisation == org and r.active),
            key=lambda r: (-r.created_at.timestamp(), r.key_id),
        )
        chosen = choose(active, pins.get(org))
        current[org] = None if chosen is None else chosen.key_id
    out = []
    for row in rows:
        key = public_key(row)
        org_pins = pins.get(row.organisation)
        fingerprint = None if key is None else key.fingerprint
        pinned = None if org_pins is None else fingerprint in org_pins
        out.append(KeyInfo(row, fingerprint, pinned, current.get(row.organisation) == row.key_id))
    return out


async def revoke(session: AsyncSession, key_id: str) -> OrganisationKey | None:
    """Never seal to `key_id` again; None if no such key is registered."""
    row = await session.get(OrganisationKey, key_id)
    if row is not None:
        row.active = False
        await session.flush()
    return row
