"""Engine factory. SQLite by default (aiosqlite), PostgreSQL (asyncpg) by DATABASE_URL.

Every SQLite connection gets WAL (readers don't block the writer), a busy timeout,
foreign keys and `secure_delete` (deleted rows are overwritten with zeros). With WAL the old
bytes survive in the -wal file until a checkpoint, so `checkpoint()` runs after every purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.dialect import is_sqlite


def sqlite_url(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` and `sqlite:///` spellings and pick async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def owner_only(path: str) -> None:
    """Make a SQLite file and its -wal and -shm owner-only (0600): they hold hashed ids and
    sealed rows. SQLite gives a -wal or -shm it makes later the main file's mode."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)


def create_engine(url: str, *, busy_timeout_ms: int = 5000, **kwargs: Any) -> AsyncEngine:
    """`busy_timeout_ms` (SQLite): how long a writer waits for another process's lock; the
    migrations, which several processes may start at once, wait longer."""
    url = normalise_url(url)
    # SQL errors would otherwise quote bound parameters into exception text, and so into logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # One connection: SQLite takes one writer at a time anyway, and several connections
        # of one process only queue on its file lock, sleeping in the busy handler (measured:
        # 72 turns/s with a pool of five against several hundred with one). Sessions queue on
        # the pool instead, in order, without sleeping.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", 60)
        engine = create_async_engine(url, **kwargs)
        database = make_url(url).database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Transactions are begun by SQLAlchemy (below), not by the driver's guesswork.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            for pragma in (
                # The busy timeout first: switching to WAL needs the file's lock, which another
                # process starting at the same moment may hold.
                f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
                "PRAGMA journal_mode=WAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA secure_delete=ON",
                "PRAGMA synchronous=FULL",
            ):
                cur.execute(pragma)
            cur.close()
            if on_disk:  # whatever the umask was when the file was made
                owner_only(database)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return  # checkpoints run outside any transaction
            # Take the write lock at the start: a turn reads, then writes, and a deferred
            # transaction that another writer overtook fails at once with SQLITE_BUSY instead
            # of waiting its turn under busy_timeout.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


POLLER_LOCK = 0x5AFEB08  # held by the one process that polls Telegram


@asynccontextmanager
async def leadership(engine: AsyncEngine, key: int, retry: float = 2.0) -> AsyncIterator[None]:
    """Wait until this process holds the session-level advisory lock `key` (PostgreSQL), and
    hold it until the block ends or the connection dies, whereupon another process takes
    over. On SQLite there is one process: it leads at once."""
    if is_sqlite(engine):
        yield
        return
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        query = text("SELECT pg_try_advisory_lock(:k)")
        while True:  # polled: another process may die at any time, and nothing signals it
            if (await auto.execute(query, {"k": key})).scalar():
                break
            await asyncio.sleep(retry)
        try:
            yield
        finally:
            await auto.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
