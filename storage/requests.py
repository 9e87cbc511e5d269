"""Contact requests: seal for the receiving organisation, store, open, look up by reference.

Only routing and triage data stay in the clear (organisation, language, creation time,
status, urgency, key id). Everything the victim typed or chose is inside the HPKE envelope.
The envelope binds the request id, organisation, creation time, language, urgency and key
id, and is signed with the server's signing key (`storage.sealing`, version 2), so opening
(`open_request`) says whether the bot wrote it and which cleartext column was changed since.
Status is not bound: it changes as the request is worked on.

The outreach campaign she came by (or null: none) travels only inside the sealed payload,
never in a clear column: the portal reads it when it counts a pick-up or an outcome, and no
table ever links a count to a request. Payloads sealed before this have no "campaign" key
(`OpenedRequest.campaign_sealed` is False); the format stays v1 because the key is only added
and every reader looks its keys up by name.

The key it is sealed to is chosen among the pinned ones (`storage.org_keys`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from flows.kinds import RequestStatus
from flows.outreach import is_code
from storage import org_keys, queries
from storage.dialect import aware
from storage.errors import SealingError
from storage.models import ContactRequest, Notice
from storage.sealing import (
    RecipientPrivateKey,
    SealContext,
    Verdict,
    open_verified,
    seal,
    verify_envelope,
)
from storage.signing import SigningKey, VerifyKey

REFERENCE_DIGITS = 16  # about 53 bits: not guessable, still easy to read aloud in groups of 4
PAYLOAD_FORMAT = "safebot-request-v1"


@dataclass(frozen=True)
class NewRequest:
    answers: Mapping[str, str]
    language: str
    urgent: bool
    organisation: str
    # The outreach campaign she came in by (a code), None for none: sealed, never in clear.
    campaign: str | None = None


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
        "campaign": request.campaign,
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
    signer: SigningKey,
    pinned: Collection[str] | None,
) -> StoredRequest:
    """Seal, sign and add the request (and its neutral notice) to the session. The caller
    commits; only after that commit may the victim be told it was received.

    `pinned`: the key fingerprints the deployment names for the organisation (None: it
    allows unpinned keys, fictional deployments only)."""
    # SQLite keeps no offset: store UTC, or the sealed created_at would not match on read.
    now = now.astimezone(dt.UTC)
    recipient = await org_keys.recipient(session, request.organisation, pinned)
    if recipient is None:
        which = "active key" if pinned is None else "active key pinned in the deployment"
        raise SealingError(f"no {which} for organisation {request.organisation!r}")
    request_id = uuid.uuid4().hex
    context = SealContext(
        request_id=request_id,
        org=request.organisation,
        created_at=now,
        language=request.language,
        urgent=request.urgent,
    )
    envelope = seal(payload(request, request_id, now), recipient, context, signer)
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


# ---- opening ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedRequest:
    """An opened request: the answers (codes, as sealed), what the bot sealed about it
    (request_id, organisation, created_at, language, urgent) and the verdict. Show
    `sealed`, not the row's columns: where they differ, `verdict.altered` names them."""

    request_id: str
    answers: Mapping[str, str] = field(repr=False)
    sealed: Mapping[str, object]
    verdict: Verdict
    # The campaign sealed with it: None for none, and for a request sealed before campaigns
    # were (then `campaign_sealed` is False: whether it came by one is not known).
    campaign: str | None = field(default=None, repr=False)
    campaign_sealed: bool = False


def row_context(row: ContactRequest) -> SealContext:
    """The row's cleartext columns, as a context to compare with what was sealed."""
    return SealContext(
        request_id=row.id,
        org=row.organisation,
        created_at=aware(row.created_at),
        language=row.language,
        urgent=bool(row.urgent),
    )


def check_request(row: ContactRequest, verify_keys: Iterable[VerifyKey]) -> Verdict:
    """The verdict without opening (no private key): genuine, altered, forged or unsigned."""
    return verify_envelope(row.envelope, row_context(row), list(verify_keys), key_id=row.key_id)


def open_request(
    row: ContactRequest,
    identities: Iterable[RecipientPrivateKey],
    verify_keys: Iterable[VerifyKey],
) -> OpenedRequest:
    """Open a stored request and judge it. `verify_keys` must not come from the database
    (the server's signing key, the deployment's `request_signing_keys`). Raises SealingError
    if it cannot be opened with `identities` or its contents are not a request."""
    context = row_context(row)
    opened = open_verified(
        row.envelope, list(identities), context, list(verify_keys), key_id=row.key_id
    )
    try:
        doc = json.loads(opened.plaintext)
    except ValueError:
        raise SealingError("sealed contents are not a request") from None
    if not isinstance(doc, dict) or doc.get("format") != PAYLOAD_FORMAT:
        raise SealingError("sealed contents are not a request")
    answers = doc.get("answers")
    if not isinstance(answers, dict):
        raise SealingError("sealed contents are not a request")
    sealed = {k: doc.get(k) for k in ("request_id", "organisation", "created_at")}
    sealed |= {"language": doc.get("language"), "urgent": doc.get("urgent")}
    # The payload repeats the metadata: for a version-1 envelope, which bound only its
    # placement, this is where a changed language or urgent shows.
    verdict = opened.verdict.with_altered(_payload_differences(sealed, context, row.id))
    # Anything but null or a campaign code (the bot writes no other) says nothing we can use.
    campaign = doc.get("campaign")
    readable = campaign is None or (isinstance(campaign, str) and is_code(campaign))
    return OpenedRequest(
        row.id,
        {str(k): str(v) for k, v in answers.items()},
        sealed,
        verdict,
        campaign=campaign if readable and isinstance(campaign, str) else None,
        campaign_sealed="campaign" in doc and readable,
    )


def _payload_differences(
    sealed: Mapping[str, object], row: SealContext, request_id: str
) -> list[str]:
    out = []
    if sealed["request_id"] != request_id:
        out.append("request_id")
    if sealed["organisation"] != row.org:
        out.append("organisation")
    try:
        when = dt.datetime.fromisoformat(str(sealed["created_at"]))
        if aware(when) != row.created_at:
            out.append("created_at")
    except ValueError:
        out.append("created_at")
    if sealed["language"] != row.language:
        out.append("language")
    if sealed["urgent"] is not row.urgent:
        out.append("urgent")
    return out
