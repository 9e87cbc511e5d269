"""Work on requests: claim (a lease), open, record an outcome, close, release, reassign.
Every step is one transaction with its audit entry; status changes go through storage, so
the victim's /status follows (received; picked up by a support worker; closed).

Rules:
1. A request of another organisation does not exist here (the caller answers 404).
2. One holder at a time; a claim lapses `lease` after the holder's last recorded action
   (claim, view, outcome). An admin may hand a request to a colleague.
3. Only the live holder reads the request, decrypted in memory with her session's keys. The
   first read turns `new` into `picked_up`. A request the person withdrew shows only that.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from bot.portal.accounts import record
from bot.portal.answers import CLOSE_REASONS, OUTCOMES, Section, call_sheet
from bot.portal.state import Portal, Viewer
from flows.kinds import RequestStatus
from storage import portal as q
from storage.db import transaction
from storage.dialect import aware
from storage.errors import SealingError
from storage.models import Advocate, ContactRequest, RequestWork
from storage.requests import open_request
from storage.sealing import Verdict


class NotFound(Exception):
    """No such request for this organisation (or no such colleague)."""


@dataclass(frozen=True)
class RequestPage:
    request: ContactRequest
    work: RequestWork | None
    holder_name: str | None
    mine: bool
    held_by_other: bool
    # Set only for the live holder of an open request whose envelope opened:
    sections: tuple[Section, ...] | None = None
    # Why there is nothing to read: "withdrawn", "closed", "locked" (no key in this
    # session), "unreadable" (does not open: altered, or sealed for another key).
    reason: str | None = None
    # Whether the bot wrote it, and which cleartext fields were changed since (storage.sealing).
    verdict: Verdict | None = None


def short_ref(request_id: str) -> str:
    """The short form advocates say to each other (the victim's reference is only hashed)."""
    return f"{request_id[:4]}-{request_id[4:8]}".upper()


def _live(work: RequestWork | None, now: dt.datetime) -> str | None:
    if work is None or work.holder_id is None or work.lease_until is None:
        return None
    return work.holder_id if aware(work.lease_until) > now else None


async def view(portal: Portal, viewer: Viewer, request_id: str) -> RequestPage:
    now = portal.clock()
    advocate = viewer.advocate
    async with transaction(portal.sessions) as session:
        row = await q.request_of(session, advocate.organisation, request_id)
        if row is None:
            raise NotFound
        work = await q.work_of(session, request_id)
        holder = _live(work, now)
        holder_row = None if holder is None else await q.get_advocate(session, holder)
        page = RequestPage(
            request=row,
            work=work,
            holder_name=holder_row.display_name if holder_row else None,
            mine=holder == advocate.id,
            held_by_other=holder is not None and holder != advocate.id,
        )
        if not page.mine:
            return page
        detail: str
        if row.status == RequestStatus.WITHDRAWN:
            page, detail = _with(page, reason="withdrawn"), "withdrawn"
        elif row.status == RequestStatus.CLOSED:
            page, detail = _with(page, reason="closed"), "closed"
        elif not viewer.keys:
            page, detail = _with(page, reason="locked"), "locked"
        else:
            try:
                opened = open_request(row, viewer.keys.values(), portal.verify_keys)
            except SealingError:
                opened = None
            if opened is None:
                page, detail = _with(page, reason="unreadable"), "unreadable"
            else:
                sections = call_sheet(portal.flow, portal.deployment, opened.answers)
                page = replace(page, sections=sections, verdict=opened.verdict)
                detail = f"opened:{opened.verdict.authenticity}"
                await q.claim(session, row.id, advocate.id, now, portal.settings.lease)
                if await q.mark_picked_up(session, row.id, now):
                    row.status = RequestStatus.PICKED_UP
                    await _audit(
                        session, portal, advocate, "status", now, row.id, RequestStatus.PICKED_UP
                    )
        await _audit(session, portal, advocate, "view", now, row.id, detail)
    return page


def _with(page: RequestPage, *, reason: str) -> RequestPage:
    return replace(page, reason=reason)


# Statuses an advocate can still act on (closed and withdrawn requests are read-only).
_WORKABLE = (RequestStatus.NEW, RequestStatus.PICKED_UP)


async def _audit(
    session: AsyncSession,
    portal: Portal,
    advocate: Advocate,
    action: str,
    now: dt.datetime,
    request_id: str,
    detail: str | None = None,
) -> None:
    """An entry for what `advocate` did to one request of her organisation."""
    await record(
        session,
        portal.secrets,
        action,
        now,
        organisation=advocate.organisation,
        actor=advocate.id,
        subject=request_id,
        detail=detail,
    )


async def claim(portal: Portal, viewer: Viewer, request_id: str) -> bool:
    now = portal.clock()
    advocate = viewer.advocate
    async with transaction(portal.sessions) as session:
        row = await q.request_of(session, advocate.organisation, request_id)
        if row is None:
            raise NotFound
        if row.status not in _WORKABLE:
            return False
        ok = await q.claim(session, request_id, advocate.id, now, portal.settings.lease)
        if ok:
            await _audit(session, portal, advocate, "claim", now, request_id)
    return ok


async def release(portal: Portal, viewer: Viewer, request_id: str) -> bool:
    now = portal.clock()
    advocate = viewer.advocate
    async with transaction(portal.sessions) as session:
        if await q.request_of(session, advocate.organisation, request_id) is None:
            raise NotFound
        ok = await q.release(session, request_id, advocate.id, now)
        if ok:
            await _audit(session, portal, advocate, "release", now, request_id)
    return ok


async def reassign(portal: Portal, viewer: Viewer, request_id: str, to: str) -> bool:
    """An admin hands the request to a colleague (whoever holds it now)."""
    now = portal.clock()
    advocate = viewer.advocate
    async with transaction(portal.sessions) as session:
        row = await q.request_of(session, advocate.organisation, request_id)
        target = await q.active_advocate(session, to)
        if row is None:
            raise NotFound
        if not advocate.is_admin or target is None or target.organisation != advocate.organisation:
            return False
        if row.status not in _WORKABLE:
            return False
        await q.claim(session, request_id, to, now, portal.settings.lease, take_over=True)
        await _audit(session, portal, advocate, "reassign", now, request_id, to)
    return True


async def record_outcome(
    portal: Portal, viewer: Viewer, request_id: str, outcome: str, reason: str | None
) -> bool:
    if outcome not in OUTCOMES or (outcome == "closed" and reason not in CLOSE_REASONS):
        return False
    now = portal.clock()
    advocate = viewer.advocate
    async with transaction(portal.sessions) as session:
        row = await q.request_of(session, advocate.organisation, request_id)
        if row is None:
            raise NotFound
        if row.status not in _WORKABLE:
            return False
        kept = await q.record_outcome(
            session,
            request_id,
            advocate.id,
            outcome,
            now,
            portal.settings.lease,
            reason=reason if outcome == "closed" else None,
        )
        if not kept:
            return False
        await _audit(
            session,
            portal,
            advocate,
            "outcome",
            now,
            request_id,
            outcome if outcome != "closed" else f"closed:{reason}",
        )
        if outcome == "closed" and await q.mark_closed(session, request_id, now):
            await _audit(session, portal, advocate, "status", now, request_id, RequestStatus.CLOSED)
    return True


async def sweep(portal: Portal) -> None:
    """Release lapsed leases (audited), end expired sessions, and drop from memory the keys
    of every session that no longer exists (ended here or by another process)."""
    now = portal.clock()
    async with transaction(portal.sessions) as session:
        for request_id, holder, organisation in await q.expired_leases(session, now):
            await record(
                session,
                portal.secrets,
                "lease_expired",
                now,
                organisation=organisation,
                actor=None,
                subject=request_id,
                detail=holder,
            )
        await q.delete_expired_sessions(
            session, now, idle=portal.settings.idle, absolute=portal.settings.absolute
        )
        held = portal.keys.sessions()
        live = await q.live_sessions(session, held)
    for session_hash in held:
        if session_hash not in live:
            portal.keys.drop(session_hash)
