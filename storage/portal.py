"""Queries for the advocates' portal: accounts, set-up links, sessions, throttling, key grants
and the work on requests (leases, outcomes and sealed case notes). Plain async functions on an
`AsyncSession`; the caller owns the transaction. Nothing here sees a key, a passphrase or a
note in the clear: the callers pass hashes and sealed blobs.

Conditional updates (`... WHERE used_at IS NULL`, `... WHERE totp_last_step < :step`,
`... WHERE holder_id IS NULL OR lease_until <= :now`) make "once only" and "one holder at a
time" hold across processes without locks of our own.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from flows.kinds import RequestStatus
from storage.dialect import aware, insert_or_ignore
from storage.models import (
    Advocate,
    AdvocateSession,
    CaseNote,
    ContactRequest,
    KeyGrant,
    LoginThrottle,
    OrganisationKey,
    RecoveryCode,
    RequestWork,
    SetupLink,
)


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# ---- accounts ---------------------------------------------------------------------------------

# Advocate.role: "advocate" works requests (an admin is an advocate with is_admin); "outreach"
# sees campaigns and their suppressed counts only, and never holds a key grant.
ROLE_ADVOCATE = "advocate"
ROLE_OUTREACH = "outreach"
ROLES = (ROLE_ADVOCATE, ROLE_OUTREACH)


class GrantRefused(ValueError):
    """A key grant for someone who may not hold one (an outreach account, or no one)."""


async def add_advocate(
    session: AsyncSession,
    *,
    organisation: str,
    name: str,
    is_admin: bool,
    now: dt.datetime,
    role: str = ROLE_ADVOCATE,
) -> Advocate:
    if role not in ROLES:
        raise ValueError(f"not a role: {role!r}")
    if role == ROLE_OUTREACH and is_admin:
        raise ValueError("an outreach account cannot be an admin")
    advocate = Advocate(
        id=secrets.token_hex(8),
        organisation=organisation,
        display_name=name,
        is_admin=is_admin,
        role=role,
        totp_last_step=0,
        created_at=now,
    )
    session.add(advocate)
    await session.flush()
    return advocate


async def get_advocate(session: AsyncSession, advocate_id: str) -> Advocate | None:
    return await session.get(Advocate, advocate_id)


async def active_advocate(session: AsyncSession, advocate_id: str) -> Advocate | None:
    """The advocate if she exists, has set up her account and was not removed."""
    row = await session.get(Advocate, advocate_id, populate_existing=True)
    if row is None or row.removed_at is not None or row.set_up_at is None:
        return None
    return row


async def advocate_by_login(session: AsyncSession, login: str) -> Advocate | None:
    return await session.scalar(
        select(Advocate).where(
            Advocate.login == login,
            Advocate.removed_at.is_(None),
            Advocate.set_up_at.is_not(None),
        )
    )


async def login_taken(session: AsyncSession, login: str) -> bool:
    return await session.scalar(select(Advocate.id).where(Advocate.login == login)) is not None


async def list_advocates(
    session: AsyncSession, organisation: str | None = None, *, removed: bool = False
) -> Sequence[Advocate]:
    stmt = select(Advocate).order_by(Advocate.organisation, Advocate.created_at)
    if organisation is not None:
        stmt = stmt.where(Advocate.organisation == organisation)
    if not removed:
        stmt = stmt.where(Advocate.removed_at.is_(None))
    return (await session.scalars(stmt)).all()


async def remove_advocate(session: AsyncSession, advocate_id: str, now: dt.datetime) -> bool:
    """Remove at once: her sessions, her wrapped keys and grants, her set-up links and recovery
    codes go; requests she held are released. The row stays (without secrets) so the audit
    log and the inbox can still say who did what."""
    result = await session.execute(
        update(Advocate)
        .where(Advocate.id == advocate_id, Advocate.removed_at.is_(None))
        .values(
            removed_at=now,
            login=None,
            password_hash=None,
            totp_secret=None,
            public_key=None,
            public_key_mac=None,
            wrapped_key=None,
        )
    )
    if not _rows(result):
        return False
    for model in (AdvocateSession, KeyGrant, RecoveryCode, SetupLink):
        await session.execute(delete(model).where(model.advocate_id == advocate_id))
    await session.execute(
        update(RequestWork)
        .where(RequestWork.holder_id == advocate_id)
        .values(holder_id=None, lease_until=None, updated_at=now)
    )
    return True


async def complete_setup(
    session: AsyncSession,
    advocate_id: str,
    *,
    login: str,
    password_hash: str,
    totp_secret: bytes,
    totp_step: int,
    public_key: str,
    public_key_mac: str,
    wrapped_key: bytes,
    recovery_hashes: Sequence[str],
    now: dt.datetime,
) -> None:
    await session.execute(
        update(Advocate)
        .where(Advocate.id == advocate_id)
        .values(
            login=login,
            password_hash=password_hash,
            totp_secret=totp_secret,
            totp_last_step=totp_step,
            public_key=public_key,
            public_key_mac=public_key_mac,
            wrapped_key=wrapped_key,
            set_up_at=now,
        )
    )
    await session.execute(delete(RecoveryCode).where(RecoveryCode.advocate_id == advocate_id))
    session.add_all(RecoveryCode(code_hash=h, advocate_id=advocate_id) for h in recovery_hashes)
    await session.flush()


async def accept_totp_step(session: AsyncSession, advocate_id: str, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) was used already: a replay."""
    result = await session.execute(
        update(Advocate)
        .where(Advocate.id == advocate_id, Advocate.totp_last_step < step)
        .values(totp_last_step=step)
    )
    return _rows(result) == 1


async def use_recovery_code(
    session: AsyncSession, advocate_id: str, code_hash: str, now: dt.datetime
) -> bool:
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.advocate_id == advocate_id,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return _rows(result) == 1


async def recovery_codes_left(session: AsyncSession, advocate_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.advocate_id == advocate_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


# ---- set-up links -----------------------------------------------------------------------------


async def add_setup_link(
    session: AsyncSession,
    advocate_id: str,
    token_hash: str,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> SetupLink:
    link = SetupLink(
        token_hash=token_hash, advocate_id=advocate_id, created_at=now, expires_at=now + lifetime
    )
    session.add(link)
    await session.flush()
    return link


async def usable_setup_link(
    session: AsyncSession, token_hash: str, now: dt.datetime
) -> tuple[SetupLink, Advocate] | None:
    """The link and its advocate, if the link is unused, unexpired and the advocate exists,
    was not removed and has not set up already."""
    link = await session.get(SetupLink, token_hash, populate_existing=True)
    if link is None or link.used_at is not None or aware(link.expires_at) <= now:
        return None
    advocate = await session.get(Advocate, link.advocate_id, populate_existing=True)
    if advocate is None or advocate.removed_at is not None or advocate.set_up_at is not None:
        return None
    return link, advocate


async def set_pending_totp(session: AsyncSession, token_hash: str, sealed: bytes) -> None:
    await session.execute(
        update(SetupLink).where(SetupLink.token_hash == token_hash).values(pending_totp=sealed)
    )


async def consume_setup_link(session: AsyncSession, token_hash: str, now: dt.datetime) -> bool:
    """Mark the link used; False if another request used it first or it expired."""
    result = await session.execute(
        update(SetupLink)
        .where(
            SetupLink.token_hash == token_hash,
            SetupLink.used_at.is_(None),
            SetupLink.expires_at > now,
        )
        .values(used_at=now, pending_totp=None)
    )
    return _rows(result) == 1


# ---- sessions ---------------------------------------------------------------------------------


async def create_session(
    session: AsyncSession, id_hash: str, advocate_id: str, now: dt.datetime
) -> None:
    session.add(
        AdvocateSession(id_hash=id_hash, advocate_id=advocate_id, created_at=now, last_seen_at=now)
    )
    await session.flush()


def session_expired(
    row: AdvocateSession, now: dt.datetime, idle: dt.timedelta, absolute: dt.timedelta
) -> bool:
    return aware(row.last_seen_at) + idle <= now or aware(row.created_at) + absolute <= now


async def touch_session(
    session: AsyncSession,
    id_hash: str,
    now: dt.datetime,
    *,
    idle: dt.timedelta,
    absolute: dt.timedelta,
) -> AdvocateSession | None:
    """The live session (its last-seen time moved to `now`), or None: unknown, or expired
    (and then deleted)."""
    row = await session.get(AdvocateSession, id_hash, populate_existing=True)
    if row is None:
        return None
    if session_expired(row, now, idle, absolute):
        await session.delete(row)
        await session.flush()
        return None
    row.last_seen_at = now
    await session.flush()
    return row


async def delete_session(session: AsyncSession, id_hash: str) -> None:
    await session.execute(delete(AdvocateSession).where(AdvocateSession.id_hash == id_hash))


async def delete_expired_sessions(
    session: AsyncSession, now: dt.datetime, *, idle: dt.timedelta, absolute: dt.timedelta
) -> int:
    result = await session.execute(
        delete(AdvocateSession).where(
            or_(
                AdvocateSession.last_seen_at <= now - idle,
                AdvocateSession.created_at <= now - absolute,
            )
        )
    )
    return _rows(result)


async def live_sessions(session: AsyncSession, id_hashes: Sequence[str]) -> set[str]:
    if not id_hashes:
        return set()
    result = await session.scalars(
        select(AdvocateSession.id_hash).where(AdvocateSession.id_hash.in_(list(id_hashes)))
    )
    return set(result.all())


# ---- login throttling -------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleRule:
    failures: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)


async def locked_until(
    session: AsyncSession, keys: Sequence[str], now: dt.datetime
) -> dt.datetime | None:
    """The latest lock-out among `keys` still running, or None."""
    rows = (await session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))).all()
    until = [aware(r.locked_until) for r in rows if r.locked_until and aware(r.locked_until) > now]
    return max(until) if until else None


async def record_failure(
    session: AsyncSession, key: str, now: dt.datetime, rule: ThrottleRule
) -> None:
    await session.execute(
        insert_or_ignore(session, LoginThrottle),
        [{"key": key, "failures": 0, "window_start": now, "locked_until": None}],
    )
    row = await session.get(LoginThrottle, key, populate_existing=True, with_for_update=True)
    assert row is not None
    if aware(row.window_start) + rule.window <= now:
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures >= rule.failures:
        row.locked_until = now + rule.lockout
        row.failures, row.window_start = 0, now
    await session.flush()


async def clear_failures(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


# ---- organisation keys and grants -------------------------------------------------------------


async def organisation_key(session: AsyncSession, key_id: str) -> OrganisationKey | None:
    return await session.get(OrganisationKey, key_id)


async def grants_of(session: AsyncSession, advocate_id: str) -> Sequence[KeyGrant]:
    result = await session.scalars(select(KeyGrant).where(KeyGrant.advocate_id == advocate_id))
    return result.all()


async def add_grant(session: AsyncSession, grant: KeyGrant) -> None:
    """Add a grant; one that exists already for that advocate and key is kept. GrantRefused
    for an outreach account (or an advocate who is not there): whatever the caller checked,
    an organisation key is never sealed to one here."""
    role = await session.scalar(
        select(Advocate.role)
        .where(Advocate.id == grant.advocate_id)
        .execution_options(populate_existing=True)
    )
    if role != ROLE_ADVOCATE:
        raise GrantRefused(f"no key grant for a {role or 'missing'} account")
    await session.execute(
        insert_or_ignore(session, KeyGrant),
        [
            {
                "advocate_id": grant.advocate_id,
                "key_id": grant.key_id,
                "envelope": grant.envelope,
                "granted_by": grant.granted_by,
                "created_at": grant.created_at,
            }
        ],
    )


async def granted_advocates(session: AsyncSession, organisation: str) -> set[str]:
    result = await session.scalars(
        select(KeyGrant.advocate_id)
        .join(Advocate, Advocate.id == KeyGrant.advocate_id)
        .where(Advocate.organisation == organisation, Advocate.removed_at.is_(None))
    )
    return set(result.all())


# ---- requests and the work on them ------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    request: ContactRequest
    holder_id: str | None  # None when nobody holds it (or the lease ran out)
    holder_name: str | None
    lease_until: dt.datetime | None
    attempts: int
    outcome: str | None


VIEWS = ("unassigned", "mine", "all")
OPEN_STATUSES = (RequestStatus.NEW, RequestStatus.PICKED_UP, RequestStatus.WITHDRAWN)


async def inbox(
    session: AsyncSession, organisation: str, view: str, advocate_id: str, now: dt.datetime
) -> list[InboxRow]:
    """The organisation's requests, urgent first, then oldest. `unassigned`: open requests
    nobody holds; `mine`: those she holds; `all`: everything, closed ones included."""
    holder = aliased(Advocate)
    held = and_(RequestWork.holder_id.is_not(None), RequestWork.lease_until > now)
    stmt = (
        select(ContactRequest, RequestWork, holder.display_name)
        .outerjoin(RequestWork, RequestWork.request_id == ContactRequest.id)
        .outerjoin(holder, holder.id == RequestWork.holder_id)
        .where(ContactRequest.organisation == organisation)
        .order_by(ContactRequest.urgent.desc(), ContactRequest.created_at, ContactRequest.id)
    )
    if view == "unassigned":
        stmt = stmt.where(
            ContactRequest.status.in_((RequestStatus.NEW, RequestStatus.PICKED_UP)),
            or_(RequestWork.request_id.is_(None), ~held),
        )
    elif view == "mine":
        stmt = stmt.where(RequestWork.holder_id == advocate_id, held)
    rows = []
    for request, work, name in (await session.execute(stmt)).all():
        live = (
            work is not None
            and work.holder_id is not None
            and work.lease_until is not None
            and aware(work.lease_until) > now
        )
        rows.append(
            InboxRow(
                request=request,
                holder_id=work.holder_id if live else None,
                holder_name=name if live else None,
                lease_until=aware(work.lease_until) if live and work.lease_until else None,
                attempts=work.attempts if work else 0,
                outcome=work.outcome if work else None,
            )
        )
    return rows


async def request_of(
    session: AsyncSession, organisation: str, request_id: str, *, for_update: bool = False
) -> ContactRequest | None:
    """The request if it belongs to `organisation`: another organisation's is not there.
    `for_update`: hold its row until commit, so a withdrawal cannot slip in between reading
    its status and writing beside it (a case note)."""
    stmt = (
        select(ContactRequest)
        .where(ContactRequest.id == request_id, ContactRequest.organisation == organisation)
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def work_of(session: AsyncSession, request_id: str) -> RequestWork | None:
    return await session.get(RequestWork, request_id, populate_existing=True)


async def _ensure_work(session: AsyncSession, request_id: str, now: dt.datetime) -> None:
    await session.execute(
        insert_or_ignore(session, RequestWork),
        [{"request_id": request_id, "attempts": 0, "updated_at": now}],
    )


async def claim(
    session: AsyncSession,
    request_id: str,
    advocate_id: str,
    now: dt.datetime,
    lease: dt.timedelta,
    *,
    take_over: bool = False,
) -> bool:
    """Hold the request until `now + lease`, unless someone else holds it (`take_over`: an
    admin's reassignment, which moves it whoever holds it)."""
    await _ensure_work(session, request_id, now)
    stmt = update(RequestWork).where(RequestWork.request_id == request_id)
    if not take_over:
        stmt = stmt.where(
            or_(
                RequestWork.holder_id.is_(None),
                RequestWork.holder_id == advocate_id,
                RequestWork.lease_until <= now,
            )
        )
    result = await session.execute(
        stmt.values(holder_id=advocate_id, lease_until=now + lease, updated_at=now)
    )
    return _rows(result) == 1


async def release(
    session: AsyncSession, request_id: str, advocate_id: str | None, now: dt.datetime
) -> bool:
    """Let the request go (only its holder's claim, unless `advocate_id` is None)."""
    stmt = update(RequestWork).where(
        RequestWork.request_id == request_id, RequestWork.holder_id.is_not(None)
    )
    if advocate_id is not None:
        stmt = stmt.where(RequestWork.holder_id == advocate_id)
    result = await session.execute(stmt.values(holder_id=None, lease_until=None, updated_at=now))
    return _rows(result) == 1


async def record_outcome(
    session: AsyncSession,
    request_id: str,
    advocate_id: str,
    outcome: str,
    now: dt.datetime,
    lease: dt.timedelta,
    *,
    reason: str | None = None,
) -> bool:
    """Record what happened, as the live holder; the lease starts again (or ends on close)."""
    work = await work_of(session, request_id)
    if (
        work is None
        or work.holder_id != advocate_id
        or work.lease_until is None
        or aware(work.lease_until) <= now
    ):
        return False
    work.outcome = outcome
    work.updated_at = now
    if outcome == "not_reached":
        work.attempts += 1
    if outcome == "closed":
        work.close_reason = reason
        work.holder_id, work.lease_until = None, None
    else:
        work.lease_until = now + lease
    await session.flush()
    return True


async def expired_leases(session: AsyncSession, now: dt.datetime) -> list[tuple[str, str, str]]:
    """Release every lease that ran out; (request id, holder id, organisation) of each."""
    rows = (
        await session.execute(
            select(RequestWork.request_id, RequestWork.holder_id, ContactRequest.organisation)
            .join(ContactRequest, ContactRequest.id == RequestWork.request_id)
            .where(RequestWork.holder_id.is_not(None), RequestWork.lease_until <= now)
        )
    ).all()
    if rows:
        await session.execute(
            update(RequestWork)
            .where(
                RequestWork.request_id.in_([r[0] for r in rows]),
                RequestWork.lease_until <= now,
            )
            .values(holder_id=None, lease_until=None, updated_at=now)
        )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


async def mark_picked_up(session: AsyncSession, request_id: str, now: dt.datetime) -> bool:
    """`new` -> `picked_up` the first time an advocate opens it (the victim's /status follows)."""
    result = await session.execute(
        update(ContactRequest)
        .where(ContactRequest.id == request_id, ContactRequest.status == RequestStatus.NEW)
        .values(status=RequestStatus.PICKED_UP, picked_up_at=now)
    )
    return _rows(result) == 1


async def mark_closed(session: AsyncSession, request_id: str, now: dt.datetime) -> bool:
    """Close an open request; a withdrawn one stays withdrawn (her wish comes first)."""
    result = await session.execute(
        update(ContactRequest)
        .where(
            ContactRequest.id == request_id,
            ContactRequest.status.in_((RequestStatus.NEW, RequestStatus.PICKED_UP)),
        )
        .values(status=RequestStatus.CLOSED, closed_at=now)
    )
    return _rows(result) == 1


async def renew_lease(
    session: AsyncSession, request_id: str, advocate_id: str, now: dt.datetime, lease: dt.timedelta
) -> bool:
    """Start the lease again, only as its live holder; False if she no longer holds it."""
    result = await session.execute(
        update(RequestWork)
        .where(
            RequestWork.request_id == request_id,
            RequestWork.holder_id == advocate_id,
            RequestWork.lease_until > now,
        )
        .values(lease_until=now + lease, updated_at=now)
    )
    return _rows(result) == 1


# ---- case notes (sealed by the caller: nothing here sees a note's text) -----------------------


async def add_note(
    session: AsyncSession,
    *,
    request_id: str,
    author_id: str,
    created_at: dt.datetime,
    key_id: str,
    sealed: bytes,
) -> CaseNote:
    note = CaseNote(
        request_id=request_id,
        author_id=author_id,
        created_at=created_at,
        key_id=key_id,
        sealed=sealed,
    )
    session.add(note)
    await session.flush()
    return note


@dataclass(frozen=True)
class NoteRow:
    note: CaseNote
    author_name: str | None


async def notes_of(session: AsyncSession, request_id: str) -> list[NoteRow]:
    """A request's notes, still sealed, oldest first (the order they were written in), each
    with its author's display name (kept after her removal, so the note still says who)."""
    rows = await session.execute(
        select(CaseNote, Advocate.display_name)
        .outerjoin(Advocate, Advocate.id == CaseNote.author_id)
        .where(CaseNote.request_id == request_id)
        .order_by(CaseNote.id)
    )
    return [NoteRow(note, name) for note, name in rows.all()]


async def delete_notes(session: AsyncSession, request_ids: Sequence[str]) -> int:
    """Delete the notes of these requests (a deleted request's go by ON DELETE CASCADE)."""
    if not request_ids:
        return 0
    result = await session.execute(
        delete(CaseNote).where(CaseNote.request_id.in_(list(request_ids)))
    )
    return _rows(result)
