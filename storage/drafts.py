"""Drafts of contact requests, encrypted at rest with the server's draft key.

The chat key is the associated data, so a draft copied to another person's row does not open.
A draft that does not open (the key was lost or rotated) is treated as absent: the person
starts the form again, nothing crashes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_VERSION = b"\x01"


def seal_draft(key: bytes, chat_key: str, draft: Mapping[str, Any]) -> bytes:
    nonce = os.urandom(12)
    plaintext = json.dumps(draft, separators=(",", ":"), ensure_ascii=False).encode()
    return _VERSION + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, chat_key.encode())


def open_draft(key: bytes, chat_key: str, blob: bytes | None) -> dict[str, Any] | None:
    if not blob or blob[:1] != _VERSION or len(blob) < 29:
        return None
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(blob[1:13], blob[13:], chat_key.encode())
    except InvalidTag:
        return None
    value = json.loads(plaintext)
    return value if isinstance(value, dict) else None
