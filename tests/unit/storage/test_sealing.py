"""Tests for storage.sealing: HPKE envelopes bound to their request, org and key."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from storage.errors import SealingError
from storage.sealing import (
    LEGACY_VERSION,
    PAD_BLOCK,
    SUITE_HYBRID,
    SUITE_X25519,
    SUITES,
    RecipientPrivateKey,
    RecipientPublicKey,
    SealContext,
    _hybrid_private_key,
    default_suite,
    envelope_key_id,
    envelope_suite,
    generate_keypair,
    hybrid_supported,
    open_sealed,
    public_key_of,
    seal,
)

DOES_NOT_OPEN = "envelope does not open with this key / was altered or belongs to another request"
SECRET = b"my husband took my passport - please call after 6pm"
WHEN = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)

needs_hybrid = pytest.mark.skipif(
    not hybrid_supported(), reason="installed cryptography lacks ML-KEM"
)
ALL_SUITES = [pytest.param(SUITE_HYBRID, marks=needs_hybrid), SUITE_X25519]


def ctx(request_id: str = "req-0001", org: str = "org-a", when: datetime = WHEN) -> SealContext:
    return SealContext(request_id=request_id, org=org, created_at=when)


def header_len(envelope: bytes) -> int:
    return 5 + envelope[4]


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def assert_sealing_error(call: Callable[[], object], message: str) -> SealingError:
    with pytest.raises(SealingError) as info:
        call()
    text = str(info.value)
    assert message in text, text
    assert "passport" not in text and "req-0001" not in text
    return info.value


@pytest.fixture(scope="module", params=ALL_SUITES)
def keypair(request: pytest.FixtureRequest) -> tuple[RecipientPrivateKey, RecipientPublicKey]:
    suite: str = request.param
    return generate_keypair(suite)


# --------------------------------------------------------------------------------------
# Round trips and keys
# --------------------------------------------------------------------------------------


def test_default_suite_prefers_hybrid() -> None:
    assert default_suite() == (SUITE_HYBRID if hybrid_supported() else SUITE_X25519)
    assert set(SUITES) == {SUITE_HYBRID, SUITE_X25519}


@pytest.mark.parametrize("size", [0, 1, 200, 251, 252, 253, 4096, 70_000])
def test_round_trip(keypair: tuple[RecipientPrivateKey, RecipientPublicKey], size: int) -> None:
    private, public = keypair
    plaintext = random.Random(size).randbytes(size)
    envelope = seal(plaintext, public, ctx())
    assert plaintext not in envelope or size < 4
    assert open_sealed(envelope, [private], ctx()) == plaintext
    assert open_sealed(envelope, {private.key_id: private}, ctx()) == plaintext
    assert envelope_key_id(envelope) == private.key_id
    assert envelope_suite(envelope) == private.suite


def test_sealing_is_randomised(keypair: tuple[RecipientPrivateKey, RecipientPublicKey]) -> None:
    _, public = keypair
    assert seal(SECRET, public, ctx()) != seal(SECRET, public, ctx())


def test_default_generate_keypair_uses_default_suite_and_derived_id() -> None:
    private, public = generate_keypair()
    assert private.suite == public.suite == default_suite()
    assert private.key_id == public.key_id == hashlib.sha256(public.public_bytes).hexdigest()[:16]
    assert public_key_of(private) == public
    assert public.fingerprint == hashlib.sha256(public.public_bytes).hexdigest()


def test_custom_key_id_and_invalid_ids() -> None:
    private, public = generate_keypair(SUITE_X25519, key_id="org-a.2025_01")
    assert private.key_id == public.key_id == "org-a.2025_01"
    for bad in ["", "has space", "colon:in", "x" * 65, "ünï"]:
        with pytest.raises(SealingError, match="malformed key id"):
            generate_keypair(SUITE_X25519, key_id=bad)
    with pytest.raises(SealingError, match="unknown suite"):
        generate_keypair("rot13")


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_public_key_text_round_trip(suite: str) -> None:
    _, public = generate_keypair(suite)
    text = public.to_text()
    assert text.startswith(f"safebot-pk1:{suite}:{public.key_id}:")
    assert RecipientPublicKey.from_text(text) == public
    assert RecipientPublicKey.from_text(text + "\n") == public


@pytest.mark.parametrize(
    "text",
    [
        "",
        "safebot-pk2:x25519-hkdfsha256-chacha20poly1305:abc:AAAA",
        "safebot-pk1:x25519-hkdfsha256-chacha20poly1305:abc",
        "safebot-pk1:x25519-hkdfsha256-chacha20poly1305:abc:AAAA",  # too short
        "safebot-pk1:x25519-hkdfsha256-chacha20poly1305:abc:" + "A" * 42 + "!",
        "safebot-pk1:nope:abc:" + "A" * 43,
        "safebot-pk1:x25519-hkdfsha256-chacha20poly1305:a b:" + "A" * 43,
        "safebot-pk1:x25519-hkdfsha256-chacha20poly1305:abc:" + "A" * 43 + "=",
    ],
)
def test_public_key_from_text_rejects_garbage(text: str) -> None:
    with pytest.raises(SealingError):
        RecipientPublicKey.from_text(text)


@needs_hybrid
def test_public_key_from_text_validates_mlkem_half() -> None:
    bogus = RecipientPublicKey(key_id="k", suite=SUITE_HYBRID, public_bytes=b"\xff" * 1216)
    with pytest.raises(SealingError, match="invalid public key"):
        RecipientPublicKey.from_text(bogus.to_text())
    with pytest.raises(SealingError, match="invalid public key"):
        seal(SECRET, bogus, ctx())


def test_low_order_x25519_public_key_does_not_escape() -> None:
    zero = RecipientPublicKey(key_id="k", suite=SUITE_X25519, public_bytes=bytes(32))
    with pytest.raises(SealingError):
        seal(SECRET, zero, ctx())


def test_key_objects_validate_their_fields() -> None:
    with pytest.raises(SealingError, match="32 bytes"):
        RecipientPrivateKey(key_id="k", suite=SUITE_X25519, seed=b"short")
    with pytest.raises(SealingError, match="wrong length"):
        RecipientPublicKey(key_id="k", suite=SUITE_HYBRID, public_bytes=bytes(32))


def test_repr_does_not_show_seed(keypair: tuple[RecipientPrivateKey, RecipientPublicKey]) -> None:
    private, _ = keypair
    for shown in (repr(private), str(private), f"{private!r}"):
        assert private.seed.hex() not in shown
        assert repr(private.seed) not in shown
        assert "seed" not in shown
        assert private.key_id in shown


# --------------------------------------------------------------------------------------
# Determinism and official test vectors
# --------------------------------------------------------------------------------------

# From cryptography_vectors 50.0.2, HPKE/hpke-pq-test-vectors.json: mode 0,
# KEM 0x647a (MLKEM768-X25519, X-Wing), KDF 0x0001 (HKDF-SHA256), AEAD 0x0003
# (ChaCha20-Poly1305), first encryption. (The generator hex-encoded info and pt twice.)
XWING_SK = bytes.fromhex("3ec47fa82dd5689d27c6190e724c74ec8f608df3331ce331929e37b829676630")
XWING_PK_SHA256 = "ad8aaf3f00d8a39bfeec2947a7d5dde68be08bba19bd301a348a45dc5fcc8341"
XWING_INFO = bytes.fromhex(
    "34663634363532303666366532303631323034373732363536333639363136653230353537323665"
)
XWING_ENC = bytes.fromhex(
    "26759c7b22923ea5cc9c78e3e14c8fc62dcb0a66ce44460966978a7fe9685e0c6d22999d99a3f112c307a6d5"
    "b2e63591f41e8a3516ba62908376d664557206e696ae870305ff6ba08125266bc0765672beca90fd5c6dae0d"
    "3ddad1506065a9d4f297e0c3e70bb441961df26d7a19d79d1ef7e2ac5e53b32a3c7b4e07f2af2ae65830a3e8"
    "d1cb2ac1932fc19ec5434303b62c9d010645cf95a475913da5d77a282b88402e4a77ab17b09559dce8a96c67"
    "a27bea8f653ceaca3d278b6ed150fe936dda28b1726665c946cab30363ef89eb878ffcc74caa277a5dab1994"
    "193a67967125ebd50986dc16997b8f7484d7d0e27c79ff4b68201c1b4102f5a73322fd3da96bf655d90c9b1e"
    "6305e01ab1b3449ea3f458b0e98e1f2d1632825c3b30018bb5eefbcc80f767d0b9e7f9f731e1958083879ebc"
    "c1b5bb061e89302c444a85eeed169b10d2520fd47b6a111914f3bda2f31d04f250522ba951012a629fa2cd21"
    "92583cc9abd75d02b7a11fd18056c414b8f0e0936535bf9b637c7e614a1ae9b9e907fe9d14243f13625ec92a"
    "97599eaa491b9da918b586e27d34c7279205dd76cf0ecdbf60b5aea4cfb9dca41069f3e2fc8f371a7cf3b089"
    "ea469d8417bda3149159992399ccd5baf776a0f8966d4742cbedaeac131dde853cb1fbb7b869a4c01cea8a48"
    "7a2e52e757bf4dfcec23995e5f088804d2cf99c82f087454144cc586845d7cf81249e7ad919ea1b06001ad13"
    "501da118ee19859595015b4b1872912dd2d4f5dd854f144ae07038bd8bb2b498f8edcb1c70c2102af768d508"
    "a1b4237238c0c6e34a9c819b0ebf28f49505d374095b2b58c7a810cf1e806cb3c79af3bc84c8b657787804e3"
    "74df2b49be6ac510d43024e65fd031540a7cd45c9348ad9f5511b969be6f9c4d849c1428f611225b0d9a3ae3"
    "41669ba645baa877cdc34c39f5975f4991a77f86eca2c25ebee63a06928c1bbc9513f35547645e835544c1e4"
    "a8f33d7f29c1cfbde6425fa05aeff69f373aa8a281c92817cbe5be9305795354efc71a89462e87ce83919d67"
    "9dcbfded88f7fff9177f4b49e8a959d9aa78b63feb99fa56735df0f4fc253653a9177f767b307bb2a9e7e4d9"
    "042f22cc6c4f177db80efaebfef8a3baa6f1423335c830308c2496118263f0bd361d93f8b4e75a7cba94c2af"
    "72dd13ee8926524cfe9df14f79165a3498b9fd631cbb874d25b11315f9acb442512561cf7dc6098a08874fcc"
    "704cdd5e84e57811a49e78fbd56e5a8e767617321c295095595ea2b0f4aaca30dd38749ab83532be1bdcf4c3"
    "2a119e035558bb427dbdb806b4e15cea8df3c098728c2b5e40209c5138531db1b660777544e6a014477a7d1b"
    "93eb0f245fe9e7053997c10504ef692f21639c86d8926ddce6886d0c39eb7c59357ee54f81871019593713f4"
    "a6df37bf7003358694cff59af9872ca02bf762e20499227dba2f552203459dcc69780ef08d9bab4140d96e1c"
    "478f06b63b60c9bfb10d90e31d47570ea949ab8e9b99db6ec2f8a2a77dcb25cc36b733dfc09b8299a9d7b19e"
    "68c09ad82703f9b47d34d1a3cbafe42c73f57d0e"
)
XWING_AAD = bytes.fromhex("436f756e742d30")
XWING_CT = bytes.fromhex(
    "c5c591f99092d5e38df0a52699af249c66f8275a863423c076de8147a53e65cc584041c963b77a7e59ea93"
    "841b1339b5efda8909b71f74bb0073ad62e899de310c1566dea2fd29eba377"
)
XWING_PT = bytes.fromhex(
    "34323635363137353734373932303639373332303734373237353734363832633230373437323735373436"
    "383230363236353631373537343739"
)

# RFC 9180 appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305).
X25519_SK = bytes.fromhex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
X25519_PK = bytes.fromhex("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
X25519_INFO = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")
X25519_ENC = bytes.fromhex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
X25519_CT = bytes.fromhex(
    "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28"
)
X25519_PT = b"Beauty is truth, truth beauty"


@needs_hybrid
def test_hybrid_key_derivation_matches_official_vector() -> None:
    private = RecipientPrivateKey(key_id="vector", suite=SUITE_HYBRID, seed=XWING_SK)
    public = public_key_of(private)
    assert len(public.public_bytes) == 1216
    assert hashlib.sha256(public.public_bytes).hexdigest() == XWING_PK_SHA256


@needs_hybrid
def test_hybrid_decrypts_official_vector_ciphertext() -> None:
    decrypt_with_aad = getattr(rust_openssl.hpke, "_decrypt_with_aad", None)
    if decrypt_with_aad is None:
        pytest.skip("cryptography has no AAD hook to replay the vector's sequence-0 AAD")
    suite = Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    plaintext = decrypt_with_aad(
        suite,
        XWING_ENC + XWING_CT,
        _hybrid_private_key(XWING_SK),
        info=XWING_INFO,
        aad=XWING_AAD,
    )
    assert plaintext == XWING_PT


def test_x25519_key_matches_rfc9180_vector() -> None:
    private = RecipientPrivateKey(key_id="vector", suite=SUITE_X25519, seed=X25519_SK)
    assert public_key_of(private).public_bytes == X25519_PK
    decrypt_with_aad = getattr(rust_openssl.hpke, "_decrypt_with_aad", None)
    if decrypt_with_aad is None:
        pytest.skip("cryptography has no AAD hook to replay the vector's sequence-0 AAD")
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    plaintext = decrypt_with_aad(
        suite,
        X25519_ENC + X25519_CT,
        x25519.X25519PrivateKey.from_private_bytes(X25519_SK),
        info=X25519_INFO,
        aad=XWING_AAD,
    )
    assert plaintext == X25519_PT


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_same_seed_same_public_key_and_opens(suite: str) -> None:
    seed = bytes(range(32))
    first = public_key_of(RecipientPrivateKey(key_id="a", suite=suite, seed=seed))
    second = public_key_of(RecipientPrivateKey(key_id="a", suite=suite, seed=seed))
    assert first == second
    other = public_key_of(RecipientPrivateKey(key_id="a", suite=suite, seed=bytes(32)))
    assert other.public_bytes != first.public_bytes
    envelope = seal(SECRET, first, ctx())
    rebuilt = RecipientPrivateKey(key_id="a", suite=suite, seed=bytes(range(32)))
    assert open_sealed(envelope, [rebuilt], ctx()) == SECRET


# --------------------------------------------------------------------------------------
# Rotation and key choice
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES)
def test_key_rotation_opens_with_the_right_key(suite: str) -> None:
    old_private, old_public = generate_keypair(suite)
    new_private, new_public = generate_keypair(suite)
    assert old_private.key_id != new_private.key_id
    old_envelope = seal(b"sealed before rotation", old_public, ctx("req-1"))
    new_envelope = seal(b"sealed after rotation", new_public, ctx("req-2"))
    for identities in (
        [old_private, new_private],
        [new_private, old_private],
        {old_private.key_id: old_private, new_private.key_id: new_private},
    ):
        assert open_sealed(old_envelope, identities, ctx("req-1")) == b"sealed before rotation"
        assert open_sealed(new_envelope, identities, ctx("req-2")) == b"sealed after rotation"
    generator = (k for k in [new_private, old_private])
    assert open_sealed(old_envelope, generator, ctx("req-1")) == b"sealed before rotation"
    # A retired key that was dropped can no longer open its envelopes.
    assert_sealing_error(
        lambda: open_sealed(old_envelope, [new_private], ctx("req-1")),
        f"unknown key id {old_private.key_id}",
    )


def test_mixed_suites_for_one_org() -> None:
    x_private, x_public = generate_keypair(SUITE_X25519)
    h_private, h_public = generate_keypair(default_suite())
    identities = [x_private, h_private]
    assert open_sealed(seal(SECRET, x_public, ctx()), identities, ctx()) == SECRET
    assert open_sealed(seal(SECRET, h_public, ctx()), identities, ctx()) == SECRET


def test_duplicate_key_id_with_different_keys_is_refused() -> None:
    a, a_public = generate_keypair(SUITE_X25519, key_id="same")
    b, _ = generate_keypair(SUITE_X25519, key_id="same")
    envelope = seal(SECRET, a_public, ctx())
    assert_sealing_error(lambda: open_sealed(envelope, [a, b], ctx()), "two different keys")
    # The same key listed twice is fine.
    assert open_sealed(envelope, [a, a], ctx()) == SECRET


def test_mapping_entry_must_carry_its_key_id() -> None:
    a, a_public = generate_keypair(SUITE_X25519)
    b, _ = generate_keypair(SUITE_X25519)
    envelope = seal(SECRET, a_public, ctx())
    assert_sealing_error(lambda: open_sealed(envelope, {a.key_id: b}, ctx()), "another key")


def test_suite_mismatch() -> None:
    x_private, x_public = generate_keypair(SUITE_X25519, key_id="k1")
    envelope = seal(SECRET, x_public, ctx())
    pretender = RecipientPrivateKey(key_id="k1", suite=SUITE_HYBRID, seed=x_private.seed)
    assert_sealing_error(lambda: open_sealed(envelope, [pretender], ctx()), "suite mismatch")


# --------------------------------------------------------------------------------------
# Tampering, misuse and malformed envelopes
# --------------------------------------------------------------------------------------


def test_flipped_header_bytes_never_open(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey],
) -> None:
    private, public = keypair
    envelope = seal(SECRET, public, ctx())
    for index in range(header_len(envelope)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = flip(envelope, index, mask)
            assert_sealing_error(partial(open_sealed, tampered, [private], ctx()), "")


def test_header_fields_give_specific_messages(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey],
) -> None:
    private, public = keypair
    envelope = seal(SECRET, public, ctx())  # no signer: the version-1 format
    assert envelope[:2] == b"SB" and envelope[2] == LEGACY_VERSION

    def open_(data: bytes) -> bytes:
        return open_sealed(data, [private], ctx())

    assert_sealing_error(lambda: open_(b"XX" + envelope[2:]), "bad magic")
    future = envelope[:2] + bytes([3]) + envelope[3:]
    assert_sealing_error(lambda: open_(future), "unsupported envelope version 3")
    assert_sealing_error(
        lambda: open_(envelope[:3] + b"\x09" + envelope[4:]), "unsupported envelope suite"
    )
    other_suite = b"\x02" if private.suite == SUITE_HYBRID else b"\x01"
    renamed = RecipientPrivateKey(
        key_id=private.key_id,
        suite=SUITE_X25519 if private.suite == SUITE_HYBRID else SUITE_HYBRID,
        seed=private.seed,
    )
    swapped = envelope[:3] + other_suite + envelope[4:]
    assert_sealing_error(lambda: open_(swapped), "suite mismatch")
    if hybrid_supported():
        # Header and key now agree on the suite, but the header is not what was sealed.
        assert_sealing_error(lambda: open_sealed(swapped, [renamed], ctx()), "")
    bad_id = envelope[:5] + (b"z" if envelope[5:6] != b"z" else b"y") + envelope[6:]
    assert_sealing_error(lambda: open_(bad_id), f"unknown key id {envelope_key_id(bad_id)}")
    assert_sealing_error(lambda: open_(envelope[:4] + b"\x00" + envelope[5:]), "malformed")
    assert_sealing_error(lambda: open_(envelope[:5] + b"\x00" + envelope[6:]), "malformed")


def test_moved_to_another_key_header_does_not_open() -> None:
    a, a_public = generate_keypair(SUITE_X25519, key_id="key-a")
    b = RecipientPrivateKey(key_id="key-b", suite=SUITE_X25519, seed=a.seed)
    envelope = seal(SECRET, a_public, ctx())
    relabelled = envelope[:4] + b"\x05key-b" + envelope[10:]
    assert envelope_key_id(relabelled) == "key-b"
    assert_sealing_error(lambda: open_sealed(relabelled, [a, b], ctx()), DOES_NOT_OPEN)


def test_flipped_enc_or_ciphertext_does_not_open(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey],
) -> None:
    private, public = keypair
    envelope = seal(SECRET, public, ctx())
    start = header_len(envelope)
    enc_len = 1120 if private.suite == SUITE_HYBRID else 32
    for index in (start, start + 7, start + enc_len - 1):  # encapsulated key
        tampered = flip(envelope, index)
        assert_sealing_error(partial(open_sealed, tampered, [private], ctx()), DOES_NOT_OPEN)
    for index in (start + enc_len, start + enc_len + 100, len(envelope) - 1):  # ct and tag
        tampered = flip(envelope, index)
        assert_sealing_error(partial(open_sealed, tampered, [private], ctx()), DOES_NOT_OPEN)
    assert_sealing_error(lambda: open_sealed(envelope + b"\x00", [private], ctx()), DOES_NOT_OPEN)


@pytest.mark.parametrize(
    "other",
    [
        ctx(request_id="req-0002"),
        ctx(org="org-b"),
        ctx(when=WHEN + timedelta(microseconds=1)),
        ctx(when=WHEN - timedelta(days=1)),
        ctx(request_id="req-0001org-a", org="x"),
    ],
    ids=["request", "org", "created_at+1us", "created_at-1d", "shifted-fields"],
)
def test_swapped_context_does_not_open(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey], other: SealContext
) -> None:
    private, public = keypair
    envelope = seal(SECRET, public, ctx())
    assert_sealing_error(lambda: open_sealed(envelope, [private], other), DOES_NOT_OPEN)


def test_context_time_is_compared_as_an_instant() -> None:
    private, public = generate_keypair(SUITE_X25519)
    envelope = seal(SECRET, public, ctx())
    cet = timezone(timedelta(hours=1))
    assert open_sealed(envelope, [private], ctx(when=WHEN.astimezone(cet))) == SECRET


def test_wrong_organisations_key(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey],
) -> None:
    private_a, public_a = keypair
    private_b, _ = generate_keypair(private_a.suite)
    envelope = seal(SECRET, public_a, ctx())
    assert_sealing_error(
        lambda: open_sealed(envelope, [private_b], ctx()), f"unknown key id {private_a.key_id}"
    )
    # Org B's key presented under org A's key id still does not open it.
    impostor = RecipientPrivateKey(
        key_id=private_a.key_id, suite=private_a.suite, seed=private_b.seed
    )
    assert_sealing_error(lambda: open_sealed(envelope, [impostor], ctx()), DOES_NOT_OPEN)


def test_unknown_key_id_and_empty_identities() -> None:
    _, public = generate_keypair(SUITE_X25519, key_id="lost-key")
    envelope = seal(SECRET, public, ctx())
    assert_sealing_error(lambda: open_sealed(envelope, [], ctx()), "unknown key id lost-key")
    assert_sealing_error(lambda: open_sealed(envelope, {}, ctx()), "unknown key id lost-key")


def test_truncated_envelope(keypair: tuple[RecipientPrivateKey, RecipientPublicKey]) -> None:
    private, public = keypair
    envelope = seal(SECRET, public, ctx())
    enc_len = 1120 if private.suite == SUITE_HYBRID else 32
    minimum = header_len(envelope) + enc_len + 16
    for cut in range(len(envelope)):
        truncated = envelope[:cut]
        expected = "truncated envelope" if cut < minimum else DOES_NOT_OPEN
        assert_sealing_error(partial(open_sealed, truncated, [private], ctx()), expected)
    for cut in range(header_len(envelope)):
        assert_sealing_error(partial(envelope_key_id, envelope[:cut]), "truncated envelope")
    assert envelope_key_id(envelope[: header_len(envelope)]) == private.key_id


def test_random_corruption_only_raises_sealing_error() -> None:
    rng = random.Random(1234)
    keys = [
        generate_keypair(suite) for suite in SUITES if suite != SUITE_HYBRID or hybrid_supported()
    ]
    identities = [k for k, _ in keys]
    for _private, public in keys:
        envelope = seal(SECRET, public, ctx())
        for _ in range(300):
            data = bytearray(envelope)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                del data[rng.randrange(len(data)) :]
            if data == envelope:
                continue
            with pytest.raises(SealingError):
                open_sealed(bytes(data), identities, ctx())
    for _ in range(200):
        junk = rng.randbytes(rng.randrange(0, 2000))
        with pytest.raises(SealingError):
            open_sealed(junk, identities, ctx())


def test_padding_hides_message_length(
    keypair: tuple[RecipientPrivateKey, RecipientPublicKey],
) -> None:
    _, public = keypair
    sizes = {len(seal(b"x" * n, public, ctx())) for n in (0, 1, 100, 200, PAD_BLOCK - 4)}
    assert len(sizes) == 1
    one_block = sizes.pop()
    assert len(seal(b"x" * (PAD_BLOCK - 3), public, ctx())) == one_block + PAD_BLOCK
    assert len(seal(b"x", public, ctx())) == len(seal(b"y" * 200, public, ctx()))


# --------------------------------------------------------------------------------------
# Context and argument validation
# --------------------------------------------------------------------------------------


def test_context_rejects_naive_datetime_and_empty_fields() -> None:
    with pytest.raises(SealingError, match="timezone-aware"):
        SealContext(request_id="r", org="o", created_at=datetime(2025, 1, 1))
    with pytest.raises(SealingError, match="request_id"):
        SealContext(request_id="", org="o", created_at=WHEN)
    with pytest.raises(SealingError, match="org"):
        SealContext(request_id="r", org="", created_at=WHEN)
    with pytest.raises(SealingError, match="too long"):
        SealContext(request_id="r" * 5000, org="o", created_at=WHEN)
    with pytest.raises(SealingError, match="not valid text"):
        SealContext(request_id="\ud800", org="o", created_at=WHEN)


def test_context_encoding_is_canonical() -> None:
    cet = timezone(timedelta(hours=1))
    assert ctx().to_bytes() == ctx(when=WHEN.astimezone(cet)).to_bytes()
    assert ctx().created_at_utc() == "2025-03-14T09:26:53.589793+00:00"
    assert ctx(request_id="ab", org="c").to_bytes() != ctx(request_id="a", org="bc").to_bytes()


def test_seal_rejects_bad_arguments() -> None:
    _, public = generate_keypair(SUITE_X25519)
    with pytest.raises(SealingError, match="plaintext must be bytes"):
        seal("text", public, ctx())  # type: ignore[arg-type]
    with pytest.raises(SealingError, match="RecipientPublicKey"):
        seal(SECRET, "key", ctx())  # type: ignore[arg-type]
    with pytest.raises(SealingError, match="SealContext"):
        seal(SECRET, public, "ctx")  # type: ignore[arg-type]
    with pytest.raises(SealingError, match="envelope must be bytes"):
        open_sealed("text", [], ctx())  # type: ignore[arg-type]


def test_open_accepts_bytes_like_envelopes() -> None:
    private, public = generate_keypair(SUITE_X25519)
    envelope = seal(SECRET, public, ctx())
    assert open_sealed(memoryview(envelope), [private], ctx()) == SECRET  # type: ignore[arg-type]
    assert open_sealed(bytearray(envelope), [private], ctx()) == SECRET  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Property test (runs when hypothesis is installed)
# --------------------------------------------------------------------------------------


def test_round_trip_property() -> None:
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    private, public = generate_keypair()

    @settings(max_examples=60, deadline=None)
    @given(
        plaintext=st.binary(max_size=3000),
        request_id=st.text(min_size=1, max_size=40),
        org=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
        offset_minutes=st.integers(min_value=-900, max_value=900),
    )
    def round_trip(plaintext: bytes, request_id: str, org: str, offset_minutes: int) -> None:
        try:
            context = SealContext(
                request_id=request_id,
                org=org,
                created_at=WHEN.astimezone(timezone(timedelta(minutes=offset_minutes))),
            )
        except SealingError:
            return  # e.g. lone surrogates: rejected up front, never sealed
        envelope = seal(plaintext, public, context)
        assert len(envelope) % PAD_BLOCK == len(seal(b"", public, context)) % PAD_BLOCK
        assert open_sealed(envelope, [private], context) == plaintext

    round_trip()
