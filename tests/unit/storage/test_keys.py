"""Tests for storage.keys: passphrase-protected identity files."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage.errors import KeyUnlockError, StorageError
from storage.keys import (
    IDENTITY_FORMAT,
    IdentityFileExistsError,
    KdfParams,
    identity_file_key_id,
    identity_file_org,
    identity_file_public_key,
    read_identity_file,
    read_passphrase_file,
    unwrap_private_key,
    wrap_private_key,
    write_identity_file,
)
from storage.sealing import (
    SUITE_HYBRID,
    SUITE_X25519,
    RecipientPrivateKey,
    SealContext,
    generate_keypair,
    hybrid_supported,
    open_sealed,
    public_key_of,
    seal,
)

CHEAP = KdfParams(memory_cost_kib=64, iterations=1, lanes=1)
PASSPHRASE = b"correct horse battery staple"
SUITES = [
    pytest.param(
        SUITE_HYBRID, marks=pytest.mark.skipif(not hybrid_supported(), reason="no ML-KEM")
    ),
    SUITE_X25519,
]


@pytest.fixture(params=SUITES)
def private(request: pytest.FixtureRequest) -> RecipientPrivateKey:
    suite: str = request.param
    return generate_keypair(suite)[0]


@pytest.fixture
def wrapped(private: RecipientPrivateKey) -> bytes:
    return wrap_private_key(private, PASSPHRASE, org="org-a", params=CHEAP)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def edit(data: bytes, change: dict[str, Any], section: str | None = None) -> bytes:
    doc = json.loads(data)
    (doc if section is None else doc[section]).update(change)
    return json.dumps(doc).encode()


# --------------------------------------------------------------------------------------
# Wrap / unwrap
# --------------------------------------------------------------------------------------


def test_round_trip(private: RecipientPrivateKey, wrapped: bytes) -> None:
    assert unwrap_private_key(wrapped, PASSPHRASE) == private
    assert unwrap_private_key(wrapped, PASSPHRASE, expected_org="org-a") == private
    assert identity_file_org(wrapped) == "org-a"
    assert identity_file_key_id(wrapped) == private.key_id
    assert identity_file_public_key(wrapped) == public_key_of(private)


def test_file_contents(private: RecipientPrivateKey, wrapped: bytes) -> None:
    doc = json.loads(wrapped)
    assert doc["format"] == IDENTITY_FORMAT
    assert doc["suite"] == private.suite
    assert doc["kdf"] == {
        "name": "argon2id",
        "memory_cost_kib": 64,
        "iterations": 1,
        "lanes": 1,
        "salt": doc["kdf"]["salt"],
    }
    assert doc["cipher"]["name"] == "chacha20-poly1305"
    assert private.seed.hex() not in wrapped.decode()
    assert datetime.fromisoformat(doc["created_at"]).tzinfo is not None
    # Two wraps of the same key differ (fresh salt and nonce).
    again = wrap_private_key(private, PASSPHRASE, org="org-a", params=CHEAP)
    assert json.loads(again)["ciphertext"] != doc["ciphertext"]


def test_unwrapped_key_opens_envelopes(private: RecipientPrivateKey, wrapped: bytes) -> None:
    context = SealContext(request_id="r1", org="org-a", created_at=datetime.now(UTC))
    envelope = seal(b"hello", public_key_of(private), context)
    unlocked = unwrap_private_key(wrapped, PASSPHRASE)
    assert open_sealed(envelope, [unlocked], context) == b"hello"


def test_default_parameters_work() -> None:
    assert KdfParams() == KdfParams(memory_cost_kib=65536, iterations=3, lanes=4)
    key, _ = generate_keypair(SUITE_X25519)
    data = wrap_private_key(key, PASSPHRASE, org="org-a")
    assert json.loads(data)["kdf"]["memory_cost_kib"] == 65536
    assert unwrap_private_key(data, PASSPHRASE) == key


async def test_unwrap_off_the_event_loop(wrapped: bytes, private: RecipientPrivateKey) -> None:
    assert await asyncio.to_thread(unwrap_private_key, wrapped, PASSPHRASE) == private


def test_wrong_passphrase(wrapped: bytes) -> None:
    for wrong in (b"correct horse battery stapler", PASSPHRASE + b"\n", b"x"):
        with pytest.raises(KeyUnlockError, match="wrong passphrase or damaged key file"):
            unwrap_private_key(wrapped, wrong)


def test_empty_passphrase_refused(private: RecipientPrivateKey, wrapped: bytes) -> None:
    with pytest.raises(StorageError, match="empty passphrase"):
        wrap_private_key(private, b"", org="org-a", params=CHEAP)
    with pytest.raises(KeyUnlockError, match="empty passphrase"):
        unwrap_private_key(wrapped, b"")


def test_wrong_org_expected(wrapped: bytes) -> None:
    with pytest.raises(KeyUnlockError, match="another organisation"):
        unwrap_private_key(wrapped, PASSPHRASE, expected_org="org-b")


@pytest.mark.parametrize(
    ("section", "change"),
    [
        (None, {"org": "org-b"}),
        (None, {"key_id": "0123456789abcdef"}),
        (None, {"created_at": "2020-01-01T00:00:00+00:00"}),
        ("kdf", {"iterations": 2}),
        ("kdf", {"memory_cost_kib": 128}),
        ("kdf", {"salt": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        ("cipher", {"nonce": "AAAAAAAAAAAAAAAA"}),
    ],
    ids=["org", "key_id", "created_at", "iterations", "memory", "salt", "nonce"],
)
def test_altered_fields_do_not_unlock(
    wrapped: bytes, section: str | None, change: dict[str, Any]
) -> None:
    with pytest.raises(KeyUnlockError, match="wrong passphrase or damaged key file"):
        unwrap_private_key(edit(wrapped, change, section), PASSPHRASE)


def test_altered_suite_or_public_key_do_not_unlock(private: RecipientPrivateKey) -> None:
    other_suite = SUITE_X25519 if private.suite == SUITE_HYBRID else SUITE_HYBRID
    other_public = generate_keypair(private.suite)[1].to_text()
    data = wrap_private_key(private, PASSPHRASE, org="org-a", params=CHEAP)
    for change in ({"suite": other_suite}, {"public_key": other_public}):
        with pytest.raises(KeyUnlockError):
            unwrap_private_key(edit(data, change), PASSPHRASE)


def test_altered_ciphertext_does_not_unlock(wrapped: bytes) -> None:
    doc = json.loads(wrapped)
    raw = bytearray(base64.b64decode(doc["ciphertext"]))
    raw[0] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(KeyUnlockError, match="wrong passphrase or damaged key file"):
        unwrap_private_key(json.dumps(doc).encode(), PASSPHRASE)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "too large"),
        (b"[" * 50_000, "not JSON"),
        (b"[]", "not a safebot identity file"),
        (b'{"format": "safebot-identity-v9"}', "unsupported identity file format"),
        (b'{"format": "safebot-identity-v1"}', "unexpected or missing fields"),
    ],
)
def test_garbage_files(data: bytes, message: str) -> None:
    with pytest.raises(KeyUnlockError, match=message):
        unwrap_private_key(data, PASSPHRASE)
    with pytest.raises(KeyUnlockError):
        identity_file_org(data)


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        (None, {"extra": 1}, "unexpected or missing fields"),
        (None, {"org": 7}, "org is missing"),
        ("kdf", {"name": "scrypt"}, "kdf"),
        ("cipher", {"name": "aes-256-gcm"}, "cipher"),
        ("kdf", {"memory_cost_kib": 2**40}, "memory cost"),
        ("kdf", {"iterations": 10_000}, "iterations"),
        ("kdf", {"lanes": 0}, "lanes"),
        ("kdf", {"iterations": 1.5}, "integer"),
        ("kdf", {"iterations": True}, "integer"),
        ("kdf", {"salt": "not base64!"}, "salt is not base64"),
        ("kdf", {"salt": "AAAA"}, "salt is too short"),
        ("cipher", {"nonce": "AAAA"}, "nonce has the wrong length"),
    ],
)
def test_damaged_files_fail_before_argon2(
    wrapped: bytes, section: str | None, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(KeyUnlockError, match=message):
        unwrap_private_key(edit(wrapped, change, section), PASSPHRASE)


def test_kdf_params_validation() -> None:
    with pytest.raises(StorageError, match="memory cost"):
        KdfParams(memory_cost_kib=8, iterations=1, lanes=4)
    with pytest.raises(StorageError, match="iterations"):
        KdfParams(iterations=0)


def test_wrap_argument_checks(private: RecipientPrivateKey) -> None:
    with pytest.raises(StorageError, match="org"):
        wrap_private_key(private, PASSPHRASE, org=" ", params=CHEAP)
    with pytest.raises(StorageError, match="timezone-aware"):
        wrap_private_key(
            private, PASSPHRASE, org="o", params=CHEAP, created_at=datetime(2025, 1, 1)
        )


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_zero")
def test_write_identity_file_is_private_and_never_overwrites(
    tmp_path: Path, wrapped: bytes
) -> None:
    path = tmp_path / "org-a.identity"
    write_identity_file(path, wrapped)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_identity_file(path) == wrapped
    with pytest.raises(IdentityFileExistsError, match="refusing to overwrite") as info:
        write_identity_file(path, b"something else")
    assert isinstance(info.value, StorageError)
    assert isinstance(info.value, FileExistsError)
    assert path.read_bytes() == wrapped


def test_write_identity_file_refuses_symlinks(tmp_path: Path, wrapped: bytes) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "identity"
    link.symlink_to(target)  # dangling
    with pytest.raises(IdentityFileExistsError):
        write_identity_file(link, wrapped)
    assert not target.exists()


def test_read_passphrase_file(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    for content, expected in [
        (b"secret\n", b"secret"),
        (b"secret", b"secret"),
        (b"secret\r\n", b"secret"),
        (b"secret\n\n", b"secret\n"),
        (b" spaced secret \n", b" spaced secret "),
    ]:
        path.write_bytes(content)
        assert read_passphrase_file(path) == expected
    for empty in (b"", b"\n"):
        path.write_bytes(empty)
        with pytest.raises(StorageError, match="empty"):
            read_passphrase_file(path)


def test_file_round_trip(tmp_path: Path, private: RecipientPrivateKey) -> None:
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    passphrase = read_passphrase_file(tmp_path / "pass")
    write_identity_file(
        tmp_path / "id.json", wrap_private_key(private, passphrase, org="org-a", params=CHEAP)
    )
    data = read_identity_file(tmp_path / "id.json")
    assert unwrap_private_key(data, read_passphrase_file(tmp_path / "pass")) == private
