"""Contact requests: seal for the receiving organisation, store, look up by reference code.

Only routing and triage data stay in the clear (organisation, language, creation time,
status, urgency, key id). Everything the victim typed or chose is inside the HPKE envelope,
whose `info` binds the request id, organisation and creation time: an envelope moved to
another row does not open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flows.kinds import RequestStatus
from storage import queries
from storage.errors import SealingError
from storage.models import ContactRequest, Notice
from storage.sealing import RecipientPublicKey, SealContext, seal

REFERENCE_DIGITS = 16  # about 53 bits: not guessable, still easy to read aloud in groups of 4
PAYLOAD_FORMAT = "safebot-request-v1"


@dataclass(frozen=True)
class NewRequest:
    answers: Mapping[str, str]
    language: str
    urgent: bool
    organisation: str


@dataclass(frozen=True)
class StoredRequest:
    request_id: str
    reference: str


def new_reference() -> str:
    return f"{secrets.randbelow(10**REFERENCE_DIGITS):0{REFERENCE_DIGITS}d}"


def reference_hash(lookup_key: bytes, reference: str) -> str:
    # Digits in any script: a victim may type the code with Arabic-Indic digits.
    digits = "".join(str(unicodedata.decimal(ch)) for ch in reference if ch.isdecimal())
    return hmac.new(lookup_key, b"ref:" + digits.encode(), hashlib.sha256).hexdigest()


def payload(request: NewRequest, request_id: str, created_at: dt.datetime) -> bytes:
    """What is sealed: everything the victim gave, plus the metadata to cross-check on open."""
    doc = {
        "format": PAYLOAD_FORMAT,
        "request_id": request_id,
        "organisation": request.organisation,
        "created_at": created_at.isoformat(),
        "language": request.language,
        "urgent": request.urgent,
        "answers": dict(request.answers),
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


async def store_request(
    session: AsyncSession,
    request: NewRequest,
    *,
    owner_key: str,
    lookup_key: bytes,
    now: dt.datetime,
    retention: dt.timedelta,
    notify: bool,
) -> StoredRequest:
    """Seal and add the request (and its neutral notice) to the session. The caller commits;
    only after that commit may the victim be told it was received."""
    # SQLite keeps no offset: store UTC, or the sealed created_at would not match on read.
    now = now.astimezone(dt.UTC)
    key_row = await queries.newest_key(session, request.organisation)
    if key_row is None:
        raise SealingError(f"no active key for organisation {request.organisation!r}")
    recipient = RecipientPublicKey.from_text(key_row.public_key)
    request_id = uuid.uuid4().hex
    envelope = seal(
        payload(request, request_id, now),
        recipient,
        SealContext(request_id=request_id, org=request.organisation, created_at=now),
    )
    # A reference collision is astronomically unlikely; the unique index makes it loud.
    reference = new_reference()
    await queries.insert_request(
        session,
        ContactRequest(
            id=request_id,
            organisation=request.organisation,
            language=request.language,
            created_at=now,
            status=RequestStatus.NEW,
            urgent=request.urgent,
            key_id=recipient.key_id,
            envelope=envelope,
            reference_hash=reference_hash(lookup_key, reference),
            owner_key=owner_key,
            delete_after=now + retention,
        ),
    )
    if notify:
        await queries.add_notice(
            session,
            Notice(
                organisation=request.organisation,
                language=request.language,
                urgent=request.urgent,
                created_at=now,
            ),
        )
    return StoredRequest(request_id=request_id, reference=reference)
