"""Keyed hashes that stand in for people. The Telegram id itself is never stored."""

from __future__ import annotations

import hashlib
import hmac


def keyed_hash(key: bytes, label: str, value: str) -> str:
    """HMAC-SHA256 hex. Different labels give unlinkable hashes of the same id."""
    return hmac.new(key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()
