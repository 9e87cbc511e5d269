"""One owner of the dialect differences (issue 11): only storage/dialect.py (statements) and
storage/db.py (the engines and their pragmas) may speak SQLite's or PostgreSQL's own language.
Every other module asks them: insert or ignore, a lock, a delete that reaches the disk, UTC."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
OWNERS = {"storage/dialect.py", "storage/db.py"}
# What only a dialect's owner may say.
DIALECT_WORDS = re.compile(
    r"sqlalchemy\.dialects|pg_advisory|wal_checkpoint|dialect\.name|PRAGMA|BEGIN IMMEDIATE"
)


def modules() -> list[Path]:
    out = []
    for package in ("bot", "flows", "storage"):
        out += [p for p in (REPO / package).rglob("*.py") if "migrations" not in p.parts]
    return out


def test_only_the_owners_speak_a_dialect() -> None:
    speaking = {
        str(p.relative_to(REPO)): sorted(set(DIALECT_WORDS.findall(p.read_text("utf-8"))))
        for p in modules()
    }
    strays = {path: words for path, words in speaking.items() if words and path not in OWNERS}
    assert strays == {}


def test_the_check_sees_a_stray() -> None:
    assert DIALECT_WORDS.search("from sqlalchemy.dialects.postgresql import insert")
    assert DIALECT_WORDS.search('text("SELECT pg_advisory_xact_lock(:k)")')
    assert not DIALECT_WORDS.search("from storage.dialect import insert_or_ignore")
