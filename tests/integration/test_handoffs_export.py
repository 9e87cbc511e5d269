"""`safebot handoffs export` (bot/handoffs.py) against a real database, SQLite and PostgreSQL:
the answers in words beside their codes, the text format, the verdict per request, and which
identity file a wrong passphrase belongs to."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.config import bundled_deployment_path, load_deployment
from bot.handoffs import EXPORT_ACTION, export_requests
from bot.keyring import register_public_key
from flows.definition import load_flow
from flows.form import choices_answer
from flows.kinds import RequestStatus
from storage import audit, queries
from storage.db import transaction
from storage.errors import KeyUnlockError
from storage.keys import KdfParams, wrap_private_key, write_identity_file
from storage.models import AuditEntry
from storage.requests import NewRequest, store_request
from storage.sealing import RecipientPrivateKey, generate_keypair
from storage.signing import SigningKey
from tests.integration.support import Database, now

ORG = "eastshire-hub"
BOT = SigningKey(b"B" * 32)
PASSPHRASE = b"correct horse battery staple"
CHEAP = KdfParams(memory_cost_kib=64, iterations=1, lanes=1)
ANSWERS = {
    "consent": "yes",
    "method": "call",
    "phone": "+447911123456",
    "times": choices_answer(["mornings", "evenings"], "after 6pm") or "",
    "leave_message": "no",
    "someone_else": "hang_up",
    "codeword": "Heron-7",
    "language": "pl",
    "urgent": "yes",
    "organisation": ORG,
    "message": "Proszę dzwonić wieczorem <b>",
}


def identity(path: Path, private: RecipientPrivateKey, passphrase: bytes = PASSPHRASE) -> Path:
    write_identity_file(path, wrap_private_key(private, passphrase, org=ORG, params=CHEAP))
    return path


async def store(db: Database) -> str:
    async with transaction(db.sessions) as s:
        stored = await store_request(
            s,
            NewRequest(answers=ANSWERS, language="pl", urgent=True, organisation=ORG),
            owner_key="f" * 64,
            lookup_key=b"L" * 32,
            now=now(),
            retention=dt.timedelta(days=30),
            notify=False,
            signer=BOT,
            pinned=None,
        )
    return stored.request_id


async def export(db: Database, identities: list[Path], fmt: str) -> tuple[str, tuple[int, int]]:
    out = io.StringIO()
    counts = await export_requests(
        db.url,
        ORG,
        identities,
        PASSPHRASE,
        out=out,
        verify_keys=[BOT.verify_key],
        flow=load_flow(),
        deployment=load_deployment(bundled_deployment_path()),
        fmt=fmt,
    )
    return out.getvalue(), counts


async def test_export_gives_words_beside_codes_and_a_text_format(
    db: Database, tmp_path: Path
) -> None:
    private, public = generate_keypair()
    await register_public_key(db.sessions, ORG, public)
    request_id = await store(db)
    files = [identity(tmp_path / "hub.identity", private)]

    lines, counts = await export(db, files, "jsonl")
    assert counts == (1, 0)
    (record,) = [json.loads(line) for line in lines.splitlines()]
    assert record["answers"] == ANSWERS  # the codes, unchanged
    assert (record["authenticity"], record["altered"]) == ("genuine", [])
    words = {w["field"]: (w["question"], w["answer"]) for w in record["answers_in_words"]}
    assert words["method"] == ("How to contact me", "Phone call")
    assert words["times"] == ("Safe times", "Weekday mornings; Evenings; “after 6pm”")
    assert words["leave_message"] == ("Leave a message", "No, do not leave one")
    assert words["someone_else"] == ("If someone else answers", "End the call")
    assert words["language"] == ("Language to speak", "Polish")
    assert words["organisation"][1] == "Eastshire Migrant Women's Advice Service (fictional)"
    assert words["message"][1] == ANSWERS["message"]  # her own words, as she wrote them
    assert [w["field"] for w in record["answers_in_words"]][:3] == ["consent", "method", "phone"]

    page, _ = await export(db, files, "text")
    assert page.startswith(f"Request {request_id}\n")
    assert "  Urgent:       yes\n" in page
    assert "  Language:     Polish (pl)\n" in page
    assert "Authenticity: GENUINE" in page
    assert "    How to contact me: Phone call  [call]\n" in page
    assert "    Safe times: Weekday mornings; Evenings; “after 6pm”  [mornings, evenings]\n" in page
    assert "    Code word: Heron-7\n" in page  # no code shown where the words are the code
    assert "{" not in page  # no JSON in the text format

    # The database is changed: the export says so, and shows what the bot sealed.
    async with transaction(db.sessions) as s:
        await s.execute(text("UPDATE contact_requests SET urgent = :v"), {"v": False})
    page, _ = await export(db, files, "text")
    assert "Authenticity: ALTERED" in page and "(urgent)" in page
    assert "  Urgent:       yes (the database says no)\n" in page
    (record,) = [json.loads(line) for line in (await export(db, files, "jsonl"))[0].splitlines()]
    assert (record["authenticity"], record["altered"]) == ("altered", ["urgent"])
    assert (record["urgent"], record["sealed"]["urgent"]) == (False, True)


async def test_a_request_that_cannot_be_opened_still_has_a_verdict(
    db: Database, tmp_path: Path
) -> None:
    _, public = generate_keypair()
    await register_public_key(db.sessions, ORG, public)
    await store(db)
    other, _ = generate_keypair()
    page, counts = await export(db, [identity(tmp_path / "old.identity", other)], "text")
    assert counts == (0, 1)
    assert "Authenticity: GENUINE" in page
    assert f"Could not be opened: unknown key id {public.key_id}" in page


async def test_a_request_withdrawn_after_pick_up_exports_with_nothing_to_read(
    db: Database, tmp_path: Path
) -> None:
    private, public = generate_keypair()
    await register_public_key(db.sessions, ORG, public)
    request_id = await store(db)
    async with transaction(db.sessions) as s:
        await queries.set_request_status(s, request_id, RequestStatus.PICKED_UP, now())
        result = await queries.forget_requests(s, "f" * 64, now())
    assert result.withdrawn == 1
    files = [identity(tmp_path / "hub.identity", private)]
    (record,) = [json.loads(line) for line in (await export(db, files, "jsonl"))[0].splitlines()]
    assert record["status"] == "withdrawn" and record["authenticity"] is None
    assert record["error"] == "withdrawn by the person: nothing to read"
    assert "answers" not in record
    page, _ = await export(db, files, "text")
    assert "  Withdrawn:    withdrawn by the person: nothing to read\n" in page
    assert "Heron-7" not in page and "Authenticity" not in page


async def test_a_wrong_passphrase_names_its_identity_file(db: Database, tmp_path: Path) -> None:
    first, _ = generate_keypair()
    second, _ = generate_keypair()
    good = identity(tmp_path / "hub-2025.identity", first)
    other = identity(tmp_path / "hub-2026.identity", second, b"another passphrase")
    with pytest.raises(KeyUnlockError) as info:
        await export(db, [good, other], "jsonl")
    message = str(info.value)
    assert f"does not unlock identity file {other} (key {second.key_id})" in message
    assert f"it does unlock {good}" in message


async def test_an_export_is_recorded_in_the_audit_log_without_request_ids(
    db: Database, tmp_path: Path
) -> None:
    private, public = generate_keypair()
    await register_public_key(db.sessions, ORG, public)
    request_id = await store(db)
    key = b"a" * 32
    await export_requests(
        db.url,
        ORG,
        [identity(tmp_path / "hub.identity", private)],
        PASSPHRASE,
        out=io.StringIO(),
        verify_keys=[BOT.verify_key],
        flow=load_flow(),
        deployment=load_deployment(bundled_deployment_path()),
        fmt="text",
        audit_key=key,
    )
    async with db.sessions() as s:
        (entry,) = (await s.scalars(select(AuditEntry))).all()
        report = await audit.verify(s, key)
    assert (entry.action, entry.organisation, entry.actor) == (EXPORT_ACTION, ORG, "cli")
    assert entry.detail == "1 request(s), text"
    assert request_id not in f"{entry.subject} {entry.detail}"  # how many, never which
    assert report.ok and report.entries == 1
