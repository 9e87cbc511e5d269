"""`safebot advocates add/list/remove` and `safebot audit verify`, as the real command (a
child process, SQLite), and the passphrase bar of `safebot keys generate`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.integration.test_cli_errors import fails_in_one_line, home, safebot

__all__ = ["home"]
ORG = "test-hub"


def test_advocates_and_the_audit_chain_from_the_command_line(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    added = safebot(home, "advocates", "add", "--org", ORG, "--name", "Ada Admin", "--admin")
    assert added.code == 0, added.err
    link = added.out.splitlines()[-1]
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/portal/setup/[A-Za-z0-9_-]{43}", link)
    advocate_id = added.out.split()[1]
    token = link.rsplit("/", 1)[1]
    db = home / "data" / "safebot.db"
    assert token.encode() not in db.read_bytes()  # only its hash is stored

    public = safebot(
        home,
        "advocates",
        "add",
        "--org",
        ORG,
        "--name",
        "Bea",
        SAFEBOT_PUBLIC_URL="https://p.example/x",
    )
    assert public.out.splitlines()[-1].startswith("https://p.example/portal/setup/")
    listed = safebot(home, "advocates", "list")
    assert "Ada Admin" in listed.out and "Bea" in listed.out and "invited" in listed.out
    fails_in_one_line(
        safebot(home, "advocates", "add", "--org", "nobody", "--name", "X"), "receives requests"
    )

    assert safebot(home, "advocates", "remove", advocate_id).code == 0
    assert "Ada Admin" not in safebot(home, "advocates", "list").out
    fails_in_one_line(safebot(home, "advocates", "remove", advocate_id), "no advocate")

    verified = safebot(home, "audit", "verify")
    assert verified.code == 0 and verified.out.startswith("audit log intact: 3 entries")
    assert len(verified.out.splitlines()) == 1

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET action = 'setup' WHERE seq = 2")
    altered = safebot(home, "audit", "verify")
    assert altered.code == 1 and "entry 2 was altered" in altered.out

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET action = 'advocate_added' WHERE seq = 2")
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    deleted = safebot(home, "audit", "verify")
    assert deleted.code == 1 and "entry 2 is missing" in deleted.out
    assert len(deleted.out.splitlines()) == 1


def test_keys_generate_refuses_a_weak_passphrase(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    (home / "weak.txt").write_text("password1234\n")
    weak = safebot(
        home, "keys", "generate", "--org", ORG, "--out", str(home / "hub.identity"),
        "--passphrase-file", str(home / "weak.txt"),
    )  # fmt: skip
    fails_in_one_line(weak, "passphrase was refused", "too easy to guess")
    assert not (home / "hub.identity").exists()
    (home / "short.txt").write_text("Xq7!\n")
    short = safebot(
        home, "keys", "generate", "--org", ORG, "--out", str(home / "hub.identity"),
        "--passphrase-file", str(home / "short.txt"),
    )  # fmt: skip
    fails_in_one_line(short, "shorter than 12 characters")
