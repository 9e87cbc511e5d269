"""Small JSON documents encrypted at rest: drafts of contact requests, and the inbox and
outbox rows that carry an update's or a reply's text (under the server's draft key).

A draft is sealed under a key of its own person: derived from the server's draft key and her
messenger id, which is never stored (the database holds only keyed hashes of it). So a copy of
the database and the server secrets together still does not open a draft directly: it opens
only in that person's own turn, when her message brings the id. (Telegram ids are numbers that
can be enumerated, so this raises the cost of reading drafts from a stolen copy; it is not a
secret of its own. The inbox and outbox rows of turns not yet run or replies not yet sent do
hold the id, sealed under the server key, for the seconds they exist.)

The label (the chat key, prefixed by what the blob is) is the associated data, so a blob copied
to another person's row, or from the inbox into the outbox, does not open. A blob that does not
open (the key was lost or rotated) is treated as absent: nothing crashes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


def seal_json(key: bytes, label: str, value: Mapping[str, Any]) -> bytes:
    nonce = os.urandom(12)
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return _VERSION + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, label.encode())


def open_json(key: bytes, label: str, blob: bytes | None) -> dict[str, Any] | None:
    if not blob or blob[:1] != _VERSION or len(blob) < 29:
        return None
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(blob[1:13], blob[13:], label.encode())
    except InvalidTag:
        return None
    value = json.loads(plaintext)
    return value if isinstance(value, dict) else None


def person_draft_key(server_key: bytes, channel: str, user_id: str) -> bytes:
    """The key of one person's draft: HKDF of the server's draft key and her messenger id."""
    info = f"safebot draft v1|{channel}|{user_id}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(server_key)


def seal_draft(key: bytes, chat_key: str, draft: Mapping[str, Any]) -> bytes:
    return seal_json(key, chat_key, draft)


def open_draft(key: bytes, chat_key: str, blob: bytes | None) -> dict[str, Any] | None:
    return open_json(key, chat_key, blob)
