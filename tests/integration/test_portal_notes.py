"""Case notes in the portal: written by the holder, sealed to the organisation's current key and
bound to the request, shown escaped and in order, audited without their text; another
organisation's are 404, a note without its CSRF token is refused, a moved or forged one does not
open, a note under a key the session does not hold says so; withdrawal and the purge delete
them; an over-long note is refused with a message; no note text reaches the disk."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from bot.portal import crypto, work
from bot.portal.state import Viewer
from bot.portal.work import MAX_NOTE_CHARS
from storage import audit, queries
from storage.db import transaction
from storage.dialect import checkpoint
from storage.models import CaseNote, ContactRequest
from storage.portal import active_advocate
from storage.queries import add_org_key
from storage.retention import purge
from storage.sealing import generate_keypair, public_key_of
from tests.integration.portal_support import (
    ORG,
    OTHER_ORG,
    Account,
    PortalHarness,
    get_csrf,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)
from tests.integration.support import (
    aware,
    files_containing,
    only_postgresql,
    only_sqlite,
    org_key_row,
    sqlite_files,
)

__all__ = ["harness"]
Client = TestClient[web.Request, web.Application]

ANSWERS = {"method": "call", "phone": "+447723918464", "message": "Please call after 10."}
NOTE = 'Spoke briefly. <script>alert("note")</script> Call again Tuesday.'
CANARY = "CANARY-CASE-NOTE-91c3 zażółć مرحبا"


async def _admin(
    harness: PortalHarness, client: Client, login: str = "ada", org: str = ORG
) -> Account:
    _, token = await harness.invite(f"Admin {login}", admin=True, org=org)
    account = await set_up(harness, client, token, login=login)
    assert await log_in(harness, client, account) == 303
    assert await unlock(harness, client, org) == 303
    return account


async def _claimed(harness: PortalHarness, client: Client, org: str = ORG) -> str:
    """A new request, claimed and opened by `client`: its page's URL."""
    stored = await harness.submit(ANSWERS, org=org)
    url = f"/portal/requests/{stored.request_id}"
    assert await post_form(client, url, f"{url}/claim") == 303
    assert "Their message" in await (await client.get(url)).text()
    return url


async def _note(client: Client, url: str, text: str) -> int:
    return await post_form(client, url, f"{url}/notes", note=text)


async def _notes_in_db(harness: PortalHarness, request_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(CaseNote)
    if request_id is not None:
        stmt = stmt.where(CaseNote.request_id == request_id)
    async with transaction(harness.db.sessions) as session:
        return int(await session.scalar(stmt) or 0)


def _rid(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_the_holder_adds_notes_and_sees_them_escaped_in_order(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        response = await client.post(
            f"{url}/notes",
            data={"csrf": await get_csrf(client, url), "note": NOTE + "\r\nsecond line"},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"].endswith("?said=note_added")
        harness.clock.advance(minutes=1)
        assert await _note(client, url, "the later note") == 303
        page = await (await client.get(f"{url}?said=note_added")).text()
    assert "The note was saved." in page
    assert "Case notes" in page and "Add a case note" in page
    assert "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "Call again Tuesday.<br>second line" in page  # its lines kept, as text
    assert "Admin ada" in page and "2027-03-01" in page  # who and when
    assert page.index("Call again Tuesday") < page.index("the later note")  # newest last
    assert await _notes_in_db(harness, _rid(url)) == 2


async def test_a_note_is_sealed_to_the_current_key_and_bound_to_its_request(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        assert await _note(client, url, CANARY) == 303
    async with transaction(harness.db.sessions) as session:
        note = (await session.scalars(select(CaseNote))).one()
        row = await session.get(ContactRequest, _rid(url))
        assert row is not None
    assert note.key_id == harness.org_keys[ORG].key_id == row.key_id
    assert CANARY.encode() not in note.sealed
    opened = crypto.open_note(
        note.sealed,
        {note.key_id: harness.org_keys[ORG]},
        mac_key=harness.portal.secrets.notes,
        request_id=row.id,
        organisation=ORG,
        author_id=note.author_id,
        created_at=aware(note.created_at),
    )
    assert opened == CANARY


async def test_another_organisations_notes_are_not_there(harness: PortalHarness) -> None:
    async with harness.client() as ours, harness.client() as theirs:
        await _admin(harness, ours)
        url = await _claimed(harness, ours)
        assert await _note(ours, url, CANARY) == 303
        await _admin(harness, theirs, login="ola", org=OTHER_ORG)
        page = await theirs.get(url)
        assert page.status == 404
        assert CANARY not in await page.text()
        assert await post_form(theirs, "/portal/inbox", f"{url}/notes", note="hijack") == 404
        # Over-long text from another organisation is still 404 (no form shown again).
        too_long = "x" * (MAX_NOTE_CHARS + 1)
        assert await post_form(theirs, "/portal/inbox", f"{url}/notes", note=too_long) == 404
    assert await _notes_in_db(harness) == 1


async def test_a_note_without_its_csrf_token_is_refused(harness: PortalHarness) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        bare = await client.post(f"{url}/notes", data={"note": NOTE}, allow_redirects=False)
        assert bare.status == 403
        wrong = await client.post(
            f"{url}/notes", data={"csrf": "x" * 40, "note": NOTE}, allow_redirects=False
        )
        assert wrong.status == 403
    assert await _notes_in_db(harness) == 0


async def test_only_the_holder_of_an_open_request_writes_or_reads_notes(
    harness: PortalHarness,
) -> None:
    async with harness.client() as admin, harness.client() as other:
        await _admin(harness, admin)
        url = await _claimed(harness, admin)
        assert await _note(admin, url, CANARY) == 303
        # A colleague with a session of her own (and the same key) who does not hold it.
        await _admin(harness, other, login="bea")
        page = await (await other.get(url)).text()
        assert "A colleague holds this request" in page
        assert CANARY not in page and "Case notes" not in page
        refused = await other.post(
            f"{url}/notes",
            data={"csrf": await get_csrf(other, url), "note": "not mine"},
            allow_redirects=False,
        )
        assert refused.headers["Location"].endswith("?said=note_refused")
        # Closed: read-only, and no one holds it.
        await post_form(admin, url, f"{url}/outcome", outcome="closed", reason="supported")
        assert await _note(admin, url, "after closing") == 303
        assert "after closing" not in await (await admin.get(url)).text()
    assert await _notes_in_db(harness) == 1


async def test_a_moved_or_forged_note_does_not_open(harness: PortalHarness) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        first = await _claimed(harness, client)
        second = await _claimed(harness, client)
        assert await _note(client, first, CANARY) == 303
        async with transaction(harness.db.sessions) as session:
            await session.execute(update(CaseNote).values(request_id=_rid(second)))
        moved = await (await client.get(second)).text()
        assert "This note does not open" in moved and CANARY not in moved
        # Sealed to the organisation's public key (in the database) by someone without the
        # portal's key, in the right place and under a real advocate's id.
        async with transaction(harness.db.sessions) as session:
            note = (await session.scalars(select(CaseNote))).one()
            await session.delete(note)
            forged = crypto.seal_note(
                "Call her husband instead.",
                public_key_of(harness.org_keys[ORG]),
                mac_key=b"not-the-portal-key-but-32-bytes!",
                request_id=_rid(first),
                organisation=ORG,
                author_id=note.author_id,
                created_at=harness.clock(),
            )
            session.add(
                CaseNote(
                    request_id=_rid(first),
                    author_id=note.author_id,
                    created_at=harness.clock(),
                    key_id=harness.org_keys[ORG].key_id,
                    sealed=forged,
                )
            )
        page = await (await client.get(first)).text()
        assert "This note does not open" in page and "husband" not in page


async def test_a_note_under_a_key_the_session_does_not_hold_says_so(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        assert await _note(client, url, "under the old key") == 303
        # A newer key is registered (a rotation): new notes go to it; this session lacks it.
        _, newer = generate_keypair()
        async with transaction(harness.db.sessions) as session:
            await add_org_key(session, org_key_row(ORG, newer, harness.clock()))
        assert await _note(client, url, CANARY) == 303
        page = await (await client.get(url)).text()
    assert "under the old key" in page
    assert "This note is sealed to a key you do not hold." in page and CANARY not in page
    async with transaction(harness.db.sessions) as session:
        keys = [n.key_id for n in (await session.scalars(select(CaseNote).order_by(CaseNote.id)))]
    assert keys == [harness.org_keys[ORG].key_id, newer.key_id]


async def test_notes_are_audited_without_their_text(harness: PortalHarness) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        assert await _note(client, url, CANARY) == 303
        await client.get(url)
    async with transaction(harness.db.sessions) as session:
        entries = list(reversed(await audit.for_organisation(session, ORG)))
        report = await audit.verify(session, harness.portal.secrets.audit)
    notes = [(e.action, e.subject, e.detail) for e in entries if e.action == "note"]
    assert ("note", _rid(url), "added") in notes
    assert ("note", _rid(url), "viewed:1") in notes
    for entry in entries:
        for value in (entry.subject, entry.detail, entry.actor, entry.organisation):
            assert value is None or "CANARY" not in value
    assert report.ok


async def test_a_withdrawn_request_shows_no_notes_and_loses_them(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        kept = await _claimed(harness, client)  # another person's: not touched
        assert await _note(client, url, CANARY) == 303
        assert await _note(client, kept, "stays") == 303
        async with transaction(harness.db.sessions) as session:
            row = await session.get(ContactRequest, _rid(url))
            assert row is not None
            result = await queries.forget_requests(session, row.owner_key, harness.clock())
        assert result.withdrawn == 1
        assert await _notes_in_db(harness, _rid(url)) == 0
        assert await _notes_in_db(harness, _rid(kept)) == 1
        page = await (await client.get(url)).text()
        assert "Withdrawn by the person. There is nothing more to read." in page
        assert CANARY not in page and "Case notes" not in page and "Add a case note" not in page
        refused = await client.post(
            f"{url}/notes",
            data={"csrf": await get_csrf(client, url), "note": "too late"},
            allow_redirects=False,
        )
        assert refused.headers["Location"].endswith("?said=note_refused")
    assert await _notes_in_db(harness, _rid(url)) == 0


@only_postgresql
async def test_a_note_racing_a_withdrawal_is_not_kept(harness: PortalHarness) -> None:
    """She withdraws while the holder saves a note: the note waits for the withdrawal's
    commit, sees it, and is not stored (on SQLite one write at a time makes this moot)."""
    async with harness.client() as client:
        account = await _admin(harness, client)
        url = await _claimed(harness, client)
    async with transaction(harness.db.sessions) as session:
        advocate = await active_advocate(session, account.advocate_id)
        assert advocate is not None
    viewer = Viewer(advocate, "session", "token", {})
    async with harness.db.sessions() as session, session.begin():
        row = await session.get(ContactRequest, _rid(url))
        assert row is not None
        await queries.forget_requests(session, row.owner_key, harness.clock())
        saving = asyncio.create_task(work.add_note(harness.portal, viewer, _rid(url), CANARY))
        await asyncio.sleep(0.5)
        assert not saving.done()  # held by the withdrawal's row lock
    assert await saving == "refused"
    assert await _notes_in_db(harness) == 0


async def test_the_purge_removes_notes_with_their_request(harness: PortalHarness) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        assert await _note(client, url, CANARY) == 303
        await post_form(client, url, f"{url}/outcome", outcome="closed", reason="supported")
    assert await _notes_in_db(harness) == 1
    # Retention counts from closing: a day's retention, an hour after closing, keeps it.
    keep = dt.timedelta(days=1)
    report = await purge(
        harness.db.engine, harness.db.sessions, harness.clock() + dt.timedelta(hours=1),
        closed_retention=keep,
    )  # fmt: skip
    assert report.requests == 0 and await _notes_in_db(harness) == 1
    report = await purge(
        harness.db.engine, harness.db.sessions, harness.clock() + dt.timedelta(days=2),
        closed_retention=keep,
    )  # fmt: skip
    assert report.requests == 1
    assert await _notes_in_db(harness) == 0


async def test_an_over_long_or_empty_note_is_refused_with_a_message(
    harness: PortalHarness,
) -> None:
    async with harness.client() as client:
        await _admin(harness, client)
        url = await _claimed(harness, client)
        too_long = "<b>" + "y" * MAX_NOTE_CHARS
        response = await client.post(
            f"{url}/notes", data={"csrf": await get_csrf(client, url), "note": too_long}
        )
        body = await response.text()
        assert response.status == 400
        assert f"This note is too long: {MAX_NOTE_CHARS} characters at most." in body
        assert "&lt;b&gt;yyy" in body and "<b>yyy" not in body  # kept for her, escaped
        assert await _notes_in_db(harness) == 0
        empty = await client.post(
            f"{url}/notes", data={"csrf": await get_csrf(client, url), "note": " \r\n "}
        )
        assert empty.status == 400 and "Write the note first." in await empty.text()
        assert await _notes_in_db(harness) == 0
        assert await _note(client, url, "z" * MAX_NOTE_CHARS) == 303  # the limit itself is fine
    assert await _notes_in_db(harness) == 1


@only_sqlite
async def test_no_note_text_reaches_the_disk(harness: PortalHarness, tmp_path: Path) -> None:
    log_file = tmp_path / "portal.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    rejected = "CANARY-REJECTED-NOTE-0b7d " + "w" * MAX_NOTE_CHARS
    try:
        async with harness.client() as client:
            await _admin(harness, client)
            url = await _claimed(harness, client)
            assert await _note(client, url, CANARY) == 303
            assert await _note(client, url, CANARY + " again") == 303
            await post_form(client, url, f"{url}/notes", note=rejected)
            page = await (await client.get(url)).text()
            assert CANARY in page  # the positive control: it was really sealed and opened
            assert await _notes_in_db(harness) == 2
            assert harness.db.path is not None
            before = sqlite_files(harness.db.path)  # the WAL as the session left it
            await post_form(client, "/portal/inbox", "/portal/logout")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    await checkpoint(harness.db.engine)
    after = sqlite_files(harness.db.path)
    assert "safebot.db-wal" in before
    files = {f"before:{k}": v for k, v in before.items()}
    files |= {f"after:{k}": v for k, v in after.items()}
    files["portal.log"] = log_file.read_bytes()
    needles = [CANARY.encode(), "zażółć".encode(), b"CANARY-REJECTED-NOTE"]
    found = {needle: files_containing(files, needle) for needle in needles}
    assert not {k: v for k, v in found.items() if v}
