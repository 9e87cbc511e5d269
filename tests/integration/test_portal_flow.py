"""The portal end to end: set up, log in, unlock, claim, open, outcome, close."""

from __future__ import annotations

import json

from storage import queries
from storage.db import transaction
from tests.integration.portal_support import (
    PortalHarness,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)

__all__ = ["harness"]

ANSWERS = {
    "consent": "yes",
    "method": "call",
    "phone": "+447723918464",
    "times": json.dumps({"picked": ["evenings", "weekends"], "own": "Tuesdays <b>after</b> 10"}),
    "leave_message": "no",
    "someone_else": "wrong_number",
    "codeword": "heron",
    "language": "pl",
    "interpreter": "yes",
    "urgent": "yes",
    "threats": "yes",
    "documents": "no",
    "children": "yes",
    "message": "<script>alert('x')</script> please call after 6",
}


async def test_first_admin_unlocks_and_works_a_request(harness: PortalHarness) -> None:
    _, token = await harness.invite("Ada Admin", admin=True)
    stored = await harness.submit(ANSWERS, urgent=True)
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="ada")
        assert await log_in(harness, client, account) == 303
        assert await unlock(harness, client) == 303
        inbox = await (await client.get("/portal/inbox")).text()
        assert stored.request_id[:4].upper() in inbox
        claim = f"/portal/requests/{stored.request_id}/claim"
        assert await post_form(client, "/portal/inbox", claim) == 303
        page = await (await client.get(f"/portal/requests/{stored.request_id}")).text()
        assert "Say it is a wrong number" in page
        assert "Evenings" in page and "Weekends" in page
        assert "&lt;script&gt;" in page and "<script>" not in page
        assert "heron" in page
        async with transaction(harness.db.sessions) as session:
            status = await queries.status_by_reference(session, harness.reference_hash(stored))
        assert status == "picked_up"
        url = f"/portal/requests/{stored.request_id}"
        assert await post_form(client, url, url + "/outcome", outcome="not_reached") == 303
        assert (
            await post_form(client, url, url + "/outcome", outcome="closed", reason="supported")
            == 303
        )
        async with transaction(harness.db.sessions) as session:
            status = await queries.status_by_reference(session, harness.reference_hash(stored))
        assert status == "closed"
