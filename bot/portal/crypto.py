"""Every cryptographic operation of the portal, in one place (GlobaLeaks' utils/crypto.py).

Keys, in one picture:

    passphrase --Argon2id--> wraps --> her personal private key   (advocates.wrapped_key)
    her personal public key  <--HPKE sealed-- organisation private key   (key_grants.envelope)
    organisation private key --opens--> contact requests                 (storage/sealing.py)
    organisation public key  <--HPKE sealed-- case notes                 (case_notes.sealed)

So the server holds nothing it can open alone: the organisation key is stored only sealed to
advocates' personal keys, and those only under their passphrases. Granting access needs no
passphrase of the new advocate (only her public key), so an admin can grant after she has set
up, and `safebot keys rotate` re-grants a new key to every advocate with access, without
their passphrases.

The argon2 operations block for a fraction of a second: call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.portal.config import PasswordCost
from storage.drafts import open_json, seal_json
from storage.errors import SealingError
from storage.keys import KdfParams, unwrap_private_key, wrap_private_key
from storage.sealing import (
    RecipientPrivateKey,
    RecipientPublicKey,
    SealContext,
    generate_keypair,
    open_sealed,
    public_key_of,
    seal,
)

RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
_CODE_GROUPS, _CODE_GROUP_LENGTH = 3, 4  # about 59 bits


def token() -> str:
    """A random URL-safe token (256 bits): set-up links, session ids, pre-session ids."""
    return secrets.token_urlsafe(32)


def token_hash(value: str) -> str:
    """What is stored of a token: SHA-256 is enough for 256 random bits."""
    return hashlib.sha256(value.encode()).hexdigest()


def keyed(key: bytes, label: str, value: str) -> str:
    return hmac.new(key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()


# ---- passphrases -------------------------------------------------------------------------------


def hasher(cost: PasswordCost) -> PasswordHasher:
    return PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_cost_kib, parallelism=cost.parallelism
    )


def hash_passphrase(cost: PasswordCost, passphrase: str) -> str:
    return hasher(cost).hash(passphrase)


def passphrase_matches(cost: PasswordCost, stored: str | None, passphrase: str) -> bool:
    """Constant work whether or not there is a stored hash (a missing account costs the same)."""
    try:
        return hasher(cost).verify(stored or _DUMMY[cost], passphrase) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class _Dummies(dict[PasswordCost, str]):
    def __missing__(self, cost: PasswordCost) -> str:
        self[cost] = hasher(cost).hash(secrets.token_urlsafe(16))
        return self[cost]


_DUMMY = _Dummies()


# ---- TOTP (RFC 6238, 30 s, 6 digits: what every authenticator app reads) ----------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, name: str, organisation: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=f"safebot {organisation}")


def qr_svg(uri: str) -> str:
    """The otpauth URI as inline SVG (no script, no inline style: fits the CSP)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time-step `code` is valid for (now, or one step either side for clock drift)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret)
    current = otp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(otp.generate_otp(step), code):
            return step
    return None


def current_totp_step(secret: str, now: dt.datetime) -> int:
    return int(pyotp.TOTP(secret).timecode(now))


def seal_totp(key: bytes, advocate_id: str, secret: str) -> bytes:
    return seal_json(key, f"totp:{advocate_id}", {"secret": secret})


def open_totp(key: bytes, advocate_id: str, blob: bytes | None) -> str | None:
    doc = open_json(key, f"totp:{advocate_id}", blob)
    return None if doc is None else str(doc.get("secret") or "") or None


# ---- recovery codes ------------------------------------------------------------------------------


def new_recovery_codes() -> list[str]:
    def one() -> str:
        groups = (
            "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_GROUP_LENGTH))
            for _ in range(_CODE_GROUPS)
        )
        return "-".join(groups)

    return [one() for _ in range(RECOVERY_CODES)]


def recovery_hash(key: bytes, advocate_id: str, code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return keyed(key, f"recovery:{advocate_id}", normal)


def looks_like_recovery_code(code: str) -> bool:
    return len("".join(ch for ch in code if ch.isalnum())) == _CODE_GROUPS * _CODE_GROUP_LENGTH


# ---- personal keys and grants -------------------------------------------------------------------


def new_personal_key(
    passphrase: str, organisation: str, params: KdfParams
) -> tuple[RecipientPublicKey, bytes]:
    """A personal key pair: the public key, and the private key wrapped under `passphrase`
    (the storage/keys.py identity format). Blocking (Argon2id)."""
    private, public = generate_keypair()
    return public, wrap_private_key(private, passphrase.encode(), org=organisation, params=params)


def unwrap_personal_key(wrapped: bytes, passphrase: str, organisation: str) -> RecipientPrivateKey:
    """Blocking (Argon2id); KeyUnlockError for a wrong passphrase or a damaged wrapping."""
    return unwrap_private_key(wrapped, passphrase.encode(), expected_org=organisation)


def _grant_context(advocate_id: str, organisation: str, created_at: dt.datetime) -> SealContext:
    return SealContext(request_id=f"grant-{advocate_id}", org=organisation, created_at=created_at)


def seal_grant(
    org_key: RecipientPrivateKey,
    advocate_public: RecipientPublicKey,
    *,
    advocate_id: str,
    organisation: str,
    created_at: dt.datetime,
) -> bytes:
    body = json.dumps(
        {
            "key_id": org_key.key_id,
            "suite": org_key.suite,
            "seed": base64.b64encode(org_key.seed).decode(),
        }
    ).encode()
    context = _grant_context(advocate_id, organisation, created_at)
    return seal(body, advocate_public, context)


def open_grant(
    envelope: bytes,
    personal: RecipientPrivateKey,
    *,
    advocate_id: str,
    organisation: str,
    created_at: dt.datetime,
    registered_public_key: str,
) -> RecipientPrivateKey:
    """The organisation key in a grant, checked against the public key registered for it:
    a grant that opens to some other key is refused (SealingError)."""
    context = _grant_context(advocate_id, organisation, created_at)
    doc = json.loads(open_sealed(envelope, [personal], context))
    key = RecipientPrivateKey(
        key_id=str(doc["key_id"]), suite=str(doc["suite"]), seed=base64.b64decode(doc["seed"])
    )
    if public_key_of(key).to_text() != registered_public_key:
        raise SealingError("granted key does not match the registered organisation key")
    return key


# ---- case notes ----------------------------------------------------------------------------------

NOTE_FORMAT = "safebot-note-v1"


def _note_context(request_id: str, organisation: str, created_at: dt.datetime) -> SealContext:
    # Bound through HPKE's info: a note copied to another request's row does not open.
    return SealContext(request_id=f"note-{request_id}", org=organisation, created_at=created_at)


def _note_mac(
    key: bytes,
    text: str,
    *,
    request_id: str,
    organisation: str,
    author_id: str,
    created_at: dt.datetime,
) -> str:
    when = created_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    content = json.dumps(
        [NOTE_FORMAT, request_id, organisation, author_id, when, text],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hmac.new(key, b"note:" + content.encode(), hashlib.sha256).hexdigest()


def seal_note(
    text: str,
    recipient: RecipientPublicKey,
    *,
    mac_key: bytes,
    request_id: str,
    organisation: str,
    author_id: str,
    created_at: dt.datetime,
) -> bytes:
    """The note sealed (HPKE, base mode) to the organisation's key, bound to its request. An
    HMAC under the portal key rides inside, over the text, the request, the author and the
    time: anyone can seal to a public key, only this portal writes a note that verifies."""
    mac = _note_mac(
        mac_key,
        text,
        request_id=request_id,
        organisation=organisation,
        author_id=author_id,
        created_at=created_at,
    )
    body = json.dumps(
        {"format": NOTE_FORMAT, "text": text, "mac": mac}, ensure_ascii=False
    ).encode()
    return seal(body, recipient, _note_context(request_id, organisation, created_at))


def open_note(
    sealed: bytes,
    keys: Mapping[str, RecipientPrivateKey],
    *,
    mac_key: bytes,
    request_id: str,
    organisation: str,
    author_id: str,
    created_at: dt.datetime,
) -> str:
    """The note's text; SealingError if it does not open with `keys` in this place (another
    request's, altered) or was not written by this portal (its HMAC, or its author or time
    changed in the database)."""
    plaintext = open_sealed(sealed, keys, _note_context(request_id, organisation, created_at))
    try:
        doc = json.loads(plaintext)
    except ValueError:
        raise SealingError("sealed contents are not a case note") from None
    if not isinstance(doc, dict) or doc.get("format") != NOTE_FORMAT:
        raise SealingError("sealed contents are not a case note")
    text, mac = doc.get("text"), doc.get("mac")
    if not isinstance(text, str) or not isinstance(mac, str):
        raise SealingError("sealed contents are not a case note")
    expected = _note_mac(
        mac_key,
        text,
        request_id=request_id,
        organisation=organisation,
        author_id=author_id,
        created_at=created_at,
    )
    if not hmac.compare_digest(mac, expected):
        raise SealingError("case note was not written by this portal, or was moved")
    return text
