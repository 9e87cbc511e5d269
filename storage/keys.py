"""Private keys at rest: an organisation's identity file, protected by a passphrase.

An identity file holds one :class:`storage.sealing.RecipientPrivateKey` (a 32-byte seed),
encrypted with a key derived from a passphrase by Argon2id, in a small JSON document::

    {
      "format": "safebot-identity-v1",
      "org": "...", "key_id": "...", "suite": "...",
      "public_key": "safebot-pk1:...",          # lets tools read it without the passphrase
      "created_at": "2025-01-01T12:00:00+00:00",
      "kdf": {"name": "argon2id", "memory_cost_kib": 65536, "iterations": 3, "lanes": 4,
              "salt": "<base64>"},
      "cipher": {"name": "chacha20-poly1305", "nonce": "<base64>"},
      "ciphertext": "<base64>"
    }

Every field but ``ciphertext`` is the AEAD's associated data (as canonical JSON), so a
changed org, key id, suite, public key or KDF parameter makes the file fail to unlock.
Fields read *without* the passphrase (:func:`identity_file_org` and friends) are not
authenticated until the file is unlocked.

Argon2id with the default parameters (64 MiB, 3 passes, 4 lanes) costs about 0.1-0.3 s of
CPU and 64 MiB of memory. :func:`wrap_private_key` and :func:`unwrap_private_key` block:
from async code call them in a thread, e.g.
``await asyncio.to_thread(unwrap_private_key, data, passphrase)``.

Functions that touch the file system are the last three in this module
(:func:`write_identity_file`, :func:`read_identity_file`, :func:`read_passphrase_file`);
everything else works on bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from storage.errors import KeyUnlockError, SealingError, StorageError
from storage.sealing import RecipientPrivateKey, RecipientPublicKey, public_key_of

__all__ = [
    "IDENTITY_FORMAT",
    "IdentityFileExistsError",
    "KdfParams",
    "identity_file_key_id",
    "identity_file_org",
    "identity_file_public_key",
    "read_identity_file",
    "read_passphrase_file",
    "unwrap_private_key",
    "wrap_private_key",
    "write_identity_file",
]

IDENTITY_FORMAT: Final = "safebot-identity-v1"
_KDF_NAME: Final = "argon2id"
_CIPHER_NAME: Final = "chacha20-poly1305"
_SALT_BYTES: Final = 16
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32
_MAX_FILE_BYTES: Final = 64 * 1024

# Upper bounds for parameters read from a file, so a damaged or hostile file cannot make
# the unlocking process allocate gigabytes or spin for minutes.
_MAX_MEMORY_COST_KIB: Final = 4 * 1024 * 1024  # 4 GiB
_MAX_ITERATIONS: Final = 64
_MAX_LANES: Final = 64

_TOP_FIELDS: Final = frozenset(
    {"format", "org", "key_id", "suite", "public_key", "created_at", "kdf", "cipher", "ciphertext"}
)
_KDF_FIELDS: Final = frozenset({"name", "memory_cost_kib", "iterations", "lanes", "salt"})
_CIPHER_FIELDS: Final = frozenset({"name", "nonce"})

_MSG_WRONG_PASSPHRASE: Final = "wrong passphrase or damaged key file"


class IdentityFileExistsError(StorageError, FileExistsError):
    """Refused to overwrite an existing identity file."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters. Tests may pass cheap ones; files record what was used."""

    memory_cost_kib: int = 65536
    iterations: int = 3
    lanes: int = 4

    def __post_init__(self) -> None:
        for name in ("memory_cost_kib", "iterations", "lanes"):
            value = getattr(self, name)
            if type(value) is not int:
                raise StorageError(f"KDF parameter {name} must be an integer")
        if not 1 <= self.lanes <= _MAX_LANES:
            raise StorageError(f"KDF lanes must be between 1 and {_MAX_LANES}")
        if not 1 <= self.iterations <= _MAX_ITERATIONS:
            raise StorageError(f"KDF iterations must be between 1 and {_MAX_ITERATIONS}")
        if not 8 * self.lanes <= self.memory_cost_kib <= _MAX_MEMORY_COST_KIB:
            raise StorageError(
                f"KDF memory cost must be between 8 * lanes and {_MAX_MEMORY_COST_KIB} KiB"
            )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise KeyUnlockError(f"damaged key file: {what} is missing")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise KeyUnlockError(f"damaged key file: {what} is not base64") from None
    if length is not None and len(raw) != length:
        raise KeyUnlockError(f"damaged key file: {what} has the wrong length")
    return raw


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _associated_data(doc: dict[str, Any]) -> bytes:
    return _canonical({k: v for k, v in doc.items() if k != "ciphertext"})


def _derive(passphrase: bytes, salt: bytes, params: KdfParams) -> bytes:
    try:
        return Argon2id(
            salt=salt,
            length=_KEY_BYTES,
            iterations=params.iterations,
            lanes=params.lanes,
            memory_cost=params.memory_cost_kib,
        ).derive(passphrase)
    except Exception as exc:  # UnsupportedAlgorithm, MemoryError, ...
        raise KeyUnlockError("could not derive the key-file key (Argon2id failed)") from exc


def _check_passphrase(passphrase: bytes, error: type[StorageError]) -> None:
    if not isinstance(passphrase, bytes):
        raise error("passphrase must be bytes")
    if not passphrase:
        raise error("refusing an empty passphrase")


def wrap_private_key(
    key: RecipientPrivateKey,
    passphrase: bytes,
    *,
    org: str,
    params: KdfParams = KdfParams(),
    created_at: datetime | None = None,
) -> bytes:
    """Encrypt ``key`` under ``passphrase``; returns the identity file's contents (UTF-8 JSON).

    Blocking and CPU/memory-heavy (Argon2id): run it in a thread from async code.
    Raises :class:`StorageError` for an empty passphrase or a bad argument.
    """
    _check_passphrase(passphrase, StorageError)
    if not isinstance(key, RecipientPrivateKey):
        raise StorageError("key must be a RecipientPrivateKey")
    if not isinstance(org, str) or not org.strip():
        raise StorageError("org must be a non-empty string")
    when = datetime.now(UTC) if created_at is None else created_at
    if when.tzinfo is None or when.utcoffset() is None:
        raise StorageError("created_at must be timezone-aware")
    try:
        public = public_key_of(key)
    except SealingError as exc:
        raise StorageError(f"cannot protect this key: {exc}") from exc
    salt = secrets.token_bytes(_SALT_BYTES)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    doc: dict[str, Any] = {
        "format": IDENTITY_FORMAT,
        "org": org,
        "key_id": key.key_id,
        "suite": key.suite,
        "public_key": public.to_text(),
        "created_at": when.astimezone(UTC).isoformat(timespec="seconds"),
        "kdf": {
            "name": _KDF_NAME,
            "memory_cost_kib": params.memory_cost_kib,
            "iterations": params.iterations,
            "lanes": params.lanes,
            "salt": _b64(salt),
        },
        "cipher": {"name": _CIPHER_NAME, "nonce": _b64(nonce)},
    }
    wrapping_key = _derive(passphrase, salt, params)
    ciphertext = ChaCha20Poly1305(wrapping_key).encrypt(nonce, key.seed, _associated_data(doc))
    doc["ciphertext"] = _b64(ciphertext)
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def _load(data: bytes) -> dict[str, Any]:
    """Parse and shape-check an identity file (nothing is authenticated yet)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise KeyUnlockError("identity file contents must be bytes")
    if len(data) > _MAX_FILE_BYTES:
        raise KeyUnlockError("not a safebot identity file (too large)")
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise KeyUnlockError("not a safebot identity file (not JSON)") from None
    if not isinstance(doc, dict) or "format" not in doc:
        raise KeyUnlockError("not a safebot identity file")
    if doc["format"] != IDENTITY_FORMAT:
        raise KeyUnlockError(f"unsupported identity file format {str(doc['format'])[:40]!r}")
    if set(doc) != _TOP_FIELDS:
        raise KeyUnlockError("damaged key file: unexpected or missing fields")
    for name in ("org", "key_id", "suite", "public_key", "created_at", "ciphertext"):
        if not isinstance(doc[name], str) or not doc[name]:
            raise KeyUnlockError(f"damaged key file: {name} is missing")
    kdf, cipher = doc["kdf"], doc["cipher"]
    if not isinstance(kdf, dict) or set(kdf) != _KDF_FIELDS or kdf["name"] != _KDF_NAME:
        raise KeyUnlockError("damaged key file: unsupported or malformed kdf")
    if (
        not isinstance(cipher, dict)
        or set(cipher) != _CIPHER_FIELDS
        or cipher["name"] != _CIPHER_NAME
    ):
        raise KeyUnlockError("damaged key file: unsupported or malformed cipher")
    return doc


def _kdf_params(doc: dict[str, Any]) -> KdfParams:
    kdf = doc["kdf"]
    try:
        return KdfParams(
            memory_cost_kib=kdf["memory_cost_kib"],
            iterations=kdf["iterations"],
            lanes=kdf["lanes"],
        )
    except StorageError as exc:
        raise KeyUnlockError(f"damaged key file: {exc}") from None


def unwrap_private_key(
    data: bytes, passphrase: bytes, *, expected_org: str | None = None
) -> RecipientPrivateKey:
    """Unlock an identity file. Blocking and CPU/memory-heavy: run it in a thread.

    Raises :class:`KeyUnlockError` for a wrong passphrase, an altered or damaged file, or
    (when ``expected_org`` is given) a file that belongs to another organisation.
    """
    _check_passphrase(passphrase, KeyUnlockError)
    doc = _load(data)
    if expected_org is not None and doc["org"] != expected_org:
        raise KeyUnlockError("key file belongs to another organisation")
    params = _kdf_params(doc)
    salt = _unb64(doc["kdf"]["salt"], "salt")
    if len(salt) < 8:
        raise KeyUnlockError("damaged key file: salt is too short")
    nonce = _unb64(doc["cipher"]["nonce"], "nonce", _NONCE_BYTES)
    ciphertext = _unb64(doc["ciphertext"], "ciphertext")
    wrapping_key = _derive(passphrase, salt, params)
    try:
        seed = ChaCha20Poly1305(wrapping_key).decrypt(nonce, ciphertext, _associated_data(doc))
    except InvalidTag:
        raise KeyUnlockError(_MSG_WRONG_PASSPHRASE) from None
    # Authenticated from here on; still check the file is self-consistent.
    try:
        key = RecipientPrivateKey(key_id=doc["key_id"], suite=doc["suite"], seed=seed)
        public = public_key_of(key)
        stated = RecipientPublicKey.from_text(doc["public_key"])
    except SealingError as exc:
        raise KeyUnlockError(f"key file is inconsistent: {exc}") from None
    if stated != public:
        raise KeyUnlockError("key file is inconsistent: public key does not match")
    return key


def identity_file_org(data: bytes) -> str:
    """The organisation an identity file claims (not authenticated until unlocked)."""
    return str(_load(data)["org"])


def identity_file_key_id(data: bytes) -> str:
    """The key id an identity file claims (not authenticated until unlocked)."""
    return str(_load(data)["key_id"])


def identity_file_public_key(data: bytes) -> RecipientPublicKey:
    """The public key recorded in an identity file (not authenticated until unlocked)."""
    try:
        return RecipientPublicKey.from_text(_load(data)["public_key"])
    except SealingError as exc:
        raise KeyUnlockError(f"damaged key file: {exc}") from None


# --------------------------------------------------------------------------------------
# File system: everything above works on bytes; only these functions touch files.
# --------------------------------------------------------------------------------------


def write_identity_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0o600 and write ``data``; never overwrites.

    Raises :class:`IdentityFileExistsError` (a :class:`StorageError` and a
    :class:`FileExistsError`) if the path exists, even as a dangling symlink.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise IdentityFileExistsError(
            f"refusing to overwrite existing identity file {path}"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def read_identity_file(path: Path) -> bytes:
    """Read an identity file's contents (unlock them with :func:`unwrap_private_key`)."""
    with path.open("rb") as handle:
        data = handle.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise KeyUnlockError("not a safebot identity file (too large)")
    return data


def read_passphrase_file(path: Path) -> bytes:
    """Read a passphrase file, dropping one trailing newline (``\\n`` or ``\\r\\n``)."""
    data = path.read_bytes()
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise StorageError(f"passphrase file {path} is empty")
    return data
