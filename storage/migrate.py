"""Run Alembic migrations from code (`safebot migrate`, and `safebot run` at start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from storage.db import normalise_url
from storage.opening import prepare_to_create, refuse

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


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
