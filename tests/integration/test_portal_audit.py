"""The audit log: every login, view, claim, release, outcome and status change is chained;
a deleted or altered entry is found; it holds no personal data; admins see their own
organisation's entries only."""

from __future__ import annotations

import json

from sqlalchemy import delete, select, update

from storage import audit
from storage.db import transaction
from storage.models import AuditEntry
from tests.integration.portal_support import (
    OTHER_ORG,
    PortalHarness,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)

__all__ = ["harness"]


async def _work_a_request(harness: PortalHarness) -> str:
    stored = await harness.submit({"message": "CANARY-AUDIT-MESSAGE", "codeword": "CANARY-CW"})
    _, token = await harness.invite("Ada", admin=True)
    url = f"/portal/requests/{stored.request_id}"
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="ada")
        assert await log_in(harness, client, account, code="999999") == 401
        assert await log_in(harness, client, account) == 303
        assert await unlock(harness, client) == 303
        await post_form(client, url, f"{url}/claim")
        await client.get(url)
        await post_form(client, url, f"{url}/outcome", outcome="contacted")
        await post_form(client, url, f"{url}/outcome", outcome="closed", reason="supported")
        audit_page = await (await client.get("/portal/audit")).text()
        assert "is intact" in audit_page
        await post_form(client, "/portal/inbox", "/portal/logout")
    return stored.request_id


async def test_every_step_is_recorded_in_an_intact_chain(harness: PortalHarness) -> None:
    await _work_a_request(harness)
    async with transaction(harness.db.sessions) as session:
        report = await audit.verify(session, harness.portal.secrets.audit)
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert report.ok and report.entries == len(entries)
    actions = [e.action for e in entries]
    for action in ("advocate_added", "setup", "login_failed", "login_ok", "unlock_identity",
                   "claim", "view", "status", "outcome", "logout"):  # fmt: skip
        assert action in actions, action
    assert [e.detail for e in entries if e.action == "status"] == ["picked_up", "closed"]
    text = json.dumps([[e.actor, e.action, e.subject, e.detail] for e in entries])
    assert "CANARY" not in text and "Ada" not in text  # ids and codes, no personal data


async def test_a_deleted_entry_is_found(harness: PortalHarness) -> None:
    await _work_a_request(harness)
    async with transaction(harness.db.sessions) as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    async with transaction(harness.db.sessions) as session:
        report = await audit.verify(session, harness.portal.secrets.audit)
    assert not report.ok
    assert "entry 3 is missing (next is 4)" in report.problems
    assert "entry 4 does not follow the entry before it" in report.problems


async def test_an_altered_entry_is_found_even_with_its_hash_recomputed(
    harness: PortalHarness,
) -> None:
    import hashlib

    await _work_a_request(harness)
    async with transaction(harness.db.sessions) as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor=None))
    async with transaction(harness.db.sessions) as session:
        report = await audit.verify(session, harness.portal.secrets.audit)
    assert report.problems == ("entry 2 was altered",)
    # Whoever can only write to the database cannot forge the keyed hash.
    async with transaction(harness.db.sessions) as session:
        forged = hashlib.sha256(b"whatever").hexdigest()
        await session.execute(
            update(AuditEntry).where(AuditEntry.seq == 2).values(entry_hash=forged)
        )
    async with transaction(harness.db.sessions) as session:
        report = await audit.verify(session, harness.portal.secrets.audit)
    assert "entry 2 was altered" in report.problems
    assert "entry 3 does not follow the entry before it" in report.problems


async def test_admins_see_only_their_organisations_log(harness: PortalHarness) -> None:
    await _work_a_request(harness)
    await harness.invite("Other admin", org=OTHER_ORG, admin=True)
    async with transaction(harness.db.sessions) as session:
        ours = await audit.for_organisation(session, "eastshire-hub")
        theirs = await audit.for_organisation(session, OTHER_ORG)
    assert {e.organisation for e in ours} == {"eastshire-hub"}
    assert [e.action for e in theirs] == ["advocate_added"]
