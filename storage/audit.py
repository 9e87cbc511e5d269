"""The portal's audit log: an append-only, hash-chained record of who did what, and when.

Rules:
1. An entry names an advocate id, an action, a request id or advocate id as its subject and a
   short code as its detail: never a name, a phone number or anything a victim typed.
2. Entry n stores `prev_hash` (entry n-1's hash; 64 zeros for the first) and `entry_hash`,
   an HMAC-SHA256 under the server's audit key over `prev_hash` and the entry's content, so
   an entry altered, inserted or deleted in the middle breaks the chain. The key lives outside
   the database: whoever can only write to the database cannot recompute the chain. (Cutting
   entries off the end leaves a valid, shorter chain: `verify` prints the count and the head
   hash so an operator can keep them elsewhere.)
3. Appends are serialised (a PostgreSQL advisory lock; SQLite's write lock) and `seq` is the
   primary key, so two processes never fork the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import xact_lock
from storage.models import AuditEntry

GENESIS = "0" * 64
AUDIT_LOCK = 0x5AFEB09


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def entry_digest(key: bytes, entry: AuditEntry) -> str:
    content = json.dumps(
        [
            entry.seq,
            _utc(entry.at).isoformat(timespec="microseconds"),
            entry.organisation,
            entry.actor,
            entry.action,
            entry.subject,
            entry.detail,
            entry.prev_hash,
        ],
        separators=(",", ":"),
    )
    return hmac.new(key, b"audit:" + content.encode(), hashlib.sha256).hexdigest()


async def append(
    session: AsyncSession,
    key: bytes,
    *,
    action: str,
    now: dt.datetime,
    organisation: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction (it commits with what it records)."""
    await xact_lock(session, AUDIT_LOCK)
    last = await session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    entry = AuditEntry(
        seq=1 if last is None else last.seq + 1,
        # Stored at microsecond precision in UTC, so the digest reads back the same.
        at=_utc(now),
        organisation=organisation,
        actor=actor,
        action=action,
        subject=subject,
        detail=detail,
        prev_hash=GENESIS if last is None else last.entry_hash,
    )
    entry.entry_hash = entry_digest(key, entry)
    session.add(entry)
    await session.flush()
    return entry


def check_chain(key: bytes, entries: Sequence[AuditEntry]) -> ChainReport:
    """Every problem in the chain (entries in `seq` order), each naming the entry's seq."""
    problems: list[str] = []
    prev, expected_seq = GENESIS, 1
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.seq} does not follow the entry before it")
        if not hmac.compare_digest(entry.entry_hash, entry_digest(key, entry)):
            problems.append(f"entry {entry.seq} was altered")
        prev, expected_seq = entry.entry_hash, entry.seq + 1
    return ChainReport(entries=len(entries), head=prev, problems=tuple(problems))


async def verify(session: AsyncSession, key: bytes) -> ChainReport:
    entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    return check_chain(key, entries)


async def for_organisation(
    session: AsyncSession, organisation: str, limit: int = 200
) -> Sequence[AuditEntry]:
    """The organisation's newest entries first (what its admins may see)."""
    result = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.organisation == organisation)
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    )
    return result.all()
