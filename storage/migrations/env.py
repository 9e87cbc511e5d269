"""Alembic environment: migrations run through `connection.run_sync` on an async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import create_engine
from storage.models import Base

MIGRATION_LOCK = 0x5AFEB07  # an advisory lock id of safebot's own
config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        # Processes starting together on a fresh database take turns: the first migrates, the
        # others wait here and then find the schema at head. (SQLite: every transaction of
        # storage.db's engines begins IMMEDIATE, which serialises them the same way.)
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


async def _run_async() -> None:
    # Another process may be migrating the same fresh database: wait for it, however slow.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", busy_timeout_ms=120_000)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
