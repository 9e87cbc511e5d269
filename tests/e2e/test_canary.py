"""Canaries: what a victim types, and who they are on Telegram, must never reach the disk in
the clear. `safebot run` runs as a child process; afterwards every byte it wrote (database,
-wal, -shm, journals, secrets, demo identities, stdout/stderr logs) is searched for each
canary in UTF-8 and UTF-16-LE. Only the organisation's export may show them (the positive
control that proves the values were really stored).

Also: /forget and retention must leave no trace of the removed rows, not even their
encrypted envelopes, in the database files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import phonenumbers
import pytest

from bot.app import RunningServer
from storage.drafts import open_draft, person_draft_key
from storage.identity import keyed_hash
from tests.e2e.conftest import (
    BotProcess,
    db_execute,
    db_query,
    exit_line,
    export_requests_cli,
    fill_request,
    flow_string,
    owner_key,
    run_cli,
    send_request,
    stop_bot_process,
)
from tests.e2e.emulator import BotApiEmulator, EmulatedUser

HUB = "eastshire-hub"
ENCODINGS = ("utf-8", "utf-16-le")


def phone_forms(typed: str) -> list[str]:
    number = phonenumbers.parse(typed, "GB")
    assert phonenumbers.is_valid_number(number), typed
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = national.replace(" ", "")
    return [typed, e164, national, digits, digits.lstrip("0")]


def answers(phone: str, codeword: str, message: str) -> dict[str, str | None]:
    return {
        "method": "call",
        "phone": phone,
        "times": "evenings",
        "leave_message": "no",
        "someone_else": "hang_up",
        "codeword": codeword,
        "language": "en",
        "interpreter": "yes",
        "urgent": "yes",
        "threats": "yes",
        "documents": "yes",
        "children": "no",
        "organisation": "none",
        "message": message,
    }


# One person who presses quick exit at the summary (first: quick exit checkpoints the WAL,
# which must not wipe the others' pages before the kill -9), two who send requests, one who
# stops at the summary (an encrypted draft in progress). Every value is a canary.
PEOPLE = [
    dict(
        id=918273647,
        first="CanaryExitFirst",
        last=None,
        username="canary_exit_w",
        phone="07911 187349",
        codeword="CANARY-EXIT-CODEWORD-e61t",
        message="CANARY-EXIT-MESSAGE-a7f2 łąka",
        finish="exit",
    ),
    dict(
        id=987654321,
        first="CanaryFirstName",
        last="CanaryLastName",
        username="canary_user_x",
        phone="07723 918 464",
        codeword="CANARY-CODEWORD-7f3a",
        message="CANARY-MESSAGE-91bd zażółć العربية",
        finish="send",
    ),
    dict(
        id=918273645,
        first="CanarySecondFirst",
        last=None,
        username="canary_second_y",
        phone="07400 173942",
        codeword="CANARY-CODEWORD-2b8c",
        message="CANARY-MESSAGE-55e0 gęślą jaźń مرحبا",
        finish="send",
    ),
    dict(
        id=918273646,
        first="CanaryDraftFirst",
        last=None,
        username="canary_draft_z",
        phone="07912 345678",
        codeword="CANARY-DRAFT-CODEWORD-c0de",
        message="CANARY-DRAFT-MESSAGE-d1a4 źdźbło",
        finish="draft",
    ),
]


def canaries_of(person: dict[str, object]) -> list[str]:
    out = [str(person["id"]), str(person["first"]), str(person["username"])]
    if person["last"]:
        out.append(str(person["last"]))
    out += phone_forms(str(person["phone"]))
    message = str(person["message"])
    out += [str(person["codeword"]), message, message.split()[0], message.split(maxsplit=1)[1]]
    return out


def all_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]


def scan(roots: list[Path], needles: list[str]) -> list[str]:
    """Every (file, needle, encoding) where a needle occurs in the raw bytes of a file."""
    hits = []
    files = all_files(*roots)
    assert files
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            for encoding in ENCODINGS:
                if needle.encode(encoding) in data:
                    hits.append(f"{path.name}: {needle!r} ({encoding})")
    return hits


def test_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes("x CANARY-MESSAGE-91bd zażółć العربية y".encode())
    (tmp_path / "b.db").write_bytes(b"\0" + "987654321".encode("utf-16-le") + b"\0")
    assert len(scan([tmp_path], ["zażółć العربية", "987654321", "absent"])) == 2


async def walk(emulator: BotApiEmulator, person: dict[str, object]) -> str | None:
    user = emulator.user(
        int(person["id"]),  # type: ignore[call-overload]
        first_name=str(person["first"]),
        username=str(person["username"]),
        last_name=str(person["last"]) if person["last"] else None,
    )
    await fill_request(
        user, "en", answers(str(person["phone"]), str(person["codeword"]), str(person["message"]))
    )
    if person["finish"] == "send":
        _, reference = await send_request(user, "en")
        return reference
    if person["finish"] == "exit":
        await user.press(flow_string("en", "quick_exit"))
        await user.settle(quiet=0.1)
        assert (user.bot_messages()[-1].text or "").startswith(exit_line("en"))
    return None


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_no_canary_reaches_the_disk(
    stop: str, emulator: BotApiEmulator, bot_process: BotProcess, tmp_path: Path
) -> None:
    data_dir, logs_dir = tmp_path / "data", tmp_path / "logs"
    await bot_process.start()
    references = [r for r in [await walk(emulator, p) for p in PEOPLE] if r]
    assert len(references) == 2
    if stop == "sigterm":
        assert await stop_bot_process(bot_process) == 0
    else:
        bot_process.kill()
        # Nothing was checkpointed: the WAL holds every page written since the start.
        assert [p.stat().st_size > 0 for p in all_files(data_dir) if p.name.endswith("-wal")] == [
            True
        ]

    needles = [c for p in PEOPLE for c in canaries_of(p)]
    # The reference code is the victim's secret too: only its keyed hash is stored.
    needles += references + [" ".join(r[i : i + 4] for i in range(0, 16, 4)) for r in references]
    # The bot was really given every canary (names and ids come with each update).
    sent = json.dumps(emulator.updates, ensure_ascii=False)
    for person in PEOPLE:
        for value in (person["id"], person["first"], person["username"], person["codeword"]):
            assert str(value) in sent
    files = sorted(str(p.relative_to(tmp_path)) for p in all_files(tmp_path))
    assert any(f.startswith("logs/stderr") for f in files) and "data/safebot.db" in files
    hits = scan([data_dir, logs_dir], needles)
    assert hits == [], f"canaries in files {files}:\n" + "\n".join(hits)

    # Positive control: the organisation's export opens both requests with every value.
    result = await export_requests_cli(data_dir, HUB)
    assert result.returncode == 0, result.stderr
    records = result.records()
    assert len(records) == 2
    exported = json.dumps(records, ensure_ascii=False)
    for person in (p for p in PEOPLE if p["finish"] == "send"):
        assert phone_forms(str(person["phone"]))[1] in exported
        assert str(person["codeword"]) in exported and str(person["message"]) in exported
    for person in (p for p in PEOPLE if p["finish"] != "send"):
        assert str(person["codeword"]) not in exported


# ---- /forget and retention leave no trace -----------------------------------------------------


def envelope_pieces(envelope: bytes) -> list[bytes]:
    """The whole envelope and slices of its ciphertext (past the header, whose magic, key id,
    organisation and date every envelope under that key shares; a signed header is about 130
    bytes)."""
    body = envelope[256:]
    assert len(body) >= 96
    return [envelope, *(body[i : i + 24] for i in range(0, len(body) - 24, len(body) // 6))]


def traces(data_dir: Path, pieces: list[bytes]) -> list[str]:
    hits = []
    for path in sorted(data_dir.glob("safebot.db*")):
        data = path.read_bytes()
        hits += [f"{path.name}: piece {i}" for i, p in enumerate(pieces) if p in data]
    return hits


async def request_with_envelope(
    emulator: BotApiEmulator, user_id: int, message: str, data_dir: Path
) -> tuple[EmulatedUser, bytes]:
    user = emulator.user(user_id)
    await fill_request(user, "en", answers("07911 123456", f"cw-{user_id}", message))
    await send_request(user, "en")
    (row,) = db_query(
        data_dir,
        "SELECT envelope FROM contact_requests WHERE owner_key=?",
        (owner_key(data_dir, user_id),),
    )
    envelope = bytes(row["envelope"])
    assert traces(data_dir, envelope_pieces(envelope))  # the scan can see a live row
    return user, envelope


async def test_forget_leaves_no_trace(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    keep, _ = await request_with_envelope(emulator, 3101, "CANARY-KEEP-1", data_dir)
    user, envelope = await request_with_envelope(emulator, 3102, "CANARY-FORGET-2", data_dir)

    await user.send_command("/forget")
    await user.next_replies(1, quiet=0.05)
    await user.press(flow_string("en", "yes"))
    replies = await user.next_replies(1, quiet=0.2)
    assert (replies[0].text or "").startswith(flow_string("en", "forgotten"))
    rows = db_query(data_dir, "SELECT owner_key FROM contact_requests")
    assert [r["owner_key"] for r in rows] == [owner_key(data_dir, keep.id)]
    # No purge has run: the bot itself must not leave the envelope in the -wal or the .db.
    assert traces(data_dir, envelope_pieces(envelope)) == []


async def test_retention_purge_leaves_no_trace(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    keep, kept = await request_with_envelope(emulator, 3201, "CANARY-KEEP-1", data_dir)
    old, expired = await request_with_envelope(emulator, 3202, "CANARY-EXPIRED-2", data_dir)
    gone, forgotten = await request_with_envelope(emulator, 3203, "CANARY-FORGET-3", data_dir)
    await gone.send_command("/forget")
    await gone.next_replies(1, quiet=0.05)
    await gone.press(flow_string("en", "yes"))
    await gone.next_replies(1, quiet=0.2)
    assert (
        db_execute(
            data_dir,
            "UPDATE contact_requests SET delete_after='2000-01-01 00:00:00.000000' "
            "WHERE owner_key=?",
            (owner_key(data_dir, old.id),),
        )
        == 1
    )

    result = await run_cli(data_dir, "purge")
    assert result.returncode == 0, result.stderr
    assert "requests=1" in result.stdout, result.stdout
    rows = db_query(data_dir, "SELECT owner_key FROM contact_requests")
    assert [r["owner_key"] for r in rows] == [owner_key(data_dir, keep.id)]
    assert traces(data_dir, envelope_pieces(expired)) == []
    assert traces(data_dir, envelope_pieces(forgotten)) == []
    assert traces(data_dir, envelope_pieces(kept))  # the kept row is still there, readable
    (record,) = (await export_requests_cli(data_dir, HUB)).records()
    assert record["answers"]["message"] == "CANARY-KEEP-1"


# ---- drafts the server can open ---------------------------------------------------------------


def server_key(data_dir: Path, name: str) -> bytes:
    raw = (data_dir / f"{name}.key").read_text().strip()
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))


def chat_key(data_dir: Path, user_id: int) -> str:
    return keyed_hash(server_key(data_dir, "user-hash"), "chat:telegram", str(user_id))


async def test_sent_request_leaves_no_server_readable_draft(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    person = PEOPLE[1]
    user = emulator.user(3301)
    await fill_request(
        user, "en", answers(str(person["phone"]), str(person["codeword"]), str(person["message"]))
    )
    key = chat_key(data_dir, user.id)
    (row,) = db_query(data_dir, "SELECT draft FROM conversations WHERE chat_key=?", (key,))
    draft = bytes(row["draft"])
    # The draft is sealed under her own key: the server's key lying next to the database is
    # not enough; it takes her Telegram id too, which nothing on disk holds.
    server = server_key(data_dir, "draft")
    assert open_draft(server, key, draft) is None
    opened = open_draft(person_draft_key(server, "telegram", str(user.id)), key, draft)
    assert opened is not None and opened["answers"]["codeword"] == person["codeword"]
    assert traces(data_dir, [draft])

    await send_request(user, "en")
    # Now only the organisation may read the answers: the server's copy must be gone.
    assert traces(data_dir, [draft]) == []
