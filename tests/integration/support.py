"""Helpers shared by the storage integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.models import Base, ContactRequest, Conversation, OrganisationKey
from storage.sealing import RecipientPublicKey

UTC = dt.UTC

# Run a test on one dialect only (instead of skipping on the other): `@only_postgresql`.
only_postgresql = pytest.mark.parametrize("empty_db", ["postgresql"], indirect=True)
only_sqlite = pytest.mark.parametrize("empty_db", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class EmptyDatabase:
    """A database with no tables yet."""

    kind: str  # "sqlite" | "postgresql"
    url: str
    path: Path | None = None  # the SQLite file


@dataclass(frozen=True)
class Database:
    """A migrated database, an engine on it and a session factory."""

    kind: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    path: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.kind == "postgresql"


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are stored UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def org_key_row(
    org: str, public: RecipientPublicKey, created_at: dt.datetime, *, active: bool = True
) -> OrganisationKey:
    return OrganisationKey(
        key_id=public.key_id,
        organisation=org,
        suite=public.suite,
        public_key=public.to_text(),
        created_at=created_at,
        active=active,
    )


def conversation(
    chat_key: str,
    at: dt.datetime,
    *,
    step: str = "menu",
    expires_in: dt.timedelta = dt.timedelta(hours=6),
    draft: bytes | None = None,
    draft_expires_in: dt.timedelta | None = None,
) -> Conversation:
    return Conversation(
        chat_key=chat_key,
        step=step,
        language="en",
        seq=3,
        editing=False,
        flow_version=1,
        draft=draft,
        draft_expires_at=None if draft_expires_in is None else at + draft_expires_in,
        updated_at=at,
        expires_at=at + expires_in,
    )


def contact_request(
    request_id: str,
    at: dt.datetime,
    *,
    status: str = "new",
    owner_key: str = "owner",
    delete_after: dt.datetime | None = None,
    closed_at: dt.datetime | None = None,
    envelope: bytes = b"SB-not-really-sealed",
    reference_hash: str | None = None,
) -> ContactRequest:
    """A row written directly (not sealed): for retention and forget tests only."""
    return ContactRequest(
        id=request_id,
        organisation="org-a",
        language="en",
        created_at=at,
        status=status,
        urgent=False,
        key_id="kid",
        envelope=envelope,
        reference_hash=reference_hash or f"ref-{request_id}",
        owner_key=owner_key,
        closed_at=closed_at,
        delete_after=delete_after or at + dt.timedelta(days=30),
    )


async def all_values(session: AsyncSession) -> list[tuple[str, str, object]]:
    """(table, column, value) for every cell of every table the models know."""
    cells: list[tuple[str, str, object]] = []
    for table in Base.metadata.sorted_tables:
        result = await session.execute(select(table))
        for row in result.mappings():
            cells.extend((table.name, column, value) for column, value in row.items())
    return cells


def cells_containing(cells: Iterable[tuple[str, str, object]], needle: str) -> list[str]:
    """Where `needle` shows up, as text or as bytes (utf-8), in any cell."""
    raw = needle.encode()
    found = []
    for table, column, value in cells:
        if value is None:
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            hit = raw in bytes(value)
        else:
            hit = needle in str(value)
        if hit:
            found.append(f"{table}.{column}")
    return found


def sqlite_files(path: Path) -> dict[str, bytes]:
    """Raw bytes of the database file and its -wal and -shm companions (when present)."""
    out = {}
    for suffix in ("", "-wal", "-shm"):
        f = Path(f"{path}{suffix}")
        if f.exists():
            out[f.name] = f.read_bytes()
    return out


def files_containing(files: dict[str, bytes], needle: bytes) -> list[str]:
    return [name for name, data in files.items() if needle in data]
