"""Sealing contact requests for the receiving support organisation (HPKE, RFC 9180).

The server that stores a contact request never holds a key that can read it: the request
is sealed to the organisation's public key, and only the organisation's private key,
kept elsewhere and protected by a passphrase (see ``storage.keys``), opens it.

Rules of this module
====================

* Pure functions: no files, no network, no database, no logging, no global state.
  The only side input is the operating system's random number generator (fresh HPKE
  ephemeral keys on every seal, fresh seeds for new key pairs).
* One error type: every failure to seal or open raises
  :class:`storage.errors.SealingError`; nothing from the crypto library escapes.
  Messages name what went wrong (``truncated envelope``, ``unknown key id ...``) but never
  carry plaintext, request ids or organisation names. Key ids are not secret and do
  appear.
* Every envelope is bound to its place. The HPKE ``info`` string covers the envelope
  header (format version, suite, key id) and the :class:`SealContext` (request id,
  organisation, creation time; since version 2 also language and urgent): an envelope
  copied to another row, another organisation or under another key header does not open
  with :func:`open_sealed`, and :func:`open_verified` names the field that differs.
* The bot signs what it seals (version 2, Ed25519, ``storage.signing``): anyone can seal
  to a public key, so only a signature by a key from outside the database tells a request
  the bot wrote from one written straight into the database.
* Plaintext is padded to a multiple of :data:`PAD_BLOCK` bytes (after a 4-byte length
  prefix), so the stored size reveals the message length only to within 256 bytes.
* Two suites. ``mlkem768x25519-hkdfsha256-chacha20poly1305`` (X-Wing: ML-KEM-768 with
  X25519, post-quantum hybrid) is the default wherever the installed ``cryptography``
  supports it; ``x25519-hkdfsha256-chacha20poly1305`` is the classical fallback.
  Both use HKDF-SHA256 and ChaCha20-Poly1305. Requires ``cryptography >= 47`` (HPKE).

Keys
====

A private key is a 32-byte seed, whatever the suite.

* X25519: the seed *is* the X25519 private key (RFC 7748 scalar, clamped by X25519).
* Hybrid: as in X-Wing / draft-irtf-cfrg-concrete-hybrid-kems, ``SHAKE256(seed, 96)`` is
  split into 64 bytes that seed ML-KEM-768 (``d || z``, FIPS 203) and 32 bytes that are
  the X25519 private key. The public key is ``ML-KEM-768 public key (1184 bytes) ||
  X25519 public key (32 bytes)``. This is checked against the HPKE-PQ test vectors that
  ship with ``cryptography``'s own test suite (KEM id 0x647a).

A key id defaults to the first 16 hex digits of ``SHA-256(public key bytes)``, so it is
stable and can be recomputed from the public key.

Envelope format (version 2, signed)
===================================

::

    b"SB"            magic, 2 bytes
    0x02             format version, 1 byte
    suite id         1 byte: 0x01 hybrid, 0x02 X25519
    key id length    1 byte (1..64)
    key id           ASCII [A-Za-z0-9._-]
    context length   2 bytes, big-endian
    context          SealContext.bound_bytes(): request id, organisation, created_at,
                     language, urgent ("1"/"0"), each as a 2-byte length and UTF-8
    signer id length 1 byte (1..64)
    signer id        16 hex digits of SHA-256 of the bot's Ed25519 public key
    enc || ct        HPKE single-shot output; info = label || length || everything above
    signature        64 bytes, Ed25519 over label || everything above and enc || ct

The context travels in the clear (it is a copy of the row's cleartext columns), bound by
HPKE and by the signature: a changed ``urgent`` in the database no longer matches it, and
:func:`verify_envelope` says which field changed. Version 1 (everything above but the
context, the signer id and the signature; the context is bound through ``info`` only, and
only the placement: request id, organisation, created_at) is what the bot wrote before
signing; it still opens, reported as unsigned.

Cost on the development machine: about 0.1-0.2 ms to seal and to open 1 KB with the hybrid
suite; the hybrid envelope is about 1.15 KB larger than its padded plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from storage.errors import SealingError
from storage.signing import SIGNATURE_BYTES, SigningKey, VerifyKey, verify_keys_by_id

__all__ = [
    "ENVELOPE_VERSION",
    "LEGACY_VERSION",
    "PAD_BLOCK",
    "SUITES",
    "SUITE_HYBRID",
    "SUITE_X25519",
    "Authenticity",
    "Opened",
    "RecipientPrivateKey",
    "RecipientPublicKey",
    "SealContext",
    "Verdict",
    "default_suite",
    "envelope_key_id",
    "envelope_suite",
    "envelope_version",
    "generate_keypair",
    "hybrid_supported",
    "open_sealed",
    "open_verified",
    "public_key_of",
    "seal",
    "verify_envelope",
]

SUITE_HYBRID: Final = "mlkem768x25519-hkdfsha256-chacha20poly1305"
SUITE_X25519: Final = "x25519-hkdfsha256-chacha20poly1305"
SUITES: Final = (SUITE_HYBRID, SUITE_X25519)

ENVELOPE_VERSION: Final = 2  # signed, triage fields bound
LEGACY_VERSION: Final = 1  # unsigned, from before signing; still opens
PAD_BLOCK: Final = 256
MAX_PLAINTEXT_BYTES: Final = 16 * 1024 * 1024
SEED_BYTES: Final = 32
MAX_KEY_ID_BYTES: Final = 64
MAX_CONTEXT_FIELD_BYTES: Final = 1024

_MAGIC: Final = b"SB"
_PUBLIC_TEXT_PREFIX: Final = "safebot-pk1"
_INFO_LABEL: Final = b"safebot-seal-v1\x00"
_INFO_LABEL_V2: Final = b"safebot-seal-v2\x00"
_SIGNATURE_LABEL: Final = b"safebot-request-signature-v2\x00"
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PAD_PREFIX: Final = struct.Struct(">I")
_AEAD_TAG_BYTES: Final = 16

_SUITE_TO_BYTE: Final[dict[str, int]] = {SUITE_HYBRID: 0x01, SUITE_X25519: 0x02}
_BYTE_TO_SUITE: Final[dict[int, str]] = {v: k for k, v in _SUITE_TO_BYTE.items()}
_PUBLIC_KEY_BYTES: Final[dict[str, int]] = {SUITE_HYBRID: 1184 + 32, SUITE_X25519: 32}
# Length of the HPKE encapsulated key (KEM.enc_length() exists only from cryptography 49).
_ENC_BYTES: Final[dict[str, int]] = {SUITE_HYBRID: 1088 + 32, SUITE_X25519: 32}

_MSG_DOES_NOT_OPEN: Final = (
    "envelope does not open with this key / was altered or belongs to another request"
)


# --------------------------------------------------------------------------------------
# Suites and raw key material
# --------------------------------------------------------------------------------------


@cache
def hybrid_supported() -> bool:
    """Whether the installed ``cryptography`` and its OpenSSL can do the hybrid suite."""
    try:
        private = _hybrid_private_key(bytes(SEED_BYTES))
        suite = hpke.Suite(
            hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
        )
        envelope = suite.encrypt(b"probe", private.public_key(), info=b"probe")
        return suite.decrypt(envelope, private, info=b"probe") == b"probe"
    except Exception:
        return False


def default_suite() -> str:
    """The hybrid post-quantum suite where supported, else classical X25519."""
    return SUITE_HYBRID if hybrid_supported() else SUITE_X25519


def _check_suite(suite: str) -> None:
    if suite not in _SUITE_TO_BYTE:
        raise SealingError(f"unknown suite {suite!r}")
    if suite == SUITE_HYBRID and not hybrid_supported():
        raise SealingError(
            "suite not supported by the installed cryptography library (needs ML-KEM)"
        )


@cache
def _hpke_suite(suite: str) -> hpke.Suite:
    kem = hpke.KEM.MLKEM768_X25519 if suite == SUITE_HYBRID else hpke.KEM.X25519
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def _hybrid_halves(
    seed: bytes,
) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """X-Wing key derivation: SHAKE256(seed, 96) -> ML-KEM-768 seed (64) || X25519 key (32)."""
    expanded = hashlib.shake_256(seed).digest(96)
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def _hybrid_private_key(seed: bytes) -> hpke.MLKEM768X25519PrivateKey:
    return hpke.MLKEM768X25519PrivateKey(*_hybrid_halves(seed))


def _public_bytes_from_seed(suite: str, seed: bytes) -> bytes:
    # The hybrid key classes have no serialisation: serialise the two halves.
    if suite == SUITE_HYBRID:
        mlkem_private, x_private = _hybrid_halves(seed)
        return (
            mlkem_private.public_key().public_bytes_raw()
            + x_private.public_key().public_bytes_raw()
        )
    return x25519.X25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def _private_object(
    key: RecipientPrivateKey,
) -> hpke.MLKEM768X25519PrivateKey | x25519.X25519PrivateKey:
    if key.suite == SUITE_HYBRID:
        return _hybrid_private_key(key.seed)
    return x25519.X25519PrivateKey.from_private_bytes(key.seed)


def _public_object(
    key: RecipientPublicKey,
) -> hpke.MLKEM768X25519PublicKey | x25519.X25519PublicKey:
    try:
        if key.suite == SUITE_HYBRID:
            return hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(key.public_bytes[:1184]),
                x25519.X25519PublicKey.from_public_bytes(key.public_bytes[1184:]),
            )
        return x25519.X25519PublicKey.from_public_bytes(key.public_bytes)
    except Exception as exc:
        raise SealingError("invalid public key") from exc


def _derive_key_id(public_bytes: bytes) -> str:
    return hashlib.sha256(public_bytes).hexdigest()[:16]


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or _KEY_ID_RE.fullmatch(key_id) is None:
        raise SealingError("malformed key id (1-64 characters of A-Z a-z 0-9 . _ -)")


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientPublicKey:
    """An organisation's public key: safe to store in configuration or the database."""

    key_id: str
    suite: str
    public_bytes: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        if self.suite not in _SUITE_TO_BYTE:
            raise SealingError(f"unknown suite {self.suite!r}")
        if not isinstance(self.public_bytes, bytes):
            raise SealingError("public key bytes must be bytes")
        if len(self.public_bytes) != _PUBLIC_KEY_BYTES[self.suite]:
            raise SealingError("public key has the wrong length for its suite")

    @property
    def fingerprint(self) -> str:
        """Full SHA-256 of the public key, hex, for out-of-band verification."""
        return hashlib.sha256(self.public_bytes).hexdigest()

    def to_text(self) -> str:
        """``safebot-pk1:<suite>:<key_id>:<base64url, unpadded>``."""
        encoded = base64.urlsafe_b64encode(self.public_bytes).rstrip(b"=").decode("ascii")
        return f"{_PUBLIC_TEXT_PREFIX}:{self.suite}:{self.key_id}:{encoded}"

    @classmethod
    def from_text(cls, text: str) -> RecipientPublicKey:
        """Parse :meth:`to_text` output; the key material is validated too."""
        if not isinstance(text, str):
            raise SealingError(f"not a {_PUBLIC_TEXT_PREFIX} public key")
        parts = text.strip().split(":")
        if len(parts) != 4 or parts[0] != _PUBLIC_TEXT_PREFIX:
            raise SealingError(f"not a {_PUBLIC_TEXT_PREFIX} public key")
        _, suite, key_id, encoded = parts
        if re.fullmatch(r"[A-Za-z0-9_-]*", encoded) is None or len(encoded) % 4 == 1:
            raise SealingError("public key is not valid base64url")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SealingError("public key is not valid base64url") from exc
        key = cls(key_id=key_id, suite=suite, public_bytes=raw)
        if key.to_text() != text.strip():
            raise SealingError("public key text is not in canonical form")
        _check_suite(suite)
        _public_object(key)  # validates the ML-KEM half (and lengths)
        return key


@dataclass(frozen=True)
class RecipientPrivateKey:
    """An organisation's private key: a 32-byte seed. Its repr never shows the seed."""

    key_id: str
    suite: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_id(self.key_id)
        if self.suite not in _SUITE_TO_BYTE:
            raise SealingError(f"unknown suite {self.suite!r}")
        if not isinstance(self.seed, bytes) or len(self.seed) != SEED_BYTES:
            raise SealingError(f"private key seed must be {SEED_BYTES} bytes")


def public_key_of(private: RecipientPrivateKey) -> RecipientPublicKey:
    """The public key belonging to ``private`` (same key id and suite)."""
    _check_suite(private.suite)
    try:
        raw = _public_bytes_from_seed(private.suite, private.seed)
    except Exception as exc:
        raise SealingError("could not derive the public key") from exc
    return RecipientPublicKey(key_id=private.key_id, suite=private.suite, public_bytes=raw)


def generate_keypair(
    suite: str | None = None, key_id: str | None = None
) -> tuple[RecipientPrivateKey, RecipientPublicKey]:
    """A fresh key pair. ``key_id`` defaults to 16 hex digits of SHA-256(public key)."""
    suite = default_suite() if suite is None else suite
    _check_suite(suite)
    if key_id is not None:
        _check_key_id(key_id)
    seed = secrets.token_bytes(SEED_BYTES)
    try:
        raw = _public_bytes_from_seed(suite, seed)
    except Exception as exc:
        raise SealingError("could not generate a key pair") from exc
    final_id = key_id if key_id is not None else _derive_key_id(raw)
    return (
        RecipientPrivateKey(key_id=final_id, suite=suite, seed=seed),
        RecipientPublicKey(key_id=final_id, suite=suite, public_bytes=raw),
    )


# --------------------------------------------------------------------------------------
# Context binding
# --------------------------------------------------------------------------------------


def _field(value: str, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise SealingError(f"seal context {name} must be a non-empty string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SealingError(f"seal context {name} is not valid text") from exc
    if len(raw) > MAX_CONTEXT_FIELD_BYTES:
        raise SealingError(f"seal context {name} is too long")
    return struct.pack(">H", len(raw)) + raw


def _read_fields(raw: bytes, count: int) -> list[str]:
    out, pos = [], 0
    for _ in range(count):
        if len(raw) < pos + 2:
            raise SealingError("malformed envelope context")
        (length,) = struct.unpack_from(">H", raw, pos)
        pos += 2
        if length == 0 or len(raw) < pos + length:
            raise SealingError("malformed envelope context")
        try:
            out.append(raw[pos : pos + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise SealingError("malformed envelope context") from None
        pos += length
    if pos != len(raw):
        raise SealingError("malformed envelope context")
    return out


_URGENT_TEXT: Final = {True: "1", False: "0"}


@dataclass(frozen=True)
class SealContext:
    """Where an envelope belongs (request id, organisation, creation time) and the triage
    fields stored in the clear beside it (language, urgent).

    ``created_at`` must be timezone-aware; it is bound as UTC at microsecond precision,
    so the stored value must round-trip exactly (same instant, microseconds kept).

    Version-1 envelopes bind the first three only. Version 2 (signed) binds all five, and
    carries them in its header, so an opened request can say which cleartext field was
    changed. In a context given to :func:`open_sealed`, ``language`` or ``urgent`` left as
    None is not compared; sealing a version-2 envelope needs both.
    """

    request_id: str
    org: str
    created_at: datetime
    language: str | None = None
    urgent: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.created_at, datetime):
            raise SealingError("seal context created_at must be a datetime")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise SealingError("seal context created_at must be timezone-aware")
        if self.urgent is not None and not isinstance(self.urgent, bool):
            raise SealingError("seal context urgent must be a bool")
        if self.language is not None:
            _field(self.language, "language")
        self.to_bytes()  # validates the text fields

    def created_at_utc(self) -> str:
        return self.created_at.astimezone(UTC).isoformat(timespec="microseconds")

    def to_bytes(self) -> bytes:
        """Version-1 encoding (placement only): each field as a 2-byte length and UTF-8."""
        return (
            _field(self.request_id, "request_id")
            + _field(self.org, "org")
            + _field(self.created_at_utc(), "created_at")
        )

    def bound_bytes(self) -> bytes:
        """Version-2 encoding: placement, then language and urgent ("1" / "0")."""
        if self.language is None or self.urgent is None:
            raise SealingError("a signed envelope binds language and urgent: give both")
        return (
            self.to_bytes()
            + _field(self.language, "language")
            + _field(_URGENT_TEXT[self.urgent], "urgent")
        )

    @classmethod
    def from_bound_bytes(cls, raw: bytes) -> SealContext:
        request_id, org, created, language, urgent = _read_fields(raw, 5)
        if urgent not in ("0", "1"):
            raise SealingError("malformed envelope context")
        try:
            when = datetime.fromisoformat(created)
            context = cls(request_id, org, when, language, urgent == "1")
        except ValueError:
            raise SealingError("malformed envelope context") from None
        if context.bound_bytes() != raw:
            raise SealingError("malformed envelope context")
        return context

    def differences(self, sealed: SealContext) -> tuple[str, ...]:
        """The fields of this context (a database row's) that differ from ``sealed``;
        a field this context leaves as None is not compared."""
        out = []
        if self.request_id != sealed.request_id:
            out.append("request_id")
        if self.org != sealed.org:
            out.append("organisation")
        if self.created_at != sealed.created_at:  # compared as instants
            out.append("created_at")
        if self.language is not None and self.language != sealed.language:
            out.append("language")
        if self.urgent is not None and self.urgent != sealed.urgent:
            out.append("urgent")
        return tuple(out)


def _info_v1(header: bytes, context: SealContext) -> bytes:
    return _INFO_LABEL + struct.pack(">H", len(header)) + header + context.to_bytes()


def _info_v2(header: bytes) -> bytes:
    # The version-2 header holds the bound context itself.
    return _INFO_LABEL_V2 + struct.pack(">H", len(header)) + header


# --------------------------------------------------------------------------------------
# Envelope
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    version: int
    suite: str
    key_id: str
    raw: bytes
    context: SealContext | None = None  # version 2: what was bound
    signer_id: str | None = None  # version 2: whose signature closes the envelope


def _header_bytes(suite: str, key_id: str) -> bytes:
    kid = key_id.encode("ascii")
    return _MAGIC + bytes([LEGACY_VERSION, _SUITE_TO_BYTE[suite], len(kid)]) + kid


def _header_bytes_v2(suite: str, key_id: str, context: SealContext, signer_id: str) -> bytes:
    kid = key_id.encode("ascii")
    bound = context.bound_bytes()
    sid = signer_id.encode("ascii")
    return (
        _MAGIC
        + bytes([ENVELOPE_VERSION, _SUITE_TO_BYTE[suite], len(kid)])
        + kid
        + struct.pack(">H", len(bound))
        + bound
        + bytes([len(sid)])
        + sid
    )


def _ascii_id(envelope: bytes, pos: int, what: str) -> tuple[str, int]:
    """A 1-byte length and an id of ``[A-Za-z0-9._-]`` at ``pos``; the position after it."""
    if len(envelope) < pos + 1:
        raise SealingError("truncated envelope")
    length = envelope[pos]
    pos += 1
    if length == 0 or length > MAX_KEY_ID_BYTES:
        raise SealingError(f"malformed envelope {what}")
    if len(envelope) < pos + length:
        raise SealingError("truncated envelope")
    try:
        value = envelope[pos : pos + length].decode("ascii")
    except UnicodeDecodeError:
        raise SealingError(f"malformed envelope {what}") from None
    if _KEY_ID_RE.fullmatch(value) is None:
        raise SealingError(f"malformed envelope {what}")
    return value, pos + length


def _parse_header(envelope: bytes) -> _Header:
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise SealingError("envelope must be bytes")
    envelope = bytes(envelope)
    if len(envelope) < len(_MAGIC) + 3:
        raise SealingError("truncated envelope")
    if envelope[: len(_MAGIC)] != _MAGIC:
        raise SealingError("not a sealed envelope (bad magic)")
    pos = len(_MAGIC)
    version, suite_byte = envelope[pos], envelope[pos + 1]
    if version not in (LEGACY_VERSION, ENVELOPE_VERSION):
        raise SealingError(f"unsupported envelope version {version}")
    suite = _BYTE_TO_SUITE.get(suite_byte)
    if suite is None:
        raise SealingError(f"unsupported envelope suite {suite_byte:#04x}")
    key_id, pos = _ascii_id(envelope, pos + 2, "key id")
    if version == LEGACY_VERSION:
        return _Header(version, suite, key_id, envelope[:pos])
    if len(envelope) < pos + 2:
        raise SealingError("truncated envelope")
    (bound_len,) = struct.unpack_from(">H", envelope, pos)
    pos += 2
    if len(envelope) < pos + bound_len:
        raise SealingError("truncated envelope")
    context = SealContext.from_bound_bytes(envelope[pos : pos + bound_len])
    signer_id, pos = _ascii_id(envelope, pos + bound_len, "signer id")
    return _Header(version, suite, key_id, envelope[:pos], context, signer_id)


def _body_and_signature(header: _Header, envelope: bytes) -> tuple[bytes, bytes | None]:
    rest = bytes(envelope)[len(header.raw) :]
    signature = None
    if header.version == ENVELOPE_VERSION:
        if len(rest) < SIGNATURE_BYTES:
            raise SealingError("truncated envelope")
        rest, signature = rest[:-SIGNATURE_BYTES], rest[-SIGNATURE_BYTES:]
    if len(rest) < _ENC_BYTES[header.suite] + _AEAD_TAG_BYTES:
        raise SealingError("truncated envelope")
    return rest, signature


def envelope_key_id(envelope: bytes) -> str:
    """The key id an envelope was sealed to (from its header; not authenticated)."""
    return _parse_header(envelope).key_id


def envelope_suite(envelope: bytes) -> str:
    """The suite an envelope was sealed with (from its header; not authenticated)."""
    return _parse_header(envelope).suite


def envelope_version(envelope: bytes) -> int:
    """1: unsigned, from before signing; 2: signed, triage fields bound."""
    return _parse_header(envelope).version


def _pad(plaintext: bytes) -> bytes:
    body = _PAD_PREFIX.pack(len(plaintext)) + plaintext
    return body + bytes(-len(body) % PAD_BLOCK)


def _unpad(padded: bytes) -> bytes:
    if len(padded) < _PAD_PREFIX.size or len(padded) % PAD_BLOCK:
        raise SealingError("malformed padding inside envelope")
    (length,) = _PAD_PREFIX.unpack_from(padded)
    end = _PAD_PREFIX.size + length
    if end > len(padded) or any(padded[end:]):
        raise SealingError("malformed padding inside envelope")
    return padded[_PAD_PREFIX.size : end]


def seal(
    plaintext: bytes,
    recipient: RecipientPublicKey,
    context: SealContext,
    signer: SigningKey | None = None,
) -> bytes:
    """Seal ``plaintext`` so that only ``recipient``'s private key opens it, in ``context``.

    With ``signer`` (what the bot always does): a version-2 envelope that binds the whole
    context, language and urgent included, and is signed. Without: a version-1 envelope,
    the format from before signing, which proves nothing about who wrote it.
    """
    if not isinstance(plaintext, bytes):
        raise SealingError("plaintext must be bytes")
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise SealingError("plaintext too large to seal")
    if not isinstance(recipient, RecipientPublicKey):
        raise SealingError("recipient must be a RecipientPublicKey")
    if not isinstance(context, SealContext):
        raise SealingError("context must be a SealContext")
    if signer is not None and not isinstance(signer, SigningKey):
        raise SealingError("signer must be a SigningKey")
    _check_suite(recipient.suite)
    if signer is None:
        header = _header_bytes(recipient.suite, recipient.key_id)
        info = _info_v1(header, context)
    else:
        header = _header_bytes_v2(recipient.suite, recipient.key_id, context, signer.signer_id)
        info = _info_v2(header)
    public = _public_object(recipient)
    try:
        body = _hpke_suite(recipient.suite).encrypt(_pad(plaintext), public, info=info)
    except Exception as exc:
        raise SealingError("sealing failed (invalid public key?)") from exc
    if signer is None:
        return header + body
    return header + body + signer.sign(_SIGNATURE_LABEL + header + body)


def _choose_identity(
    header: _Header,
    identities: Iterable[RecipientPrivateKey] | Mapping[str, RecipientPrivateKey],
) -> RecipientPrivateKey:
    found: RecipientPrivateKey | None = None
    if isinstance(identities, Mapping):
        found = identities.get(header.key_id)
        if found is not None and (
            not isinstance(found, RecipientPrivateKey) or found.key_id != header.key_id
        ):
            raise SealingError(f"identity map entry for key id {header.key_id} is another key")
    else:
        for identity in identities:
            if not isinstance(identity, RecipientPrivateKey):
                raise SealingError("identities must be RecipientPrivateKey objects")
            if identity.key_id != header.key_id:
                continue
            if found is not None and found != identity:
                raise SealingError(f"two different keys share key id {header.key_id}")
            found = identity
    if found is None:
        raise SealingError(f"unknown key id {header.key_id}")
    if found.suite != header.suite:
        raise SealingError(
            f"suite mismatch: envelope is {header.suite}, key {found.key_id} is {found.suite}"
        )
    return found


def _decrypt(
    header: _Header,
    envelope: bytes,
    identities: Iterable[RecipientPrivateKey] | Mapping[str, RecipientPrivateKey],
    placement: SealContext | None,
) -> bytes:
    """Open with the identity the header names; ``placement`` is the version-1 context."""
    identity = _choose_identity(header, identities)
    _check_suite(identity.suite)
    body, _ = _body_and_signature(header, envelope)
    if header.version == LEGACY_VERSION:
        assert placement is not None
        info = _info_v1(header.raw, placement)
    else:
        info = _info_v2(header.raw)
    try:
        private = _private_object(identity)
    except Exception as exc:
        raise SealingError("could not load the private key") from exc
    try:
        padded = _hpke_suite(header.suite).decrypt(body, private, info=info)
    except InvalidTag:
        raise SealingError(_MSG_DOES_NOT_OPEN) from None
    except Exception as exc:
        raise SealingError(_MSG_DOES_NOT_OPEN) from exc
    return _unpad(padded)


def open_sealed(
    envelope: bytes,
    identities: Iterable[RecipientPrivateKey] | Mapping[str, RecipientPrivateKey],
    context: SealContext,
) -> bytes:
    """Open an envelope with the identity its header names, checking it belongs to ``context``.

    ``identities`` is either a mapping ``{key_id: private key}`` or any iterable of private
    keys (for example an organisation's current and retired keys after a rotation).

    Strict and silent about authorship: any difference from ``context`` raises, and the
    signature is not checked. To show a request to a person use :func:`open_verified`, which
    also says whether the bot wrote it and which cleartext field was changed.
    """
    header = _parse_header(envelope)
    if not isinstance(context, SealContext):
        raise SealingError("context must be a SealContext")
    if header.context is not None and context.differences(header.context):
        raise SealingError(_MSG_DOES_NOT_OPEN)
    return _decrypt(header, envelope, identities, context)


# --------------------------------------------------------------------------------------
# Authenticity
# --------------------------------------------------------------------------------------


class Authenticity(StrEnum):
    GENUINE = "genuine"  # signed by a trusted bot key, and the row matches what was sealed
    ALTERED = "altered"  # signed by a trusted bot key, but a cleartext field was changed
    FORGED = "forged"  # signed, but not by a trusted key, or the signature does not match
    UNSIGNED = "unsigned"  # version 1: from before signing; nothing proves who wrote it


@dataclass(frozen=True)
class Verdict:
    """Whether the bot wrote an envelope, and which of the row's cleartext fields differ
    from what it bound (``altered``: request_id, organisation, created_at, language, urgent,
    key_id). ``sealed`` is the bound context of a version-2 envelope (trust it only when
    the signature is good)."""

    authenticity: Authenticity
    altered: tuple[str, ...] = ()
    sealed: SealContext | None = None
    signer_id: str | None = None

    @property
    def genuine(self) -> bool:
        return self.authenticity == Authenticity.GENUINE

    def with_altered(self, fields: Iterable[str]) -> Verdict:
        """More changed fields (found by the caller, e.g. in the payload)."""
        altered = tuple(dict.fromkeys((*self.altered, *fields)))
        authenticity = self.authenticity
        if altered and authenticity == Authenticity.GENUINE:
            authenticity = Authenticity.ALTERED
        return replace(self, authenticity=authenticity, altered=altered)


@dataclass(frozen=True)
class Opened:
    plaintext: bytes = field(repr=False)
    verdict: Verdict


def verify_envelope(
    envelope: bytes,
    row: SealContext,
    verify_keys: Iterable[VerifyKey] | Mapping[str, VerifyKey],
    *,
    key_id: str | None = None,
) -> Verdict:
    """The verdict on ``envelope`` stored in a row whose cleartext fields are ``row`` (and
    ``key_id``). Needs no private key: a list of requests can show it before any is opened.
    ``verify_keys`` must come from outside the database (the signing key, the deployment).
    """
    header = _parse_header(envelope)
    altered = ("key_id",) if key_id is not None and key_id != header.key_id else ()
    if header.version == LEGACY_VERSION:
        return Verdict(Authenticity.UNSIGNED, altered)
    assert header.context is not None and header.signer_id is not None
    body, signature = _body_and_signature(header, envelope)
    assert signature is not None
    trusted = verify_keys_by_id(verify_keys).get(header.signer_id)
    signed = trusted is not None and trusted.verify(signature, _SIGNATURE_LABEL + header.raw + body)
    altered = (*row.differences(header.context), *altered)
    if not signed:
        authenticity = Authenticity.FORGED
    else:
        authenticity = Authenticity.ALTERED if altered else Authenticity.GENUINE
    return Verdict(authenticity, altered, header.context, header.signer_id)


def open_verified(
    envelope: bytes,
    identities: Iterable[RecipientPrivateKey] | Mapping[str, RecipientPrivateKey],
    row: SealContext,
    verify_keys: Iterable[VerifyKey] | Mapping[str, VerifyKey],
    *,
    key_id: str | None = None,
) -> Opened:
    """Open an envelope and say whether it is genuine (see :func:`verify_envelope`).

    A signed envelope opens with the context it carries, so a request whose ``urgent`` was
    flipped in the database still opens, reported as altered. A version-1 envelope binds
    only its placement: a changed request id, organisation or creation time makes it fail
    to open (SealingError), as before. Raises SealingError when it cannot be opened at all.
    """
    if not isinstance(row, SealContext):
        raise SealingError("context must be a SealContext")
    verdict = verify_envelope(envelope, row, verify_keys, key_id=key_id)
    plaintext = _decrypt(_parse_header(envelope), envelope, identities, row)
    return Opened(plaintext, verdict)
