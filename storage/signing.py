"""The server's request-signing key (Ed25519): proof that the bot, not someone with write
access to the database, wrote a sealed request.

HPKE's sealing is anonymous: anyone holding the organisation's public key (it is in the
database) can seal a request that opens. So the bot also signs every envelope it seals
(`storage.sealing`), with a key kept outside the database: ``SAFEBOT_SIGNING_KEY`` or a file
in the secrets location (`storage.server_secrets.load_or_create_signing_key`). Whoever
verifies (the export, the portal) takes the public half from that key or from the deployment
file (``request_signing_keys``), never from the database.

Pure: no files, no logging. Public keys travel as ``safebot-sig1:<base64url, unpadded>``; a
signer id is the first 16 hex digits of SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from storage.errors import SealingError

__all__ = [
    "SIGNATURE_BYTES",
    "SigningKey",
    "VerifyKey",
    "generate_signing_key",
    "verify_keys_by_id",
]

SIGNATURE_BYTES: Final = 64
SEED_BYTES: Final = 32
_PUBLIC_BYTES: Final = 32
_TEXT_PREFIX: Final = "safebot-sig1"
_TEXT_RE: Final = re.compile(r"safebot-sig1:[A-Za-z0-9_-]{43}")


def _signer_id(public_bytes: bytes) -> str:
    return hashlib.sha256(public_bytes).hexdigest()[:16]


@dataclass(frozen=True)
class VerifyKey:
    """The public half of a signing key: safe to put in a deployment file."""

    public_bytes: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.public_bytes, bytes) or len(self.public_bytes) != _PUBLIC_BYTES:
            raise SealingError("a signing public key is 32 bytes")

    @property
    def signer_id(self) -> str:
        return _signer_id(self.public_bytes)

    def to_text(self) -> str:
        encoded = base64.urlsafe_b64encode(self.public_bytes).rstrip(b"=").decode("ascii")
        return f"{_TEXT_PREFIX}:{encoded}"

    @classmethod
    def from_text(cls, text: str) -> VerifyKey:
        if not isinstance(text, str) or _TEXT_RE.fullmatch(text.strip()) is None:
            raise SealingError(f"not a {_TEXT_PREFIX} signing public key")
        encoded = text.strip().split(":", 1)[1]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=")
        except (binascii.Error, ValueError) as exc:
            raise SealingError("signing public key is not valid base64url") from exc
        key = cls(raw)
        if key.to_text() != text.strip():
            raise SealingError("signing public key text is not in canonical form")
        return key

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public_bytes).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key as its 32-byte seed. Its repr never shows the seed."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise SealingError(f"a signing key is {SEED_BYTES} bytes")

    def _private(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self._private().public_key().public_bytes_raw())

    @property
    def signer_id(self) -> str:
        return self.verify_key.signer_id

    def sign(self, message: bytes) -> bytes:
        return self._private().sign(message)


def generate_signing_key() -> SigningKey:
    return SigningKey(secrets.token_bytes(SEED_BYTES))


def verify_keys_by_id(keys: Iterable[VerifyKey] | Mapping[str, VerifyKey]) -> dict[str, VerifyKey]:
    """``{signer id: key}``; a mapping is re-keyed by each key's own id, so a wrong entry
    cannot stand in for another key."""
    values = keys.values() if isinstance(keys, Mapping) else keys
    out: dict[str, VerifyKey] = {}
    for key in values:
        if not isinstance(key, VerifyKey):
            raise SealingError("verify keys must be VerifyKey objects")
        out[key.signer_id] = key
    return out
