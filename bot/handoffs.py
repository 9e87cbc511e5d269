"""`safebot handoffs export`: open an organisation's requests offline, as JSON lines.

For organisations that work outside the portal. Read-only: statuses do not change. The
private keys are unlocked here, on the machine running the command, and never stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from storage import queries
from storage.db import create_engine, session_factory, transaction
from storage.errors import SealingError
from storage.keys import read_identity_file, unwrap_private_key
from storage.sealing import RecipientPrivateKey, SealContext, open_sealed


async def load_identities(
    paths: Sequence[Path], passphrase: bytes, org: str
) -> list[RecipientPrivateKey]:
    keys = []
    for path in paths:
        data = read_identity_file(path)
        keys.append(await asyncio.to_thread(unwrap_private_key, data, passphrase, expected_org=org))
    return keys


async def export_requests(
    database_url: str, org: str, identities: Sequence[Path], passphrase: bytes, *, out: TextIO
) -> tuple[int, int]:
    keys = await load_identities(identities, passphrase, org)
    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            rows = await queries.requests_for(session, org)
    finally:
        await engine.dispose()
    exported = failed = 0
    for row in rows:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
        record: dict[str, object] = {
            "request_id": row.id,
            "organisation": row.organisation,
            "created_at": created.isoformat(),
            "status": row.status,
            "urgent": row.urgent,
            "language": row.language,
            "key_id": row.key_id,
        }
        try:
            plaintext = open_sealed(
                row.envelope,
                keys,
                SealContext(request_id=row.id, org=row.organisation, created_at=created),
            )
            payload = json.loads(plaintext)
            if (
                payload.get("request_id") != row.id
                or payload.get("organisation") != row.organisation
            ):
                raise SealingError("sealed metadata does not match the row")
            record["answers"] = payload.get("answers", {})
            exported += 1
        except SealingError as exc:
            record["error"] = str(exc)
            failed += 1
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return exported, failed
