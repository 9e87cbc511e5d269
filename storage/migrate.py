"""Run Alembic migrations from code (`safebot migrate`, and `safebot run` at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from storage.db import normalise_url
from storage.opening import prepare_to_create, refuse, sqlite_path

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    with _one_at_a_time(url):
        command.upgrade(alembic_config(url), revision)


@contextlib.contextmanager
def _one_at_a_time(url: str) -> Iterator[None]:
    """Processes migrating one SQLite file take turns (a lock file beside it, owner-only).
    Alembic reads the version table before its transaction takes SQLite's write lock, so two
    processes starting together on a fresh file could both begin at the first revision.
    PostgreSQL takes an advisory lock in env.py instead."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """Migrate to head, creating the database if need be; StorageError (one line) if it
    cannot be opened."""
    prepare_to_create(url)
    try:
        # env.py drives its own event loop; keep it off the caller's.
        await asyncio.to_thread(upgrade, url)
    except (SQLAlchemyError, OSError) as exc:
        raise refuse(url, exc) from None
