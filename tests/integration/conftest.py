"""Storage integration fixtures: every test runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL: each test gets a database of its own (`CREATE DATABASE safebot_test_<run>_<n>`,
made through asyncpg on the `test` database and dropped afterwards), because Alembic
migrations need an empty database and tests must not see each other's rows. When no server
answers within 2 s the PostgreSQL variants are skipped, with the reason.

Set SAFEBOT_TEST_PG_DSN to point at another server (default
postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from storage.db import create_engine, session_factory, sqlite_url
from storage.migrate import upgrade_async
from tests.integration.support import Database, EmptyDatabase

PG_ADMIN_DSN = os.environ.get("SAFEBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_CONNECT_TIMEOUT = 2.0
DB_KINDS = ("sqlite", "postgresql")

_RUN_ID = secrets.token_hex(4)
_counter = itertools.count(1)


def _shown_dsn() -> str:
    parts = urlsplit(PG_ADMIN_DSN)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}@{host}" if user else host, parts.path, "", ""))


def _pg_url(dbname: str) -> str:
    parts = urlsplit(PG_ADMIN_DSN)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{dbname}", parts.query, ""))


async def _probe_postgres() -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=PG_CONNECT_TIMEOUT)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc or f'no answer within {PG_CONNECT_TIMEOUT:g} s'}"
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_unavailable() -> Iterator[str | None]:
    """Probe once per session; at the end drop any database this run left behind."""
    reason = asyncio.run(_probe_postgres())
    yield reason
    if reason is None:
        asyncio.run(_drop_leftovers())


async def _drop_leftovers() -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=PG_CONNECT_TIMEOUT)
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            f"safebot_test_{_RUN_ID}_%",
        )
        for row in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=PG_CONNECT_TIMEOUT)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=DB_KINDS)
async def empty_db(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_unavailable: str | None
) -> AsyncIterator[EmptyDatabase]:
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "safebot.db"
        yield EmptyDatabase(kind, sqlite_url(str(path)), path)
        return
    if postgres_unavailable is not None:
        pytest.skip(f"PostgreSQL not reachable at {_shown_dsn()}: {postgres_unavailable}")
    name = f"safebot_test_{_RUN_ID}_{next(_counter)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield EmptyDatabase(kind, _pg_url(name))
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(empty_db: EmptyDatabase) -> AsyncIterator[Database]:
    """Migrated to head with Alembic (the schema production runs on, not `create_all`)."""
    await upgrade_async(empty_db.url)
    engine = create_engine(empty_db.url)
    try:
        yield Database(empty_db.kind, empty_db.url, engine, session_factory(engine), empty_db.path)
    finally:
        await engine.dispose()
