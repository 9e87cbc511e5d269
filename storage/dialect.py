"""Where SQLite and PostgreSQL differ, in one place: every other storage module says what it
wants (insert or ignore, a lock, a delete that reaches the disk, a time in UTC) and this module
says it in the session's dialect.

    conflict_insert(session, model)     INSERT that can say what to do on a conflict
    insert_or_ignore(session, model)    INSERT ... ON CONFLICT DO NOTHING
    skip_locked(session, stmt)          SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL)
    xact_lock(session, key)             a lock held until commit, across processes
    xact_locks(session, keys)           several, taken in ascending order in one statement
    checkpoint(engine)                  deleted bytes leave the disk (SQLite's WAL)
    aware(value)                        a datetime read back, in UTC
    has_table(conn, name)               whether a table exists (is the schema there?)

SQLite serves one process, whose transactions all begin IMMEDIATE (storage.db), so its locks
are the database's write lock and the lock statements here are PostgreSQL's alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.models import Base

S = TypeVar("S", bound=Select[Any])

# Ascending order, one statement: two transactions locking overlapping sets of keys cannot
# deadlock each other.
_XACT_LOCKS = text(
    "SELECT pg_advisory_xact_lock(k) FROM"
    " (SELECT DISTINCT unnest(CAST(:ks AS BIGINT[])) AS k ORDER BY k) AS ordered"
)


def is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def conflict_insert(session: AsyncSession, model: type[Base]) -> Any:
    """`INSERT` in the session's dialect, which can say what to do on a conflict."""
    dialect_insert = pg_insert if is_postgresql(session) else sqlite_insert
    return dialect_insert(cast(Table, model.__table__))


def insert_or_ignore(session: AsyncSession, model: type[Base]) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` in the session's dialect."""
    return conflict_insert(session, model).on_conflict_do_nothing()


def skip_locked(session: AsyncSession, stmt: S) -> S:
    """Rows another process is taking are left to it (PostgreSQL); SQLite has one process."""
    return stmt.with_for_update(skip_locked=True) if is_postgresql(session) else stmt


async def xact_lock(session: AsyncSession, key: int) -> None:
    """Hold lock `key` until this transaction ends."""
    await xact_locks(session, [key])


async def xact_locks(session: AsyncSession, keys: Sequence[int]) -> None:
    if keys and is_postgresql(session):
        await session.execute(_XACT_LOCKS, {"ks": list(keys)})


async def checkpoint(engine: AsyncEngine) -> None:
    """Fold the WAL into the main file and truncate it, so deleted bytes leave the disk (with
    `secure_delete`, set by storage.db, they are overwritten there). PostgreSQL: nothing to do
    here; its deleted tuples go with VACUUM, which the server runs."""
    if is_sqlite(engine):
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes even for timezone-aware columns; they are stored UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def has_table(conn: AsyncConnection, name: str) -> bool:
    if conn.dialect.name == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :t"
    else:
        query = "SELECT to_regclass(:t) IS NOT NULL"
    return bool(await conn.scalar(text(query), {"t": name}))
