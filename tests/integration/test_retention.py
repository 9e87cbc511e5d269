"""Retention: purge deletes what has outlived its purpose and keeps the rest; on SQLite the
deleted bytes leave the disk (secure_delete + WAL checkpoint), proved with canary strings."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select

from storage import queries
from storage.db import transaction
from storage.models import (
    ChatMessage,
    ContactRequest,
    Conversation,
    Notice,
    ProcessedUpdate,
    RemovedRequest,
)
from storage.retention import PROCESSED_UPDATE_TTL, SENT_NOTICE_TTL, PurgeReport, purge
from tests.integration.support import (
    Database,
    aware,
    contact_request,
    conversation,
    files_containing,
    now,
    only_sqlite,
    sqlite_files,
)

CLOSED_RETENTION = dt.timedelta(days=7)
SECOND = dt.timedelta(seconds=1)


async def seed(db: Database, at: dt.datetime) -> None:
    old_closed = at - CLOSED_RETENTION - SECOND
    async with transaction(db.sessions) as s:
        for row in (
            # deleted
            contact_request("past_delete_after", at - dt.timedelta(days=31), delete_after=at),
            contact_request("closed_long_ago", at, status="closed", closed_at=old_closed),
            contact_request("withdrawn_long_ago", at, status="withdrawn", closed_at=old_closed),
            contact_request("picked_up_expired", at, status="picked_up", delete_after=at - SECOND),
            # kept
            contact_request("fresh_new", at),
            contact_request("picked_up", at, status="picked_up", closed_at=None),
            contact_request("closed_recently", at, status="closed", closed_at=at - SECOND),
            contact_request("withdrawn_recently", at, status="withdrawn", closed_at=at),
        ):
            await queries.insert_request(s, row)

        hour = dt.timedelta(hours=1)
        for row in (
            conversation("conv_expired", at - 7 * hour, expires_in=6 * hour),
            conversation("conv_fresh", at),
            conversation(
                "conv_draft_expired",
                at - 2 * hour,
                expires_in=6 * hour,
                draft=b"\x01old-draft",
                draft_expires_in=hour,
            ),
            conversation("conv_draft_fresh", at, draft=b"\x01new-draft", draft_expires_in=hour),
        ):
            await queries.save_conversation(s, row)

        # Quick exit's message ids: kept for Telegram's 48-hour delete window, whether or not
        # the conversation is still there ("conv_expired" is purged above; its ids stay).
        window = queries.MESSAGE_DELETE_WINDOW
        for chat_key, message_id, age in (
            ("conv_expired", 1, window + SECOND),  # deleted
            ("conv_expired", 2, window),  # deleted: exactly 48 h old
            ("conv_expired", 3, window - SECOND),  # kept
            ("conv_fresh", 4, dt.timedelta(0)),  # kept
            ("no_conversation", 5, window + dt.timedelta(days=30)),  # deleted
        ):
            await queries.remember_messages(s, chat_key, [message_id], at - age)

        s.add_all(
            [
                ProcessedUpdate(update_id=1, seen_at=at - PROCESSED_UPDATE_TTL - SECOND),
                ProcessedUpdate(update_id=2, seen_at=at - dt.timedelta(hours=1)),
                Notice(
                    organisation="org-a",
                    language="en",
                    created_at=at,
                    sent_at=at - SENT_NOTICE_TTL - SECOND,
                ),
                Notice(organisation="org-a", language="en", created_at=at, sent_at=at),
                Notice(organisation="org-a", language="en", created_at=at, sent_at=None),
            ]
        )


async def test_purge_deletes_expired_and_keeps_fresh(db: Database) -> None:
    at = now()
    await seed(db, at)
    report = await purge(db.engine, db.sessions, at, closed_retention=CLOSED_RETENTION)
    assert report == PurgeReport(requests=4, conversations=1, drafts=1, updates=1, notices=1)

    async with db.sessions() as s:
        requests = set((await s.scalars(select(ContactRequest.id))).all())
        conversations = {c.chat_key: c for c in (await s.scalars(select(Conversation))).all()}
        updates = set((await s.scalars(select(ProcessedUpdate.update_id))).all())
        notices = (await s.scalars(select(Notice))).all()
        messages = (await s.execute(select(ChatMessage.chat_key, ChatMessage.message_id))).all()
    assert requests == {"fresh_new", "picked_up", "closed_recently", "withdrawn_recently"}
    assert set(conversations) == {"conv_fresh", "conv_draft_expired", "conv_draft_fresh"}
    stale = conversations["conv_draft_expired"]
    assert stale.draft is None and stale.draft_expires_at is None
    assert stale.step == "menu"  # the place in the conversation stays until it expires
    assert conversations["conv_draft_fresh"].draft == b"\x01new-draft"
    assert updates == {2}
    assert sorted(messages) == [("conv_expired", 3), ("conv_fresh", 4)]
    assert (
        sorted((aware(n.sent_at) for n in notices if n.sent_at), key=str) == [at]
        and sum(n.sent_at is None for n in notices) == 1
    )

    again = await purge(db.engine, db.sessions, at, closed_retention=CLOSED_RETENTION)
    assert again == PurgeReport(requests=0, conversations=0, drafts=0, updates=0, notices=0)


async def test_purge_on_empty_database(db: Database) -> None:
    report = await purge(db.engine, db.sessions, now(), closed_retention=CLOSED_RETENTION)
    assert report == PurgeReport(0, 0, 0, 0, 0)


@only_sqlite
async def test_purged_bytes_leave_the_sqlite_files(db: Database) -> None:
    """Canaries in the columns purge removes must be on disk before and nowhere after: not in
    the database file, not in the -wal, not in the -shm."""
    assert db.path is not None
    at = now()
    tag = secrets.token_hex(6).upper()
    envelope_canary = f"CANARY-RETENTION-ENVELOPE-{tag}".encode()
    reference_canary = f"CANARY-RETENTION-REFERENCE-{tag}"
    # message ids are integers: the canary is the chat key of rows past the delete window
    messages_canary = f"CANARY-RETENTION-MESSAGES-{tag}"
    draft_canary = f"CANARY-RETENTION-DRAFT-{tag}".encode()
    keep_canary = f"CANARY-RETENTION-KEEP-{tag}".encode()

    async with transaction(db.sessions) as s:
        await queries.insert_request(
            s,
            contact_request(
                "doomed",
                at - dt.timedelta(days=31),
                delete_after=at - SECOND,
                envelope=envelope_canary * 20,
                reference_hash=reference_canary,
            ),
        )
        await queries.insert_request(s, contact_request("kept", at, envelope=keep_canary))
        await queries.save_conversation(
            s,
            conversation(
                "expired-chat",
                at - dt.timedelta(hours=7),
                expires_in=dt.timedelta(hours=6),
            ),
        )
        old = at - queries.MESSAGE_DELETE_WINDOW - SECOND
        await queries.remember_messages(s, messages_canary, list(range(1, 40)), old)
        await queries.remember_messages(s, "kept-chat", [77], at)
        await queries.save_conversation(
            s,
            conversation(
                "draft-expired-chat",
                at - dt.timedelta(hours=2),
                draft=draft_canary,
                draft_expires_in=dt.timedelta(hours=1),
            ),
        )

    canaries = [envelope_canary, reference_canary.encode(), messages_canary.encode(), draft_canary]
    before = sqlite_files(db.path)
    for canary in [*canaries, keep_canary]:
        assert files_containing(before, canary), f"control: {canary!r} should be on disk"

    report = await purge(db.engine, db.sessions, at, closed_retention=CLOSED_RETENTION)
    assert (report.requests, report.conversations, report.drafts) == (1, 1, 1)

    after = sqlite_files(db.path)
    for canary in canaries:
        assert files_containing(after, canary) == [], f"{canary!r} survived the purge"
    assert files_containing(after, keep_canary), "kept rows must still be there"
    async with db.sessions() as s:
        assert await queries.chat_message_ids(s, "kept-chat", at) == [77]
    assert len(after.get(f"{db.path.name}-wal", b"")) == 0  # checkpoint(TRUNCATE) ran


async def test_purged_requests_leave_only_a_dated_trace_for_status(db: Database) -> None:
    """/status after the purge says "withdrawn or deleted"; the trace itself goes after
    REMOVED_TTL, and none of the purged row's bytes are in it."""
    at = now()
    await seed(db, at)
    async with db.sessions() as s:
        purged = {
            r.id: r.reference_hash
            for r in (await s.scalars(select(ContactRequest))).all()
            if r.id in {"past_delete_after", "closed_long_ago", "withdrawn_long_ago"}
        }
    await purge(db.engine, db.sessions, at, closed_retention=CLOSED_RETENTION)
    async with db.sessions() as s:
        for reference_hash in purged.values():
            assert await queries.status_by_reference(s, reference_hash) == queries.REMOVED
        kept = await queries.status_by_reference(s, "fresh_new-ref")
        traces = set((await s.scalars(select(RemovedRequest.reference_hash))).all())
    assert kept in {None, "new"}
    assert len(traces) == 4 and not traces & set(purged.values())

    later = at + queries.REMOVED_TTL + dt.timedelta(days=1)
    await purge(db.engine, db.sessions, later, closed_retention=CLOSED_RETENTION)
    async with db.sessions() as s:
        # (the requests kept at `at` are purged at `later`, leaving traces of their own)
        assert not traces & set((await s.scalars(select(RemovedRequest.reference_hash))).all())
        for reference_hash in purged.values():
            assert await queries.status_by_reference(s, reference_hash) is None
