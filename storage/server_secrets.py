"""Server secrets: from the environment, or generated on first run into the secrets folder
(SAFEBOT_SECRETS_DIR; by default the data directory).

Files are created owner-only (0600) and never overwritten. Losing one must not crash the bot:
state keyed or encrypted under the old secret simply stops matching and expires.
"""

from __future__ import annotations

import base64
import os
import secrets as _random
from pathlib import Path

from storage.errors import SealingError, StorageError
from storage.signing import SigningKey

SIGNING_KEY_NAME = "request-signing"  # the file: <secrets dir>/request-signing.key
# Every secret kept as a file when the environment does not give it, with that variable.
SECRET_FILES = {
    "user-hash": "SAFEBOT_USER_HASH_KEY",
    "draft": "SAFEBOT_DRAFT_KEY",
    "lookup": "SAFEBOT_LOOKUP_KEY",
    SIGNING_KEY_NAME: "SAFEBOT_SIGNING_KEY",
    "portal": "SAFEBOT_PORTAL_KEY",
    "webhook-secret": "SAFEBOT_WEBHOOK_SECRET",
}


def beside_database(secrets_dir: Path, database_file: Path | None) -> list[str]:
    """The secret files kept in the same folder as the (SQLite) database file: a copy of that
    folder, a backup say, then holds the data and the keys that open it together."""
    if database_file is None or not secrets_dir.exists():
        return []
    if secrets_dir.resolve() != database_file.parent.resolve():
        return []
    return [name for name in SECRET_FILES if (secrets_dir / f"{name}.key").exists()]


def beside_database_line(names: list[str], secrets_dir: Path) -> str:
    variables = ", ".join(SECRET_FILES[n] for n in names)
    return (
        f"server secrets ({', '.join(names)}) are kept in {secrets_dir}, beside the database: "
        "a copy of that folder opens what they protect; move them to SAFEBOT_SECRETS_DIR on "
        f"another disk or secret store, or give them in the environment ({variables})"
    )


def load_or_create(
    data_dir: Path, name: str, env_value: str | None = None, *, nbytes: int = 32
) -> bytes:
    if env_value:
        return _decode(env_value, name)
    path = data_dir / f"{name}.key"
    if path.exists():
        return _decode(path.read_text().strip(), name)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = _random.token_bytes(nbytes)
    encoded = base64.urlsafe_b64encode(value).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use theirs
        return _decode(path.read_text().strip(), name)
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded + "\n")
    return value


def load_or_create_token(data_dir: Path, name: str, env_value: str | None = None) -> str:
    """A URL-safe text secret (Telegram's webhook secret token allows A-Z a-z 0-9 _ -)."""
    if env_value:
        return env_value
    return base64.urlsafe_b64encode(load_or_create(data_dir, name)).decode().rstrip("=")


def load_or_create_signing_key(data_dir: Path, env_value: str | None = None) -> SigningKey:
    """The bot's request-signing key (SAFEBOT_SIGNING_KEY, else the file, made on first run).

    Kept out of the database on purpose: whoever can only write to the database cannot sign.
    """
    return _signing_key(load_or_create(data_dir, SIGNING_KEY_NAME, env_value))


def read_signing_key(data_dir: Path, env_value: str | None = None) -> SigningKey | None:
    """The signing key if there is one already (never creates it): for commands that only
    verify, such as the export."""
    if env_value:
        return _signing_key(_decode(env_value, SIGNING_KEY_NAME))
    path = data_dir / f"{SIGNING_KEY_NAME}.key"
    if not path.exists():
        return None
    return _signing_key(_decode(path.read_text().strip(), SIGNING_KEY_NAME))


def _signing_key(seed: bytes) -> SigningKey:
    try:
        return SigningKey(seed)
    except SealingError:
        raise StorageError(
            f"secret {SIGNING_KEY_NAME!r} (SAFEBOT_SIGNING_KEY) must be 32 bytes, base64"
        ) from None


def _decode(value: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError as exc:
        raise StorageError(f"secret {name!r} is not valid base64") from exc
    if len(raw) < 16:
        raise StorageError(f"secret {name!r} is too short (need at least 16 bytes)")
    return raw
