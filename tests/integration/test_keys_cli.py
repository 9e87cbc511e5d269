"""`safebot keys generate / list / revoke` as a child process (SQLite): the pin line to paste,
which key new requests go to and whether it is pinned, and revoking."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli_errors import DEPLOYMENT, fails_in_one_line, safebot


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "deployment.toml").write_text(DEPLOYMENT, encoding="utf-8")
    (tmp_path / "pass.txt").write_text("a passphrase for the test\n")
    assert safebot(tmp_path, "migrate").code == 0
    return tmp_path


def generate(home: Path, name: str) -> tuple[str, str]:
    made = safebot(
        home, "keys", "generate", "--org", "test-hub", "--out", str(home / name),
        "--passphrase-file", str(home / "pass.txt"),
    )  # fmt: skip
    assert made.code == 0, made.err
    return made.out.split()[1], made.out.splitlines()[-1]


def hub_rows(home: Path) -> dict[str, list[str]]:
    listed = safebot(home, "keys", "list")
    assert listed.code == 0, listed.err
    return {line.split()[1]: line.split()[5:] for line in listed.out.splitlines()
            if line.startswith("test-hub ")}  # fmt: skip


def test_generate_list_pin_and_revoke(home: Path) -> None:
    key_id, pin = generate(home, "hub.identity")
    assert (
        pin.startswith('key_fingerprints = ["') and len(pin) == len('key_fingerprints = [""]') + 64
    )
    # Registered but not pinned: a real deployment seals nothing to it.
    assert hub_rows(home) == {key_id: ["yes", "NO"]}
    listed = safebot(home, "keys", "list").out
    assert "note: test-hub has NO pinned active key" in listed
    assert "request-signing key: none yet" in listed

    pinned = DEPLOYMENT.replace("keeps = ", f"{pin}\nkeeps = ")
    (home / "deployment.toml").write_text(pinned, encoding="utf-8")
    assert hub_rows(home) == {key_id: ["yes", "yes", "yes"]}

    # A second key: its line keeps the first pin, and new requests go to the newest pinned key.
    second, both = generate(home, "hub-2.identity")
    assert pin[len("key_fingerprints = [") : -1] in both
    (home / "deployment.toml").write_text(
        DEPLOYMENT.replace("keeps = ", f"{both}\nkeeps = "), encoding="utf-8"
    )
    old = ["old", "(opens", "earlier", "requests)"]
    assert hub_rows(home) == {key_id: ["yes", "yes", *old], second: ["yes", "yes", "yes"]}

    revoked = safebot(home, "keys", "revoke", "--key-id", second)
    assert revoked.code == 0, revoked.err
    assert f"key {second} of test-hub revoked" in revoked.out
    assert "remove " in revoked.out  # its pin should go too
    assert hub_rows(home) == {key_id: ["yes", "yes", "yes"], second: ["revoked", "yes"]}

    revoked = safebot(home, "keys", "revoke", "--key-id", key_id)
    assert "test-hub has no key left for new requests" in revoked.out
    check = safebot(home, "check")
    assert check.code == 1 and "has no active key" in check.out

    assert fails_in_one_line(safebot(home, "keys", "revoke", "--key-id", "nope")) == (
        "safebot: no key 'nope' is registered (`safebot keys list`)"
    )
