"""Work on requests: claim (a lease), open, record an outcome, close, release, reassign.
Every step is one transaction with its audit entry; status changes go through storage, so
the victim's /status follows (received; picked up by a support worker; closed).

Rules:
1. A request of another organisation does not exist here (the caller answers 404).
2. One holder at a time; a claim lapses `lease` after the holder's last recorded action
   (claim, view, outcome). An admin may hand a request to a colleague.
3. Only the live holder reads the request, decrypted in memory with her session's keys. The
   first read turns `new` into `picked_up`. A request the person withdrew shows only that.
4. Case notes: the live holder of an open request writes them (as she records outcomes); each
   is sealed to the organisation's current pinned key, the one new requests go to, and opened
   with her session's keys. Adding one and reading them are audited, never with their text.
   A withdrawn request has none (withdrawal deletes them).
5. Counting (storage/outreach.py), in the transaction of the status change: the first opening
   counts `picked_up` and the wait's bucket; an outcome counts itself, and `closed` when the
   request becomes closed. The campaign comes from the sealed request, opened with her keys
   (UNKNOWN_CAMPAIGN when it cannot be opened then); no count row names the request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from bot.portal import crypto
from bot.portal.accounts import record
from bot.portal.answers import CLOSE_REASONS, OUTCOMES, Section, call_sheet
from bot.portal.state import Portal, Viewer
from flows.kinds import RequestStatus
from flows.outreach import pickup_bucket
from storage import org_keys, outreach
from storage import portal as q
from storage.db import transaction
from storage.dialect import aware
from storage.errors import SealingError
from storage.models import NO_CAMPAIGN, UNKNOWN_CAMPAIGN, Advocate, ContactRequest, RequestWork
from storage.requests import OpenedRequest, open_request
from storage.sealing import Authenticity, Verdict


class NotFound(Exception):
    """No such request for this organisation (or no such colleague)."""


MAX_NOTE_CHARS = 4000


@dataclass(frozen=True)
class ShownNote:
    author: str | None  # her display name; None if the row names nobody we know
    created_at: dt.datetime
    # The text, opened in memory; None when it does not open, and then `reason` says why:
    # "key" (sealed to a key this session does not hold) or "unreadable" (altered, moved
    # from another request, or not written by this portal).
    text: str | None = None
    reason: str | None = None


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
    # The case notes, oldest first: set only for the live holder of an open request.
    notes: tuple[ShownNote, ...] | None = None


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
                    await _count_pickup(session, row, opened, now)
                    await _audit(
                        session, portal, advocate, "status", now, row.id, RequestStatus.PICKED_UP
                    )
        await _audit(session, portal, advocate, "view", now, row.id, detail)
        if row.status in _WORKABLE:
            notes = await _open_notes(session, portal, viewer, row)
            page = replace(page, notes=notes)
            if notes:
                await _audit(session, portal, advocate, "note", now, row.id, f"viewed:{len(notes)}")
    return page


async def _open_notes(
    session: AsyncSession, portal: Portal, viewer: Viewer, row: ContactRequest
) -> tuple[ShownNote, ...]:
    shown = []
    for found in await q.notes_of(session, row.id):
        note = found.note
        created = aware(note.created_at)
        base = ShownNote(author=found.author_name, created_at=created)
        key = viewer.keys.get(note.key_id)
        if key is None:
            shown.append(replace(base, reason="key"))
            continue
        try:
            text = crypto.open_note(
                note.sealed,
                {note.key_id: key},
                mac_key=portal.secrets.notes,
                request_id=row.id,
                organisation=row.organisation,
                author_id=note.author_id,
                created_at=created,
            )
        except SealingError:
            shown.append(replace(base, reason="unreadable"))
            continue
        shown.append(replace(base, text=text))
    return tuple(shown)


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
        if target.role != q.ROLE_ADVOCATE:
            return False  # an outreach account never holds a request (nor its key)
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
        campaign = _campaign_of(_opened_for_count(portal, viewer, row))
        key = outreach.outcome_key(outcome, reason)
        await outreach.add_outcome(session, campaign, row.language, key, now)
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
            await outreach.add_one(session, campaign, row.language, "closed", now)
            await _audit(session, portal, advocate, "status", now, request_id, RequestStatus.CLOSED)
    return True


# ---- counting (no count names the request) ----------------------------------------------------


def _opened_for_count(portal: Portal, viewer: Viewer, row: ContactRequest) -> OpenedRequest | None:
    """The request opened with her session's keys, only to read its campaign; None when it
    cannot be opened now (no keys unlocked, another key, does not open)."""
    if not viewer.keys:
        return None
    try:
        return open_request(row, viewer.keys.values(), portal.verify_keys)
    except SealingError:
        return None


def _campaign_of(opened: OpenedRequest | None) -> str:
    """The campaign to count under: the sealed one (NO_CAMPAIGN for none), or UNKNOWN_CAMPAIGN
    when it cannot be read now, was sealed before campaigns were, or the bot did not write
    it (forged, unsigned): never a guess."""
    if opened is None or not opened.campaign_sealed:
        return UNKNOWN_CAMPAIGN
    if opened.verdict.authenticity not in (Authenticity.GENUINE, Authenticity.ALTERED):
        return UNKNOWN_CAMPAIGN
    return opened.campaign or NO_CAMPAIGN


async def _count_pickup(
    session: AsyncSession, row: ContactRequest, opened: OpenedRequest, now: dt.datetime
) -> None:
    waited = now - aware(row.created_at)
    await outreach.add_one(session, _campaign_of(opened), row.language, "picked_up", now)
    await outreach.add_pickup_time(session, row.language, pickup_bucket(waited), now)


def note_problem(text: str) -> str | None:
    """Why `text` (already normalised) cannot be a note: "empty" or "too_long"; else None."""
    if not text:
        return "empty"
    if len(text) > MAX_NOTE_CHARS:
        return "too_long"
    return None


def normalise_note(text: str) -> str:
    """Line ends as the browser sends them (CRLF) made plain, outer blank space dropped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


async def add_note(portal: Portal, viewer: Viewer, request_id: str, text: str) -> str:
    """Seal and store a case note as the live holder of an open request (the lease starts
    again, as with an outcome). What happened: "added"; "empty" or "too_long" (nothing
    stored); "refused" (not hers, or no longer open); "no_key" (no current pinned key to seal
    to). NotFound for another organisation's request, whatever the text."""
    now = portal.clock().astimezone(dt.UTC)  # bound in the seal: stored as it reads back
    advocate = viewer.advocate
    text = normalise_note(text)
    async with transaction(portal.sessions) as session:
        row = await q.request_of(session, advocate.organisation, request_id)
        if row is None:
            raise NotFound
        if row.status not in _WORKABLE or _live(await q.work_of(session, row.id), now) != (
            advocate.id
        ):
            return "refused"
        problem = note_problem(text)
        if problem is not None:
            return problem
        recipient = await org_keys.recipient(session, row.organisation, _pins(portal, row))
        if recipient is None:
            return "no_key"
        # Locks in the order claim-and-open and outcomes take them (the lease, then the
        # request), so two of her tabs never wait on each other in a cycle. The request row is
        # held until commit: a withdrawal waits for this note, then deletes it; a withdrawal
        # that came first is seen here.
        if not await q.renew_lease(session, request_id, advocate.id, now, portal.settings.lease):
            return "refused"
        row = await q.request_of(session, advocate.organisation, request_id, for_update=True)
        if row is None or row.status not in _WORKABLE:
            return "refused"
        sealed = crypto.seal_note(
            text,
            recipient,
            mac_key=portal.secrets.notes,
            request_id=row.id,
            organisation=row.organisation,
            author_id=advocate.id,
            created_at=now,
        )
        await q.add_note(
            session,
            request_id=row.id,
            author_id=advocate.id,
            created_at=now,
            key_id=recipient.key_id,
            sealed=sealed,
        )
        await _audit(session, portal, advocate, "note", now, row.id, "added")
    return "added"


def _pins(portal: Portal, row: ContactRequest) -> frozenset[str] | None:
    """The deployment's pins for the request's organisation (none if it names no such one)."""
    try:
        return portal.deployment.key_pins(row.organisation)
    except KeyError:
        return frozenset()


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
