"""Version-2 envelopes (storage.sealing): the triage fields bound, the bot's signature, and the
verdict (genuine, altered, forged, unsigned); the request-signing key (storage.signing) and
where it is kept (storage.server_secrets)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage.errors import SealingError, StorageError
from storage.sealing import (
    ENVELOPE_VERSION,
    LEGACY_VERSION,
    SUITE_X25519,
    Authenticity,
    SealContext,
    envelope_key_id,
    envelope_version,
    generate_keypair,
    open_sealed,
    open_verified,
    seal,
    verify_envelope,
)
from storage.server_secrets import load_or_create_signing_key, read_signing_key
from storage.signing import SigningKey, VerifyKey, generate_signing_key

SECRET = b"please call after 6pm, say it is the dentist"
WHEN = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
BOT = SigningKey(b"B" * 32)
PRIVATE, PUBLIC = generate_keypair(SUITE_X25519)


def ctx(**changes: object) -> SealContext:
    fields: dict[str, object] = {
        "request_id": "req-0001",
        "org": "org-a",
        "created_at": WHEN,
        "language": "pl",
        "urgent": True,
    }
    fields.update(changes)
    return SealContext(**fields)  # type: ignore[arg-type]


def signed() -> bytes:
    return seal(SECRET, PUBLIC, ctx(), BOT)


def test_a_signed_envelope_opens_as_genuine() -> None:
    envelope = signed()
    assert envelope_version(envelope) == ENVELOPE_VERSION
    assert envelope_key_id(envelope) == PUBLIC.key_id
    opened = open_verified(envelope, [PRIVATE], ctx(), [BOT.verify_key], key_id=PUBLIC.key_id)
    assert opened.plaintext == SECRET
    assert opened.verdict.genuine and opened.verdict.altered == ()
    assert opened.verdict.signer_id == BOT.signer_id
    assert opened.verdict.sealed == ctx()
    assert open_sealed(envelope, [PRIVATE], ctx()) == SECRET
    # A context without the triage fields (callers that only know the placement) still opens.
    assert open_sealed(envelope, [PRIVATE], ctx(language=None, urgent=None)) == SECRET


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"urgent": False}, ("urgent",)),
        ({"language": "en"}, ("language",)),
        ({"created_at": WHEN + timedelta(days=3)}, ("created_at",)),
        ({"org": "org-b"}, ("organisation",)),
        ({"request_id": "req-0002", "urgent": False}, ("request_id", "urgent")),
    ],
)
def test_a_changed_row_field_is_named_and_still_opens(
    changes: dict[str, object], fields: tuple[str, ...]
) -> None:
    row = ctx(**changes)
    opened = open_verified(signed(), [PRIVATE], row, [BOT.verify_key])
    assert (opened.verdict.authenticity, opened.verdict.altered) == (Authenticity.ALTERED, fields)
    assert opened.plaintext == SECRET
    # The strict opener refuses it.
    with pytest.raises(SealingError, match="does not open"):
        open_sealed(signed(), [PRIVATE], row)


def test_the_same_instant_in_another_zone_is_not_a_change() -> None:
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=5)))
    assert verify_envelope(signed(), ctx(created_at=elsewhere), [BOT.verify_key]).genuine


def test_a_changed_key_id_column_is_named() -> None:
    verdict = verify_envelope(signed(), ctx(), [BOT.verify_key], key_id="another")
    assert (verdict.authenticity, verdict.altered) == (Authenticity.ALTERED, ("key_id",))


def test_a_signature_by_another_key_or_none_is_not_genuine() -> None:
    other = generate_signing_key()
    forged = seal(SECRET, PUBLIC, ctx(), other)
    assert verify_envelope(forged, ctx(), [BOT.verify_key]).authenticity == Authenticity.FORGED
    # ... even when the forger writes the bot's signer id into the header.
    sid = BOT.signer_id.encode()
    impostor = forged.replace(other.signer_id.encode(), sid)
    assert verify_envelope(impostor, ctx(), [BOT.verify_key]).authenticity == Authenticity.FORGED
    unsigned = seal(SECRET, PUBLIC, ctx())
    assert envelope_version(unsigned) == LEGACY_VERSION
    verdict = open_verified(unsigned, [PRIVATE], ctx(), [BOT.verify_key]).verdict
    assert verdict.authenticity == Authenticity.UNSIGNED
    # Nothing trusted at all: nothing is genuine.
    assert verify_envelope(signed(), ctx(), []).authenticity == Authenticity.FORGED


def test_no_single_flipped_byte_is_genuine() -> None:
    envelope = signed()
    rng = random.Random(13)
    positions = sorted({*range(0, 120), *rng.sample(range(len(envelope)), 200)})
    for index in positions:
        if index >= len(envelope):
            continue
        tampered = bytearray(envelope)
        tampered[index] ^= 0x01
        try:
            verdict = verify_envelope(bytes(tampered), ctx(), [BOT.verify_key])
        except SealingError:
            continue
        assert not verdict.genuine, index


def test_version_1_envelopes_bind_only_their_placement() -> None:
    old = seal(SECRET, PUBLIC, ctx(language=None, urgent=None))
    assert open_sealed(old, [PRIVATE], ctx(urgent=False)) == SECRET
    with pytest.raises(SealingError):
        open_verified(old, [PRIVATE], ctx(request_id="req-0002"), [BOT.verify_key])


def test_signing_needs_the_triage_fields() -> None:
    with pytest.raises(SealingError, match="language and urgent"):
        seal(SECRET, PUBLIC, ctx(urgent=None), BOT)
    with pytest.raises(SealingError, match="urgent must be a bool"):
        ctx(urgent="yes")


def test_verify_key_text_round_trip_and_refusals() -> None:
    text = BOT.verify_key.to_text()
    assert text.startswith("safebot-sig1:")
    assert VerifyKey.from_text(text) == BOT.verify_key
    for bad in ("", "safebot-sig1:abc", text + "A", text.replace("safebot-sig1", "sig")):
        with pytest.raises(SealingError):
            VerifyKey.from_text(bad)
    assert "B" * 8 not in repr(BOT)
    with pytest.raises(SealingError):
        SigningKey(b"short")


def test_signing_key_is_kept_outside_the_database(tmp_path: Path) -> None:
    assert read_signing_key(tmp_path) is None  # never made by a command that only verifies
    made = load_or_create_signing_key(tmp_path)
    path = tmp_path / "request-signing.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_signing_key(tmp_path) == made == read_signing_key(tmp_path)
    given = base64.urlsafe_b64encode(b"E" * 32).decode()
    assert load_or_create_signing_key(tmp_path, given) == SigningKey(b"E" * 32)
    assert read_signing_key(tmp_path / "none", given) == SigningKey(b"E" * 32)
    with pytest.raises(StorageError, match="SAFEBOT_SIGNING_KEY"):
        load_or_create_signing_key(tmp_path, base64.urlsafe_b64encode(b"E" * 20).decode())
