"""Alembic migrations, on SQLite and PostgreSQL, starting from an empty database.

* upgrade to head gives exactly the schema of `storage.models` (autogenerate finds no diff);
* every revision goes up, down and up again (a "stairway"), and base leaves no tables;
* SecureDrop style: every revision registers, in MIGRATION_DATA, rows to write with the
  schema *as of that revision* and a check that they are intact and readable through the
  current models at head. A new revision without an entry fails
  `test_every_revision_has_a_data_test`, so each migration gets its data test when written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, MetaData, Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.portal import crypto
from storage import queries
from storage.db import create_engine, session_factory
from storage.drafts import open_draft, open_json, seal_draft, seal_json
from storage.migrate import alembic_config, downgrade, upgrade
from storage.models import (
    Advocate,
    AdvocateSession,
    AuditEntry,
    Base,
    Campaign,
    CaseNote,
    ChatMessage,
    ContactRequest,
    Conversation,
    InboxUpdate,
    KeyGrant,
    LoginThrottle,
    Notice,
    OrganisationKey,
    OutboxItem,
    OutcomeCount,
    OutreachCount,
    PickupTime,
    ProcessedUpdate,
    RecoveryCode,
    RemovedRequest,
    RequestWork,
    SendGap,
    SetupLink,
)
from storage.sealing import SealContext, generate_keypair, open_sealed, seal
from tests.integration.support import EmptyDatabase, aware

ALEMBIC_TABLE = "alembic_version"


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def revisions_in_order() -> list[Script]:
    """Every revision, oldest first."""
    return list(reversed(list(script_directory().walk_revisions("base", "heads"))))


async def migrate(url: str, revision: str) -> None:
    # env.py runs its own event loop: keep Alembic off ours.
    await asyncio.to_thread(upgrade, url, revision)


async def migrate_down(url: str, revision: str) -> None:
    await asyncio.to_thread(downgrade, url, revision)


async def with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    engine = create_engine(url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


async def run_sync(url: str, fn: Callable[[Connection], Any]) -> Any:
    async def work(engine: AsyncEngine) -> Any:
        async with engine.connect() as conn:
            result = await conn.run_sync(fn)
            await conn.commit()
            return result

    return await with_engine(url, work)


def _schema_diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


# ---- data written at each revision ----------------------------------------------------------


@dataclass(frozen=True)
class MigrationData:
    """`load` writes rows through the schema as it is right after the revision (reflected,
    never the current models); `check` reads them at head through the current models."""

    load: Callable[[Connection, dict[str, Any]], None]
    check: Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]


def _reflect(conn: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def _load_0001(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    private, public = generate_keypair()
    draft_key = b"d" * 32
    request_id = "0001" + "a" * 28
    body = json.dumps({"answers": {"codeword": "heron"}}).encode()
    envelope = seal(body, public, SealContext(request_id=request_id, org="org-a", created_at=at))
    state.update(at=at, private=private, draft_key=draft_key, request_id=request_id, body=body)
    conn.execute(
        _reflect(conn, "organisation_keys").insert(),
        dict(
            key_id=public.key_id,
            organisation="org-a",
            suite=public.suite,
            public_key=public.to_text(),
            created_at=at,
            active=True,
        ),
    )
    conn.execute(
        _reflect(conn, "contact_requests").insert(),
        dict(
            id=request_id,
            organisation="org-a",
            language="pl",
            created_at=at,
            status="picked_up",
            urgent=True,
            key_id=public.key_id,
            envelope=envelope,
            reference_hash="r" * 64,
            owner_key="o" * 64,
            picked_up_at=at,
            closed_at=None,
            delete_after=at + dt.timedelta(days=30),
        ),
    )
    conn.execute(
        _reflect(conn, "conversations").insert(),
        dict(
            chat_key="c" * 64,
            step="contact.summary",
            language="pl",
            seq=7,
            editing=True,
            flow_version=1,
            draft=seal_draft(draft_key, "c" * 64, {"answers": {"method": "sms"}}),
            draft_expires_at=at + dt.timedelta(hours=1),
            updated_at=at,
            expires_at=at + dt.timedelta(hours=6),
        ),
    )
    conn.execute(
        _reflect(conn, "chat_messages").insert(),
        [
            dict(chat_key="c" * 64, message_id=3, sent_at=at),
            dict(chat_key="c" * 64, message_id=1, sent_at=at - dt.timedelta(hours=1)),
            dict(chat_key="c" * 64, message_id=2**40, sent_at=at),
            dict(chat_key="d" * 64, message_id=1, sent_at=at),  # no conversation row
        ],
    )
    conn.execute(_reflect(conn, "processed_updates").insert(), dict(update_id=2**40, seen_at=at))
    conn.execute(
        _reflect(conn, "notices").insert(),
        dict(
            organisation="org-a",
            language="pl",
            urgent=True,
            created_at=at,
            sent_at=None,
            attempts=3,
        ),
    )


async def _check_0001(session: AsyncSession, state: dict[str, Any]) -> None:
    at = state["at"]
    request = await session.get(ContactRequest, state["request_id"])
    assert request is not None
    assert (request.organisation, request.language, request.status, request.urgent) == (
        "org-a",
        "pl",
        "picked_up",
        True,
    )
    assert aware(request.created_at) == at
    context = SealContext(
        request_id=request.id, org=request.organisation, created_at=aware(request.created_at)
    )
    assert open_sealed(request.envelope, [state["private"]], context) == state["body"]

    key = (await session.scalars(select(OrganisationKey))).one()
    assert key.key_id == state["private"].key_id and key.active is True

    conv = await session.get(Conversation, "c" * 64)
    assert conv is not None
    assert (conv.step, conv.seq, conv.editing) == ("contact.summary", 7, True)
    assert open_draft(state["draft_key"], "c" * 64, conv.draft) == {"answers": {"method": "sms"}}

    assert await queries.chat_message_ids(session, "c" * 64, at) == [1, 3, 2**40]
    assert await queries.chat_message_ids(session, "d" * 64, at) == [1]
    sent = await session.get(ChatMessage, ("c" * 64, 1))
    assert sent is not None and aware(sent.sent_at) == at - dt.timedelta(hours=1)

    update = await session.get(ProcessedUpdate, 2**40)
    assert update is not None and aware(update.seen_at) == at
    notice = (await session.scalars(select(Notice))).one()
    assert (notice.sent_at, notice.urgent, notice.attempts) == (None, True, 3)


def _load_0002(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)
    key = b"k" * 32
    state.update(at=at, key=key)
    conn.execute(
        _reflect(conn, "inbox").insert(),
        dict(
            update_id=2**41,
            chat_key="e" * 64,
            lane=0,
            payload=seal_json(key, "inbox:" + "e" * 64, {"update": {"update_id": 2**41}}),
            received_at=at,
        ),
    )
    conn.execute(
        _reflect(conn, "outbox").insert(),
        dict(
            chat_key="e" * 64,
            lane=1,
            kind="send",
            payload=seal_json(key, "outbox:" + "e" * 64, {"html": "x"}),
            attempts=2,
            created_at=at,
        ),
    )
    conn.execute(
        _reflect(conn, "send_gaps").insert(),
        dict(chat_key="e" * 64, after_id=2**40, before_id=None, created_at=at),
    )


async def _check_0002(session: AsyncSession, state: dict[str, Any]) -> None:
    key = state["key"]
    inbox = await session.get(InboxUpdate, 2**41)
    assert inbox is not None and inbox.lane == 0 and aware(inbox.received_at) == state["at"]
    assert open_json(key, "inbox:" + "e" * 64, inbox.payload) == {"update": {"update_id": 2**41}}
    item = (await session.scalars(select(OutboxItem))).one()
    assert (item.kind, item.lane, item.attempts) == ("send", 1, 2)
    assert open_json(key, "outbox:" + "e" * 64, item.payload) == {"html": "x"}
    gap = (await session.scalars(select(SendGap))).one()
    assert (gap.after_id, gap.before_id) == (2**40, None)


def _load_0003(conn: Connection, state: dict[str, Any]) -> None:
    day = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    state.update(removed_day=day)
    conn.execute(
        _reflect(conn, "removed_requests").insert(),
        dict(reference_hash="f" * 64, forget_after=day),
    )


async def _check_0003(session: AsyncSession, state: dict[str, Any]) -> None:
    row = await session.get(RemovedRequest, "f" * 64)
    assert row is not None and aware(row.forget_after) == state["removed_day"]


def _load_0004(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2027, 3, 2, 10, 0, 0, 250000, tzinfo=dt.UTC)
    state.update(at=at)
    conn.execute(
        _reflect(conn, "advocates").insert(),
        dict(
            id="a" * 16,
            organisation="org-a",
            display_name="Ada",
            is_admin=True,
            login="ada",
            password_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
            totp_secret=b"sealed-totp",
            totp_last_step=2**33,
            public_key="safebot-pk1:...",
            public_key_mac="m" * 64,
            wrapped_key=b"{}",
            created_at=at,
            set_up_at=at,
            removed_at=None,
        ),
    )
    conn.execute(
        _reflect(conn, "setup_links").insert(),
        dict(
            token_hash="t" * 64,
            advocate_id="a" * 16,
            created_at=at,
            expires_at=at,
            used_at=at,
            pending_totp=None,
        ),
    )
    conn.execute(
        _reflect(conn, "recovery_codes").insert(),
        dict(code_hash="r" * 64, advocate_id="a" * 16, used_at=None),
    )
    conn.execute(
        _reflect(conn, "advocate_sessions").insert(),
        dict(id_hash="s" * 64, advocate_id="a" * 16, created_at=at, last_seen_at=at),
    )
    conn.execute(
        _reflect(conn, "key_grants").insert(),
        dict(
            advocate_id="a" * 16,
            key_id="kid",
            envelope=b"SB-grant",
            granted_by="a" * 16,
            created_at=at,
        ),
    )
    conn.execute(
        _reflect(conn, "request_work").insert(),
        dict(
            request_id="0001" + "a" * 28,
            holder_id="a" * 16,
            lease_until=at,
            attempts=2,
            outcome="not_reached",
            close_reason=None,
            updated_at=at,
        ),
    )
    conn.execute(
        _reflect(conn, "login_throttle").insert(),
        dict(key="k" * 64, failures=3, window_start=at, locked_until=None),
    )
    conn.execute(
        _reflect(conn, "audit_log").insert(),
        dict(
            seq=1,
            at=at,
            organisation="org-a",
            actor="a" * 16,
            action="login_ok",
            subject=None,
            detail=None,
            prev_hash="0" * 64,
            entry_hash="e" * 64,
        ),
    )


async def _check_0004(session: AsyncSession, state: dict[str, Any]) -> None:
    at = state["at"]
    advocate = await session.get(Advocate, "a" * 16)
    assert advocate is not None
    assert (advocate.login, advocate.is_admin, advocate.totp_last_step) == ("ada", True, 2**33)
    assert aware(advocate.set_up_at or at) == at
    work = await session.get(RequestWork, "0001" + "a" * 28)
    assert work is not None and (work.attempts, work.outcome) == (2, "not_reached")
    grant = await session.get(KeyGrant, ("a" * 16, "kid"))
    assert grant is not None and grant.envelope == b"SB-grant"
    assert (await session.get(AdvocateSession, "s" * 64)) is not None
    assert (await session.get(RecoveryCode, "r" * 64)) is not None
    link = await session.get(SetupLink, "t" * 64)
    assert link is not None and aware(link.used_at or at) == at
    throttle = await session.get(LoginThrottle, "k" * 64)
    assert throttle is not None and throttle.failures == 3
    entry = await session.get(AuditEntry, 1)
    assert entry is not None and aware(entry.at) == at and entry.entry_hash == "e" * 64


def _load_0005(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2027, 3, 3, 11, 0, 0, 500000, tzinfo=dt.UTC)
    private, public = generate_keypair()
    request_id, mac_key = "0001" + "a" * 28, b"n" * 32
    sealed = crypto.seal_note(
        "note zażółć",
        public,
        mac_key=mac_key,
        request_id=request_id,
        organisation="org-a",
        author_id="a" * 16,
        created_at=at,
    )
    state.update(at=at, private=private, request_id=request_id, mac_key=mac_key)
    conn.execute(
        _reflect(conn, "case_notes").insert(),
        dict(
            request_id=request_id,
            author_id="a" * 16,
            created_at=at,
            key_id=public.key_id,
            sealed=sealed,
        ),
    )


async def _check_0005(session: AsyncSession, state: dict[str, Any]) -> None:
    note = (await session.scalars(select(CaseNote))).one()
    assert note.request_id == state["request_id"] and aware(note.created_at) == state["at"]
    text = crypto.open_note(
        note.sealed,
        {note.key_id: state["private"]},
        mac_key=state["mac_key"],
        request_id=note.request_id,
        organisation="org-a",
        author_id=note.author_id,
        created_at=aware(note.created_at),
    )
    assert text == "note zażółć"


def _load_0006(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2027, 4, 1, 9, 30, 0, 250000, tzinfo=dt.UTC)
    state.update(at=at)
    conn.execute(
        _reflect(conn, "campaigns").insert(),
        [
            dict(code="Ab3dE6gH", created_at=at, retired_at=None),
            dict(code="Zz9Zz9Zz", created_at=at, retired_at=at),
        ],
    )
    conn.execute(
        _reflect(conn, "outreach_counts").insert(),
        dict(
            campaign="Ab3dE6gH",
            language="zh_Hant",
            iso_week="2027-W13",
            started=12,
            requested=3,
            picked_up=2,
            closed=1,
        ),
    )


async def _check_0006(session: AsyncSession, state: dict[str, Any]) -> None:
    live = await session.get(Campaign, "Ab3dE6gH")
    assert live is not None and aware(live.created_at) == state["at"] and live.retired_at is None
    retired = await session.get(Campaign, "Zz9Zz9Zz")
    assert retired is not None and aware(retired.retired_at or state["at"]) == state["at"]
    row = await session.get(OutreachCount, ("Ab3dE6gH", "zh_Hant", "2027-W13"))
    assert row is not None and (row.started, row.requested, row.picked_up, row.closed) == (
        12,
        3,
        2,
        1,
    )


def _load_0007(conn: Connection, state: dict[str, Any]) -> None:
    at = dt.datetime(2027, 5, 1, 9, 0, tzinfo=dt.UTC)
    state.update(at=at)
    conn.execute(
        _reflect(conn, "advocates").insert(),
        dict(
            id="b" * 16,
            organisation="org-a",
            display_name="Sam",
            is_admin=False,
            created_at=at,
            totp_last_step=0,
        ),
    )
    conn.execute(
        _reflect(conn, "outcome_counts").insert(),
        dict(campaign="-", language="uk", iso_week="2027-W17", outcome="closed:supported", count=4),
    )
    conn.execute(
        _reflect(conn, "pickup_times").insert(),
        dict(language="uk", iso_week="2027-W17", bucket="1-4h", count=11),
    )


async def _check_0007(session: AsyncSession, state: dict[str, Any]) -> None:
    advocate = await session.get(Advocate, "b" * 16)
    assert advocate is not None and advocate.role == "advocate"  # the default for existing rows
    outcome = await session.get(OutcomeCount, ("-", "uk", "2027-W17", "closed:supported"))
    assert outcome is not None and outcome.count == 4
    pickup = await session.get(PickupTime, ("uk", "2027-W17", "1-4h"))
    assert pickup is not None and pickup.count == 11


MIGRATION_DATA: dict[str, MigrationData] = {
    "0001": MigrationData(load=_load_0001, check=_check_0001),
    "0002": MigrationData(load=_load_0002, check=_check_0002),
    "0003": MigrationData(load=_load_0003, check=_check_0003),
    "0004": MigrationData(load=_load_0004, check=_check_0004),
    "0005": MigrationData(load=_load_0005, check=_check_0005),
    "0006": MigrationData(load=_load_0006, check=_check_0006),
    "0007": MigrationData(load=_load_0007, check=_check_0007),
}


# ---- tests ------------------------------------------------------------------------------------


def test_one_linear_history() -> None:
    script = script_directory()
    assert len(script.get_heads()) == 1, "migrations branch: merge them"
    assert revisions_in_order()[0].down_revision is None


def test_every_revision_has_a_data_test() -> None:
    missing = [r.revision for r in revisions_in_order() if r.revision not in MIGRATION_DATA]
    assert not missing, (
        f"revisions {missing} have no entry in MIGRATION_DATA: add rows written with that "
        "revision's schema and a check at head (tests/integration/test_migrations.py)"
    )


async def test_upgrade_empty_database_matches_models(empty_db: EmptyDatabase) -> None:
    await migrate(empty_db.url, "head")
    assert await run_sync(empty_db.url, _schema_diff) == []
    head = script_directory().get_current_head()
    assert await run_sync(empty_db.url, _current_revision) == head
    expected = {t.name for t in Base.metadata.sorted_tables} | {ALEMBIC_TABLE}
    assert await run_sync(empty_db.url, _tables) == expected


async def test_downgrade_to_base_leaves_no_tables_and_upgrade_works_again(
    empty_db: EmptyDatabase,
) -> None:
    await migrate(empty_db.url, "head")
    await migrate(empty_db.url, "head")  # already there: a no-op, not an error
    await migrate_down(empty_db.url, "base")
    assert await run_sync(empty_db.url, _tables) - {ALEMBIC_TABLE} == set()
    assert await run_sync(empty_db.url, _current_revision) is None
    await migrate(empty_db.url, "head")
    assert await run_sync(empty_db.url, _schema_diff) == []


async def test_stairway_every_revision_up_down_up(empty_db: EmptyDatabase) -> None:
    for revision in revisions_in_order():
        below = revision.down_revision or "base"
        assert isinstance(below, str), "merge revisions need their own stairway step"
        await migrate(empty_db.url, revision.revision)
        await migrate_down(empty_db.url, below)
        assert await run_sync(empty_db.url, _current_revision) == (
            None if below == "base" else below
        )
        await migrate(empty_db.url, revision.revision)
        assert await run_sync(empty_db.url, _current_revision) == revision.revision
    assert await run_sync(empty_db.url, _schema_diff) == []


async def test_data_survives_upgrade_from_base_to_head(empty_db: EmptyDatabase) -> None:
    state: dict[str, dict[str, Any]] = {}
    for revision in revisions_in_order():
        await migrate(empty_db.url, revision.revision)
        data = MIGRATION_DATA.get(revision.revision)
        if data is not None:
            state[revision.revision] = {}
            await run_sync(empty_db.url, partial(data.load, state=state[revision.revision]))
    await migrate(empty_db.url, "head")

    async def check(engine: AsyncEngine) -> None:
        async with session_factory(engine)() as session:
            for rev, values in state.items():
                await MIGRATION_DATA[rev].check(session, values)

    await with_engine(empty_db.url, check)
