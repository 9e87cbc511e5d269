"""Deleted rows leave the SQLite file, even on a SQLite built with `secure_delete` off.

This machine's SQLite has `secure_delete` on by default, so removing safebot's pragma would
pass every other test here. The engine below first turns it off on each connection (a
listener that runs before safebot's own), as a SQLite with the usual default would be; safebot's
pragma must turn it on again, or the deleted canary is found in the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from storage.db import create_engine, sqlite_url
from storage.dialect import checkpoint

CANARY = "SECURE-DELETE-CANARY-" + os.urandom(6).hex()


def _engine_with_default_off(path: Path) -> Any:
    engine = create_engine(sqlite_url(str(path)))

    def default_off(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA secure_delete=OFF")
        cur.close()

    event.listen(engine.sync_engine, "connect", default_off, insert=True)
    return engine


async def test_the_engine_turns_secure_delete_on(tmp_path: Path) -> None:
    engine = _engine_with_default_off(tmp_path / "pragma.db")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA secure_delete"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_deleted_row_is_gone_from_every_file(tmp_path: Path) -> None:
    path = tmp_path / "canary.db"
    engine = _engine_with_default_off(path)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            # Enough rows that the page with the canary stays in use after the delete.
            for i in range(200):
                value = CANARY if i == 100 else f"filler-{i:04d}-" + "x" * 40
                await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        await checkpoint(engine)
        assert CANARY.encode() in path.read_bytes()  # control: the scan sees it while live
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM t WHERE v = :v"), {"v": CANARY})
        await checkpoint(engine)
    finally:
        await engine.dispose()
    for file in tmp_path.iterdir():
        assert CANARY.encode() not in file.read_bytes(), file.name
