"""Opening the database for a command, with one clear error instead of a traceback.

Only `safebot run`, `safebot migrate` (and the terminal chat, which is `run` without Telegram)
create a database. Every other command needs one that exists and is migrated: a misspelt
DATABASE_URL or SAFEBOT_DATA_DIR must not answer "0 requests" from a new, empty database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import create_engine, normalise_url, owner_only, session_factory
from storage.dialect import has_table
from storage.errors import StorageError

DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
NOT_MIGRATED = "no database at {where}; run `safebot migrate` or `safebot run` first"


def parse_url(url: str) -> URL:
    """DATABASE_URL as SQLAlchemy reads it, or StorageError naming the accepted forms."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        parsed = None
    if parsed is None or parsed.drivername not in DRIVERS:
        raise StorageError(
            "DATABASE_URL is not a database safebot can use: give sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        )
    return parsed


def where(url: str) -> str:
    """The database for messages: the file, or host/db (never the password)."""
    parsed = parse_url(url)
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def sqlite_path(url: str) -> Path | None:
    parsed = parse_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    name = parsed.database or ""
    return None if name in ("", ":memory:") or name.startswith("file:") else Path(name)


def reason(exc: BaseException) -> str:
    """One line saying why a connection failed (the driver's words, no SQL, no parameters)."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError) and cause.strerror:
        said = cause.strerror
    else:
        said = str(cause).strip() or type(cause).__name__
    return said.splitlines()[0]


def refuse(url: str, exc: BaseException) -> StorageError:
    return StorageError(f"cannot open the database at {where(url)}: {reason(exc)}")


def prepare_to_create(url: str) -> None:
    """Before `run` or `migrate`: a SQLite file may be created, but only in a directory
    that exists (the data directory is made by the caller); existing files are made
    owner-only."""
    path = sqlite_path(url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot create the database at {path}: directory {path.parent} does not exist"
        )
    owner_only(str(path))


async def require_existing(url: str) -> None:
    """StorageError unless the database exists and has been migrated; never creates one."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(NOT_MIGRATED.format(where=path))
    if path is None and parse_url(url).drivername.startswith("sqlite"):
        return  # in memory: nothing to find
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            migrated = await has_table(conn, "alembic_version")
    except (SQLAlchemyError, OSError) as exc:
        raise refuse(url, exc) from None
    finally:
        await engine.dispose()
    if not migrated:
        raise StorageError(NOT_MIGRATED.format(where=where(url)))


@asynccontextmanager
async def existing_database(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database at `url`, for a CLI command that only reads or adds to it:
    StorageError (one clear line) unless it exists and is migrated, as `require_existing`."""
    await require_existing(url)
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
