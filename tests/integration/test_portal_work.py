"""Work on requests in the portal: organisations apart (404), claims and leases, opening in
words with everything escaped, outcomes and /status, withdrawal, granting access."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.portal.work import sweep
from storage import audit, queries
from storage.db import transaction
from storage.models import ContactRequest, RequestWork
from tests.integration.portal_support import (
    OTHER_ORG,
    Account,
    PortalHarness,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)

__all__ = ["harness"]
Client = TestClient[web.Request, web.Application]

ANSWERS = {
    "method": "call",
    "phone": "+447723918464",
    "times": json.dumps({"picked": ["mornings"], "own": ""}),
    "leave_message": "yes",
    "someone_else": "hang_up",
    "codeword": "<b>heron</b>",
    "language": "ar",
    "interpreter": "no",
    "message": '<script>alert("pwned")</script><img src=x onerror=alert(1)>',
}


async def _status(harness: PortalHarness, stored: object) -> str | None:
    async with transaction(harness.db.sessions) as session:
        return await queries.status_by_reference(session, harness.reference_hash(stored))  # type: ignore[arg-type]


async def _admin(harness: PortalHarness, client: Client, login: str = "ada") -> Account:
    _, token = await harness.invite(f"Admin {login}", admin=True)
    account = await set_up(harness, client, token, login=login)
    assert await log_in(harness, client, account) == 303
    assert await unlock(harness, client) == 303
    return account


async def _colleague(
    harness: PortalHarness, admin: Client, other: Client, login: str = "bea"
) -> Account:
    """A colleague set up by link, then granted access by the admin's unlocked session."""
    advocate_id, token = await harness.invite(f"Colleague {login}")
    account = await set_up(harness, other, token, login=login)
    granted = await post_form(admin, "/portal/team", f"/portal/team/{advocate_id}/grant")
    assert granted == 303
    assert await log_in(harness, other, account) == 303
    return account


async def test_another_organisations_request_does_not_exist(harness: PortalHarness) -> None:
    theirs = await harness.submit({"message": "x"}, org=OTHER_ORG)
    async with harness.client() as client:
        await _admin(harness, client)
        url = f"/portal/requests/{theirs.request_id}"
        page = await client.get(url)
        assert page.status == 404
        for action in ("claim", "release", "outcome", "reassign"):
            status = await post_form(
                client, "/portal/inbox", f"{url}/{action}", outcome="contacted"
            )
            assert status == 404, action
        assert (await client.get("/portal/requests/nonexistent")).status == 404
        assert (
            theirs.request_id[:4].upper()
            not in await (await client.get("/portal/inbox?view=all")).text()
        )


async def test_open_lays_it_out_in_words_and_escapes_what_she_typed(
    harness: PortalHarness,
) -> None:
    stored = await harness.submit(ANSWERS, lang="ar")
    async with harness.client() as client:
        await _admin(harness, client)
        url = f"/portal/requests/{stored.request_id}"
        before = await (await client.get(url)).text()
        assert "onerror" not in before  # not claimed yet: nothing to read
        assert await post_form(client, url, f"{url}/claim") == 303
        page = await (await client.get(url)).text()
    for words in ("Phone call", "Weekday mornings", "Yes, it is safe", "End the call",
                  "Arabic (العربية)", "Not needed", "07723 918464", "Genuine"):  # fmt: skip
        assert words in page, words
    assert "Say the code word first" in page
    assert "&lt;b&gt;heron&lt;/b&gt;" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;pwned&#34;)" in page
    assert "<img" not in page
    assert "hang_up" not in page and ">mornings<" not in page  # words, not codes
    assert await _status(harness, stored) == "picked_up"


async def test_a_changed_triage_field_is_shown(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS, urgent=False)
    async with transaction(harness.db.sessions) as session:
        await session.execute(
            update(ContactRequest).where(ContactRequest.id == stored.request_id).values(urgent=True)
        )
    async with harness.client() as client:
        await _admin(harness, client)
        url = f"/portal/requests/{stored.request_id}"
        await post_form(client, url, f"{url}/claim")
        page = await (await client.get(url)).text()
    assert "changed after the person sent it: urgent" in page


async def test_claims_leases_and_reassignment(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    async with harness.client() as admin, harness.client() as other:
        await _admin(harness, admin)
        await _colleague(harness, admin, other)
        assert await post_form(admin, url, f"{url}/claim") == 303
        all_view = await (await other.get("/portal/inbox?view=all")).text()
        assert "Admin ada" in all_view  # colleagues see who holds it
        assert stored.request_id not in await (await other.get("/portal/inbox")).text()
        # One holder at a time.
        await post_form(other, url, f"{url}/claim")
        taken = await (await other.get(url)).text()
        assert "A colleague holds this request" in taken and "Their message" not in taken
        # No recorded action for the lease time: released. (Both stay logged in meanwhile.)
        for _ in range(3):
            harness.clock.advance(minutes=10)
            for client in (admin, other):
                assert (await client.get("/portal/inbox", allow_redirects=False)).status == 200
        harness.clock.advance(minutes=1)
        assert stored.request_id in await (await other.get("/portal/inbox")).text()
        await sweep(harness.portal)
        assert await post_form(other, url, f"{url}/claim") == 303
        assert "Their message" in await (await other.get(url)).text()
        # The admin hands it back to herself over the colleague's live claim.
        async with transaction(harness.db.sessions) as session:
            from storage.portal import advocate_by_login

            ada = await advocate_by_login(session, "ada")
            assert ada is not None
        assert await post_form(admin, url, f"{url}/reassign", to=ada.id) == 303
        assert "Their message" in await (await admin.get(url)).text()
        assert "A colleague holds" in await (await other.get(url)).text()
        assert await post_form(admin, url, f"{url}/release") == 303
        assert stored.request_id in await (await other.get("/portal/inbox")).text()
    async with transaction(harness.db.sessions) as session:
        actions = [
            e.action for e in reversed(await audit.for_organisation(session, "eastshire-hub"))
        ]
    for action in ("claim", "lease_expired", "reassign", "release", "view", "grant"):
        assert action in actions, action


async def test_a_request_is_never_handed_to_an_outreach_account(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    async with transaction(harness.db.sessions) as session:
        from storage.portal import ROLE_OUTREACH, add_advocate

        outreach = await add_advocate(
            session,
            organisation="eastshire-hub",
            name="Olu",
            is_admin=False,
            now=harness.clock(),
            role=ROLE_OUTREACH,
        )
        outreach.set_up_at = harness.clock()  # a live account: set up, not removed
    async with harness.client() as admin:
        await _admin(harness, admin)
        assert await post_form(admin, url, f"{url}/claim") == 303
        assert await post_form(admin, url, f"{url}/reassign", to=outreach.id) == 303
        assert "Their message" in await (await admin.get(url)).text()  # still hers
    async with transaction(harness.db.sessions) as session:
        work_row = await session.get(RequestWork, stored.request_id)
        assert work_row is not None and work_row.holder_id != outreach.id


async def test_outcomes_and_closing_reach_the_victims_status(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    async with harness.client() as client:
        await _admin(harness, client)
        assert await _status(harness, stored) == "new"
        await post_form(client, url, f"{url}/claim")
        await client.get(url)
        assert await _status(harness, stored) == "picked_up"
        await post_form(client, url, f"{url}/outcome", outcome="not_reached")
        await post_form(client, url, f"{url}/outcome", outcome="not_reached")
        page = await (await client.get(url)).text()
        assert "2 attempts to reach" in page
        await post_form(client, url, f"{url}/outcome", outcome="contacted")
        # Closing needs a reason.
        await post_form(client, url, f"{url}/outcome", outcome="closed")
        assert await _status(harness, stored) == "picked_up"
        await post_form(client, url, f"{url}/outcome", outcome="closed", reason="supported")
        assert await _status(harness, stored) == "closed"
        closed = await (await client.get(url)).text()
        assert "Their message" not in closed and "Closed" in closed


async def test_withdrawn_after_pick_up_shows_nothing_more(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    async with harness.client() as client:
        await _admin(harness, client)
        await post_form(client, url, f"{url}/claim")
        await client.get(url)
        async with transaction(harness.db.sessions) as session:
            row = await session.get(ContactRequest, stored.request_id)
            assert row is not None
            await queries.forget_requests(session, row.owner_key, harness.clock())
        page = await (await client.get(url)).text()
        assert "Withdrawn by the person. There is nothing more to read." in page
        assert "Their message" not in page and "07723" not in page
        assert (
            await post_form(client, url, f"{url}/outcome", outcome="closed", reason="other") == 303
        )
        assert await _status(harness, stored) == "withdrawn"


async def test_withdrawn_before_pick_up_is_gone(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    async with harness.client() as client:
        await _admin(harness, client)
        await post_form(client, url, f"{url}/claim")  # claimed, never opened
        async with transaction(harness.db.sessions) as session:
            row = await session.get(ContactRequest, stored.request_id)
            assert row is not None
            await queries.forget_requests(session, row.owner_key, harness.clock())
        assert (await client.get(url)).status == 404


async def test_without_a_grant_nothing_opens(harness: PortalHarness) -> None:
    stored = await harness.submit(ANSWERS)
    url = f"/portal/requests/{stored.request_id}"
    _, token = await harness.invite("New Colleague")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="newbie")
        assert await log_in(harness, client, account) == 303
        inbox = await (await client.get("/portal/inbox")).text()
        assert "holds no organisation key" in inbox
        await post_form(client, url, f"{url}/claim")
        page = await (await client.get(url)).text()
        assert "cannot be opened" in page and "Their message" not in page
        assert (await client.get("/portal/unlock")).status == 404  # admins only


async def test_an_identity_of_another_organisation_or_a_wrong_passphrase_is_refused(
    harness: PortalHarness,
) -> None:
    from aiohttp import FormData

    from tests.integration.portal_support import get_csrf

    async with harness.client() as client:
        _, token = await harness.invite("Admin", admin=True)
        account = await set_up(harness, client, token, login="ada")
        assert await log_in(harness, client, account) == 303
        for identity, passphrase in (
            (harness.identities[OTHER_ORG], "identity-passphrase-for-tests"),
            (harness.identities["eastshire-hub"], "not the passphrase"),
        ):
            form = FormData()
            form.add_field("csrf", await get_csrf(client, "/portal/unlock"))
            form.add_field("passphrase", passphrase)
            form.add_field("identity", identity, filename="x.identity")
            refused = await client.post("/portal/unlock", data=form)
            assert refused.status == 400
            assert "refused" in await refused.text()
        assert len(harness.portal.keys.get(next(iter(harness.portal.keys.sessions())))) == 0


async def test_a_colleagues_key_swapped_in_the_database_gets_no_grant(
    harness: PortalHarness,
) -> None:
    from storage.models import Advocate
    from storage.sealing import generate_keypair

    async with harness.client() as admin, harness.client() as other:
        await _admin(harness, admin)
        advocate_id, token = await harness.invite("Colleague")
        await set_up(harness, other, token, login="bea")
        _, attacker = generate_keypair()
        async with transaction(harness.db.sessions) as session:
            await session.execute(
                update(Advocate)
                .where(Advocate.id == advocate_id)
                .values(public_key=attacker.to_text())
            )
        await post_form(admin, "/portal/team", f"/portal/team/{advocate_id}/grant")
        async with transaction(harness.db.sessions) as session:
            from storage.portal import grants_of

            assert list(await grants_of(session, advocate_id)) == []
