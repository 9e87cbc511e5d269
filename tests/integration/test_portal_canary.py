"""Canary: after a whole portal session (set-up, login, unlock with the identity file, open a
request, record, close, log out), no file the program wrote (the SQLite database, its -wal
and -shm, the log at DEBUG) holds what the request says once decrypted, an unwrapped key
(organisation or personal), a TOTP secret, a passphrase, a recovery code or a session id.
SQLite only: the files are the point."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

from bot.portal import crypto
from storage.db import transaction
from storage.dialect import checkpoint
from storage.portal import advocate_by_login
from tests.integration.portal_support import (
    IDENTITY_PASSPHRASE,
    ORG,
    PortalHarness,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)
from tests.integration.support import files_containing, only_sqlite, sqlite_files

__all__ = ["harness"]

MESSAGE = "CANARY-PORTAL-MESSAGE-5e1f zażółć مرحبا"
CODEWORD = "CANARY-PORTAL-CODEWORD-77aa"
PHONE = "+447700900123"


def forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        secret.hex().encode(),
    ]


@only_sqlite
async def test_nothing_decrypted_or_unwrapped_reaches_the_disk(
    harness: PortalHarness, tmp_path: Path
) -> None:
    log_file = tmp_path / "portal.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        stored = await harness.submit(
            {"method": "call", "phone": PHONE, "codeword": CODEWORD, "message": MESSAGE}
        )
        _, token = await harness.invite("Canary Admin", admin=True)
        url = f"/portal/requests/{stored.request_id}"
        async with harness.client() as client:
            account = await set_up(harness, client, token, login="canary")
            assert await log_in(harness, client, account) == 303
            session_token = client.session.cookie_jar.filter_cookies(client.make_url("/portal/"))
            assert await unlock(harness, client) == 303
            await post_form(client, url, f"{url}/claim")
            page = await (await client.get(url)).text()
            assert CODEWORD in page  # the positive control: it was really decrypted
            await post_form(client, url, f"{url}/outcome", outcome="closed", reason="supported")
            await post_form(client, "/portal/inbox", "/portal/logout")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    async with transaction(harness.db.sessions) as session:
        row = await advocate_by_login(session, "canary")
        assert row is not None and row.wrapped_key is not None
    personal = crypto.unwrap_personal_key(row.wrapped_key, account.passphrase, ORG)
    await checkpoint(harness.db.engine)

    assert harness.db.path is not None
    files = sqlite_files(harness.db.path)
    files["portal.log"] = log_file.read_bytes()
    needles: list[bytes] = [
        MESSAGE.encode(),
        CODEWORD.encode(),
        PHONE.encode(),
        b"7700 900123",
        account.passphrase.encode(),
        IDENTITY_PASSPHRASE.encode(),
        account.totp_secret.encode(),
        *(code.encode() for code in account.recovery_codes),
        *(forms(harness.org_keys[ORG].seed)),
        *(forms(personal.seed)),
    ]
    needles += [m.value.encode() for m in session_token.values()]
    assert session_token, "the session cookie was set"
    found = {needle: files_containing(files, needle) for needle in needles}
    assert not {k: v for k, v in found.items() if v}
    # The key never left memory while the session lived, and went with it.
    assert len(harness.portal.keys) == 0
