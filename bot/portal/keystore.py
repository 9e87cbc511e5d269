"""Unwrapped organisation keys, per portal session, in this process's memory only.

Never written anywhere: not to the database, not to the cookie, not to a log. Logout, idle and
absolute expiry and an advocate's removal drop a session's keys (the sweep in
bot/portal/app.py finds sessions ended by another process, such as `safebot advocates
remove`). Python cannot promise to wipe the bytes; dropping every reference is what it can do.
A session served by another process than the one it logged in on has no keys there: it must
log in again (run the portal behind sticky sessions when several processes serve it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from storage.sealing import RecipientPrivateKey


class KeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, dict[str, RecipientPrivateKey]] = {}

    def put(self, session_hash: str, keys: Iterable[RecipientPrivateKey]) -> None:
        self._keys[session_hash] = {k.key_id: k for k in keys}

    def add(self, session_hash: str, keys: Iterable[RecipientPrivateKey]) -> None:
        self._keys.setdefault(session_hash, {}).update({k.key_id: k for k in keys})

    def get(self, session_hash: str) -> Mapping[str, RecipientPrivateKey]:
        return dict(self._keys.get(session_hash, {}))

    def drop(self, session_hash: str) -> None:
        held = self._keys.pop(session_hash, None)
        if held is not None:
            held.clear()

    def clear(self) -> None:
        for session_hash in list(self._keys):
            self.drop(session_hash)

    def sessions(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
