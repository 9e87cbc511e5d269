"""`safebot handoffs export`: open an organisation's requests offline, as JSON lines or text.

For organisations that work outside the portal. Read-only: statuses do not change. The
private keys are unlocked here, on the machine running the command, and never stored.

Each request carries its verdict (`storage.requests.open_request`): genuine (the bot wrote
it and nothing changed), altered (the bot wrote it, but a cleartext column such as `urgent`
was changed in the database since: the sealed values are shown), forged (not signed by a
trusted bot key) or unsigned (sealed before requests were signed). The signature is checked
against keys from outside the database (`bot.keyring.trusted_signers`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from bot.answer_words import AnswerLine, answer_lines, language_name
from flows.definition import Flow
from flows.deployment import Deployment
from flows.kinds import RequestStatus
from storage import audit, queries
from storage.db import create_engine, session_factory, transaction
from storage.dialect import aware
from storage.errors import KeyUnlockError, SealingError
from storage.keys import identity_file_key_id, read_identity_file, unwrap_private_key
from storage.models import ContactRequest
from storage.requests import OpenedRequest, check_request, open_request
from storage.sealing import Authenticity, RecipientPrivateKey, Verdict
from storage.signing import VerifyKey

FORMATS: Final = ("jsonl", "text")

VERDICT_WORDS: Final[Mapping[Authenticity, str]] = {
    Authenticity.GENUINE: "GENUINE: written by this bot, nothing changed since",
    Authenticity.ALTERED: (
        "ALTERED: written by this bot, but the database was changed since ({fields}); "
        "the values the bot sealed are shown"
    ),
    Authenticity.FORGED: (
        "FORGED: not signed by this bot's key; do not act on it without checking ({fields})"
    ),
    Authenticity.UNSIGNED: (
        "UNSIGNED: sealed before requests were signed, so nothing proves this bot wrote it"
    ),
}


async def load_identities(
    paths: Sequence[Path], passphrase: bytes, org: str
) -> list[RecipientPrivateKey]:
    """Unlock every identity file with the one passphrase. If some do not unlock, say which
    ones (and which did), so that a passphrase for another file is not taken for a damaged
    file, and the advocate knows which passphrase to try."""
    keys: list[RecipientPrivateKey] = []
    failed: list[str] = []
    opened: list[str] = []
    for path in paths:
        data = read_identity_file(path)
        try:
            key = await asyncio.to_thread(unwrap_private_key, data, passphrase, expected_org=org)
        except KeyUnlockError as exc:
            failed.append(f"{path} (key {_claimed_key_id(data)}): {exc}")
            continue
        keys.append(key)
        opened.append(str(path))
    if failed:
        also = f"; it does unlock {', '.join(opened)}" if opened else ""
        raise KeyUnlockError(
            "this passphrase does not unlock identity file " + "; ".join(failed) + also
        )
    return keys


def _claimed_key_id(data: bytes) -> str:
    try:
        return identity_file_key_id(data)
    except KeyUnlockError:
        return "unknown"


@dataclass(frozen=True)
class Exported:
    """One request as the export shows it: the row, the verdict, and the opened request with
    its answers in words, or why it could not be opened."""

    row: ContactRequest
    verdict: Verdict
    opened: OpenedRequest | None = None
    lines: Sequence[AnswerLine] = ()
    error: str | None = None

    @property
    def withdrawn(self) -> bool:
        """By the person, after pick-up: nothing is left to read."""
        return self.row.status == RequestStatus.WITHDRAWN


WITHDRAWN_WORDS = "withdrawn by the person: nothing to read"


def export_one(
    row: ContactRequest,
    keys: Sequence[RecipientPrivateKey],
    verify_keys: Sequence[VerifyKey],
    flow: Flow,
    deployment: Deployment,
) -> Exported:
    if row.status == RequestStatus.WITHDRAWN:
        # No envelope to judge: the verdict is never shown for a withdrawn request.
        return Exported(row, Verdict(Authenticity.UNSIGNED), error=WITHDRAWN_WORDS)
    try:
        opened = open_request(row, keys, verify_keys)
    except SealingError as exc:
        try:
            verdict = check_request(row, verify_keys)
        except SealingError:  # not even an envelope: nobody we trust wrote it
            verdict = Verdict(Authenticity.FORGED)
        return Exported(row, verdict, error=str(exc))
    lines = answer_lines(flow, deployment, opened.answers)
    return Exported(row, opened.verdict, opened, lines)


EXPORT_ACTION = "export"


async def export_requests(
    database_url: str,
    org: str,
    identities: Sequence[Path],
    passphrase: bytes,
    *,
    out: TextIO,
    verify_keys: Sequence[VerifyKey],
    flow: Flow,
    deployment: Deployment,
    fmt: str = "jsonl",
    audit_key: bytes | None = None,
) -> tuple[int, int]:
    """Write every request of `org`; returns (opened, could not be opened). With `audit_key`
    the export is recorded in the audit log (no request ids, only how many), committed with
    the read, so an export that leaves no trace cannot happen."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    keys = await load_identities(identities, passphrase, org)
    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            rows = await queries.requests_for(session, org)
            if audit_key is not None:
                await audit.append(
                    session,
                    audit_key,
                    action=EXPORT_ACTION,
                    now=dt.datetime.now(dt.UTC),
                    organisation=org,
                    actor="cli",
                    detail=f"{len(rows)} request(s), {fmt}",
                )
    finally:
        await engine.dispose()
    failed = 0
    for row in rows:
        item = export_one(row, keys, verify_keys, flow, deployment)
        failed += item.error is not None
        if fmt == "text":
            out.write(text_block(item) + "\n")
        else:
            out.write(json.dumps(json_record(item), ensure_ascii=False) + "\n")
    return len(rows) - failed, failed


def json_record(item: Exported) -> dict[str, object]:
    """The row's columns as stored, the verdict, then the sealed values and the answers
    (codes, and words in form order), or the error."""
    row = item.row
    record: dict[str, object] = {
        "request_id": row.id,
        "organisation": row.organisation,
        "created_at": aware(row.created_at).isoformat(),
        "status": row.status,
        "urgent": row.urgent,
        "language": row.language,
        "key_id": row.key_id,
        "authenticity": None if item.withdrawn else item.verdict.authenticity.value,
        "altered": list(item.verdict.altered),
    }
    if item.opened is None:
        record["error"] = item.error
        return record
    record["sealed"] = dict(item.opened.sealed)
    record["answers"] = dict(item.opened.answers)
    record["answers_in_words"] = [
        {"field": line.field, "question": line.question, "answer": line.words}
        for line in item.lines
    ]
    return record


def text_block(item: Exported) -> str:
    """A request laid out for reading before a phone call. Where the database was changed,
    the sealed value is shown, and what the database says now beside it."""
    row, verdict = item.row, item.verdict
    sealed: Mapping[str, object] = item.opened.sealed if item.opened else {}
    now_says = {"urgent": row.urgent, "language": row.language, "created_at": row.created_at}

    def shown(name: str, words: Callable[[object], str]) -> str:
        if name in sealed and name in verdict.altered:
            return f"{words(sealed[name])} (the database says {words(now_says[name])})"
        return words(sealed.get(name, now_says[name]))

    fields = ", ".join(verdict.altered) or "no field differs"
    lines = [
        f"Request {row.id}",
        f"  Received:     {aware(row.created_at):%Y-%m-%d %H:%M} UTC",
        f"  Status:       {row.status}",
        f"  Urgent:       {shown('urgent', lambda v: 'yes' if v else 'no')}",
        f"  Language:     {shown('language', lambda v: f'{language_name(str(v))} ({v})')}",
        f"  Key:          {row.key_id}",
        f"  Authenticity: {VERDICT_WORDS[verdict.authenticity].format(fields=fields)}",
    ]
    if item.withdrawn:
        lines[-1] = f"  Withdrawn:    {WITHDRAWN_WORDS}"
        return "\n".join(lines) + "\n"
    if item.opened is None:
        lines.append(f"  Could not be opened: {item.error}")
        return "\n".join(lines) + "\n"
    lines.append("  Answers:")
    for line in item.lines:
        code = f"  [{line.codes}]" if line.codes and line.codes != line.words else ""
        lines.append(f"    {line.question}: {line.words}{code}")
    return "\n".join(lines) + "\n"
