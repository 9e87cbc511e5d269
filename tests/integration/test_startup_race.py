"""Several processes starting at once on a fresh database: every one of them migrates
without error and the schema ends at head once (the migration takes a lock)."""

from __future__ import annotations

import asyncio
import os
import sys

from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.db import create_engine
from storage.migrate import alembic_config
from tests.integration.support import EmptyDatabase

PROCESSES = 4


async def _migrate_in_processes(url: str) -> list[tuple[int, str]]:
    code = "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        _out, err = await asyncio.wait_for(proc.communicate(), 120)
        results.append((proc.returncode or 0, err.decode(errors="replace")[-2000:]))
    return results


async def test_processes_migrating_together_all_succeed(empty_db: EmptyDatabase) -> None:
    for _round in range(2):  # a fresh database, then one already at head
        results = await _migrate_in_processes(empty_db.url)
        failed = [err for code, err in results if code != 0]
        assert not failed, failed[0]
    engine = create_engine(empty_db.url)
    try:
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(empty_db.url)).get_current_head()
    assert [v for (v,) in versions] == [head]
