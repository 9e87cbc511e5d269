"""ConversationService against real databases: one transaction per turn, the two-commit
submission, crash safety, /forget, quick exit, and no Telegram id anywhere on disk."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import itertools
import json
import re
import secrets
import tomllib
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, update

import bot.service
from bot.config import bundled_deployment_path
from bot.keyring import register_public_key
from bot.service import ConversationService, ServerSecrets, TurnResult
from flows import (
    ButtonPressed,
    CommandReceived,
    Context,
    Event,
    QuickExitRequested,
    Started,
    TextReceived,
    load_catalogs,
    load_flow,
    parse_deployment,
)
from flows.render import NOT_PICKED
from storage import queries
from storage.db import transaction
from storage.drafts import open_draft, person_draft_key, seal_draft
from storage.models import (
    ChatMessage,
    ContactRequest,
    Conversation,
    OrganisationKey,
    ProcessedUpdate,
)
from storage.requests import reference_hash
from storage.sealing import RecipientPrivateKey, SealContext, generate_keypair, open_sealed
from tests.integration.support import (
    Database,
    all_values,
    aware,
    cells_containing,
    files_containing,
    only_sqlite,
    sqlite_files,
)
from tests.walker import Press, walk

USER_ID = "987654321"
OTHER_USER_ID = "123123123"
CHANNEL = "telegram"
ORGS = ("eastshire-hub", "polska-pomoc")
CHOSEN_ORG = "polska-pomoc"
CHOSEN_ORG_NAME = "Polska Pomoc Eastshire (fictional)"
PHONE_TYPED, PHONE_DIGITS = "07911 123456", "7911123456"
CODEWORD = "Kingfisher-Zebra-42"
MESSAGE = "Call after six, my husband reads my phone"
REFERENCE = re.compile(r"<code>(\d{4} \d{4} \d{4} \d{4})</code>")


@pytest.fixture(scope="module")
def ctx() -> Context:
    deployment = parse_deployment(tomllib.loads(bundled_deployment_path().read_text()))
    return Context(load_flow(), deployment, load_catalogs())


@pytest.fixture(scope="module")
def server_secrets() -> ServerSecrets:
    return ServerSecrets(
        user_hash_key=secrets.token_bytes(32),
        draft_key=secrets.token_bytes(32),
        lookup_key=secrets.token_bytes(32),
    )


@pytest.fixture
async def org_keys(db: Database) -> dict[str, RecipientPrivateKey]:
    keys = {}
    for org in ORGS:
        private, public = generate_keypair()
        await register_public_key(db.sessions, org, public)
        keys[org] = private
    return keys


@pytest.fixture
def service(
    db: Database, ctx: Context, server_secrets: ServerSecrets, org_keys: object
) -> ConversationService:
    return ConversationService(
        ctx,
        db.sessions,
        server_secrets,
        state_ttl=dt.timedelta(hours=6),
        draft_ttl=dt.timedelta(minutes=60),
        engine=db.engine,
    )


_update_ids: Iterator[int] = itertools.count(5_000_001)
_message_ids: Iterator[int] = itertools.count(70_001)


class Victim:
    """Plays the channel: sends events with fresh update and message ids, records the ids of
    the messages 'sent' back (as the Telegram edge does), presses buttons by their label."""

    def __init__(self, service: ConversationService, user_id: str = USER_ID) -> None:
        self.service = service
        self.user_id = user_id
        self.last: TurnResult | None = None
        self.seen_message_ids: list[int] = []

    def draft_key(self, secrets: ServerSecrets) -> bytes:
        """Her draft's key: only her own turn can make it (her id is never stored)."""
        return person_draft_key(secrets.draft_key, CHANNEL, self.user_id)

    async def send(self, event: Event, *, update_id: int | None = None) -> TurnResult:
        incoming = next(_message_ids)
        turn = await self.service.handle(
            CHANNEL,
            self.user_id,
            event,
            update_id=next(_update_ids) if update_id is None else update_id,
            incoming_message_id=incoming,
        )
        if turn.duplicate:
            return turn
        self.seen_message_ids.append(incoming)
        sent = [next(_message_ids) for _ in turn.replies]
        self.seen_message_ids.extend(sent)
        await self.service.remember_sent(turn.chat_key, sent)
        self.last = turn
        return turn

    def button(self, label: str) -> str:
        assert self.last is not None
        for reply in reversed(self.last.replies):
            for row in reply.buttons:
                for button in row:
                    if button.label == label:
                        return button.data
        shown = [b.label for r in self.last.replies for row in r.buttons for b in row]
        raise AssertionError(f"no button {label!r} on screen; buttons: {shown}")

    async def press(self, label: str) -> TurnResult:
        return await self.send(ButtonPressed(self.button(label)))

    async def type(self, text: str) -> TurnResult:
        return await self.send(TextReceived(text))

    @property
    def chat_key(self) -> str:
        return self.service.chat_key(CHANNEL, self.user_id)


def says(ctx: Context, turn: TurnResult, key: str) -> bool:
    """Whether a reply carries the flow string `key` (English; up to its first placeholder)."""
    text = html.escape(ctx.flow.string(key), quote=False).split("{")[0]
    return any(text in reply.html for reply in turn.replies)


# The form as fill_form answers it (field -> stored value; None = Skip).
FORM_ANSWERS: dict[str, str | None] = {
    "consent": "yes",
    "method": "call",
    "phone": PHONE_TYPED,
    "times": "evenings",
    "leave_message": "no",
    "someone_else": "wrong_number",
    "codeword": CODEWORD,
    "language": "en",
    "interpreter": "no",
    "urgent": "yes",
    "threats": "no",
    "documents": None,
    "children": None,
    "organisation": CHOSEN_ORG,
    "message": MESSAGE,
}


async def fill_form(victim: Victim, *, until: str | None = None) -> TurnResult:
    """From /start to the summary screen (or to question `until`, not answered), choosing the
    organisation explicitly. The moves come from the shared walker (tests/walker.py)."""
    ctx = victim.service.ctx
    turn = await victim.send(Started(language_hint="en"))
    turn = await victim.press("Continue")
    for move in walk(
        ctx.flow, ctx.deployment, FORM_ANSWERS, lang="en", catalogs=ctx.catalogs, until=until
    ):
        if isinstance(move.action, Press):
            turn = await victim.press(move.action.label)
        else:
            turn = await victim.type(move.action.text)
    return turn


async def conversation_row(db: Database, chat_key: str) -> Conversation | None:
    async with db.sessions() as s:
        return await s.get(Conversation, chat_key)


async def tracked_ids(db: Database, chat_key: str) -> list[int]:
    """The message ids quick exit would delete now (within Telegram's 48-hour window)."""
    async with db.sessions() as s:
        return await queries.chat_message_ids(s, chat_key, dt.datetime.now(dt.UTC))


async def request_rows(db: Database) -> list[ContactRequest]:
    async with db.sessions() as s:
        return list((await s.scalars(select(ContactRequest))).all())


def open_request(row: ContactRequest, key: RecipientPrivateKey) -> dict[str, object]:
    context = SealContext(request_id=row.id, org=row.organisation, created_at=aware(row.created_at))
    doc = json.loads(open_sealed(row.envelope, [key], context))
    assert isinstance(doc, dict)
    return doc


# ---- the happy path ---------------------------------------------------------------------------


async def test_full_contact_request(
    db: Database,
    ctx: Context,
    service: ConversationService,
    server_secrets: ServerSecrets,
    org_keys: dict[str, RecipientPrivateKey],
) -> None:
    victim = Victim(service)
    summary = await fill_form(victim)
    assert CODEWORD in summary.replies[-1].html  # the victim sees their own answers
    assert await request_rows(db) == []  # nothing is stored before Send

    done = await victim.press("✅ Send")
    assert done.request_stored is True
    shown = [m.group(1) for r in done.replies if (m := REFERENCE.search(r.html))]
    assert len(shown) == 1, "the done screen shows one reference, grouped by 4"
    reference = shown[0].replace(" ", "")

    [row] = await request_rows(db)
    assert row.organisation == CHOSEN_ORG
    assert (row.language, row.status, row.urgent) == ("en", "new", True)
    assert row.owner_key == service.owner_key(CHANNEL, USER_ID)
    assert row.owner_key != victim.chat_key  # separate labels: not linkable by equality
    answers = open_request(row, org_keys[CHOSEN_ORG])["answers"]
    assert isinstance(answers, dict)
    assert answers["codeword"] == CODEWORD
    assert answers["message"] == MESSAGE
    assert answers["phone"] == "+44" + PHONE_DIGITS
    assert answers["organisation"] == CHOSEN_ORG
    assert answers["urgent"] == "yes"
    assert "reference" not in answers

    conv = await conversation_row(db, victim.chat_key)
    assert conv is not None and conv.step == "contact.done"
    # The answers left the conversation row; only the reference number and who it went to
    # remain, encrypted, while the "sent" screen shows them.
    assert open_draft(victim.draft_key(server_secrets), victim.chat_key, conv.draft) == {
        "answers": {"reference": reference, "routed_to": CHOSEN_ORG},
        "resume": None,
    }
    assert conv.draft is not None and reference.encode() not in conv.draft

    async with db.sessions() as s:
        ref = reference_hash(server_secrets.lookup_key, reference)
        assert await queries.status_by_reference(s, ref) == "new"
    status = await victim.send(CommandReceived("status", argument=shown[0]))
    assert says(ctx, status, "status_waiting")
    arabic_indic = "".join(chr(0x0660 + int(ch)) if ch.isdigit() else ch for ch in shown[0])
    status = await victim.send(CommandReceived("status", argument=arabic_indic))
    assert says(ctx, status, "status_waiting")


async def test_duplicate_update_is_handled_once(db: Database, service: ConversationService) -> None:
    victim = Victim(service)
    first = await victim.send(Started(language_hint="en"), update_id=424242)
    assert not first.duplicate and first.replies
    before = await conversation_row(db, victim.chat_key)
    again = await victim.send(Started(language_hint="en"), update_id=424242)
    assert again.duplicate is True and again.replies == ()
    after = await conversation_row(db, victim.chat_key)
    assert before is not None and after is not None
    assert (after.seq, after.step) == (before.seq, before.step)
    async with db.sessions() as s:
        assert await s.get(ProcessedUpdate, 424242) is not None


async def test_concurrent_turns_of_one_person_are_not_lost(
    db: Database, service: ConversationService
) -> None:
    """The per-person lock (PostgreSQL) / the write lock (SQLite): five turns at once, each
    moves the screen sequence on by one; none may read a stale state."""
    victim = Victim(service)
    await victim.send(Started(language_hint="en"))
    start = await conversation_row(db, victim.chat_key)
    assert start is not None

    async def menu() -> TurnResult:
        return await service.handle(
            CHANNEL, USER_ID, ButtonPressed("m"), update_id=next(_update_ids)
        )

    turns = await asyncio.wait_for(asyncio.gather(*(menu() for _ in range(5))), 20)
    assert all(t.replies for t in turns)
    end = await conversation_row(db, victim.chat_key)
    assert end is not None and end.seq == start.seq + 5


async def test_returning_after_expiry_starts_afresh(
    db: Database, service: ConversationService
) -> None:
    victim = Victim(service)
    await victim.send(Started(language_hint="en"))
    await victim.press("Continue")
    async with transaction(db.sessions) as s:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        await s.execute(
            update(Conversation)
            .where(Conversation.chat_key == victim.chat_key)
            .values(expires_at=past)
        )
    turn = await victim.send(TextReceived("hello"))  # the expired row is replaced in one flush
    assert turn.replies
    row = await conversation_row(db, victim.chat_key)
    assert row is not None
    assert aware(row.expires_at) > dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)


async def test_many_people_at_once(
    db: Database, service: ConversationService, org_keys: dict[str, RecipientPrivateKey]
) -> None:
    """Different people's turns run concurrently (one process, many chats): every request
    is stored once, opens for its organisation, and gets its own reference."""

    async def one(n: int) -> str:
        victim = Victim(service, f"55500{n}")
        await fill_form(victim)
        done = await victim.press("✅ Send")
        assert done.request_stored
        [code] = [m.group(1) for r in done.replies if (m := REFERENCE.search(r.html))]
        return code

    codes = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(8))), 30)
    assert len(set(codes)) == 8
    rows = await request_rows(db)
    assert len(rows) == 8
    assert len({r.owner_key for r in rows}) == 8
    for row in rows:
        assert open_request(row, org_keys[row.organisation])["answers"]


# ---- /forget and quick exit -------------------------------------------------------------------


async def test_forget_removes_conversation_and_unopened_request(
    db: Database, ctx: Context, service: ConversationService
) -> None:
    victim = Victim(service)
    other = Victim(service, OTHER_USER_ID)
    await fill_form(victim)
    assert (await victim.press("✅ Send")).request_stored
    await fill_form(other)
    assert (await other.press("✅ Send")).request_stored
    [mine] = [
        r for r in await request_rows(db) if r.owner_key == service.owner_key(CHANNEL, USER_ID)
    ]
    envelope_sample = mine.envelope[-64:]

    await victim.send(CommandReceived("forget"))
    shown = list(victim.seen_message_ids)
    turn = await victim.press("Yes")
    await service.messages_deleted(victim.chat_key, turn.delete_message_ids)  # as the channel
    assert says(ctx, turn, "forgotten")
    assert turn.replies[-1].buttons, "the menu follows, so the person can go on"
    # what is on the screen is cleared as by quick exit, the press included
    assert set(turn.delete_message_ids) == {*shown, victim.seen_message_ids[len(shown)]}
    # only the replies of the forget turn itself are left to delete
    assert await tracked_ids(db, victim.chat_key) == victim.seen_message_ids[len(shown) + 1 :]
    assert await conversation_row(db, victim.chat_key) is None
    left = await request_rows(db)
    assert [r.owner_key for r in left] == [service.owner_key(CHANNEL, OTHER_USER_ID)]
    assert await conversation_row(db, other.chat_key) is not None
    if db.path is not None:  # SQLite: checkpointed right away, the sealed bytes are gone
        assert files_containing(sqlite_files(db.path), envelope_sample) == []


async def test_forget_withdraws_an_opened_request(
    db: Database, ctx: Context, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    assert (await victim.press("✅ Send")).request_stored
    [row] = await request_rows(db)
    async with transaction(db.sessions) as s:
        await queries.set_request_status(s, row.id, "picked_up", dt.datetime.now(dt.UTC))

    await victim.send(CommandReceived("forget"))
    turn = await victim.press("Yes")
    assert says(ctx, turn, "forgotten_withdrawn")
    [after] = await request_rows(db)
    assert after.status == "withdrawn" and after.closed_at is not None
    assert await conversation_row(db, victim.chat_key) is None


async def test_a_draft_opens_only_with_her_own_id(
    db: Database, service: ConversationService, server_secrets: ServerSecrets
) -> None:
    """A copy of the database and the server secrets is not enough to read a draft: its key
    needs her messenger id, which only her own turn brings (the database holds hashes)."""
    victim = Victim(service)
    await fill_form(victim, until="contact.times")  # the phone number typed
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None
    assert open_draft(server_secrets.draft_key, victim.chat_key, row.draft) is None
    other = person_draft_key(server_secrets.draft_key, CHANNEL, OTHER_USER_ID)
    assert open_draft(other, victim.chat_key, row.draft) is None
    mine = open_draft(victim.draft_key(server_secrets), victim.chat_key, row.draft)
    assert mine is not None and mine["answers"]["phone"] == "+44" + PHONE_DIGITS


async def test_a_draft_sealed_before_per_person_keys_still_opens_and_is_sealed_again(
    db: Database, service: ConversationService, server_secrets: ServerSecrets
) -> None:
    """Drafts written by the previous release (under the server key alone) are not lost in
    the upgrade: the next turn opens them and saves them under her own key."""
    victim = Victim(service)
    await fill_form(victim, until="contact.times")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None
    draft = open_draft(victim.draft_key(server_secrets), victim.chat_key, row.draft)
    assert draft is not None
    legacy = seal_draft(server_secrets.draft_key, victim.chat_key, draft)
    async with transaction(db.sessions) as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.chat_key == victim.chat_key)
            .values(draft=legacy)
        )
    await victim.press(NOT_PICKED + "Evenings")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None and row.draft != legacy
    assert open_draft(server_secrets.draft_key, victim.chat_key, row.draft) is None
    again = open_draft(victim.draft_key(server_secrets), victim.chat_key, row.draft)
    assert again is not None and again["answers"]["phone"] == "+44" + PHONE_DIGITS


async def test_quick_exit_clears_draft_and_returns_every_message_id(
    db: Database, service: ConversationService, server_secrets: ServerSecrets
) -> None:
    victim = Victim(service)
    drafts: list[bytes] = []
    await fill_form(victim, until="contact.times")  # the phone number typed
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None
    drafts.append(row.draft)
    await victim.press(NOT_PICKED + "Evenings")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None
    drafts.append(row.draft)

    incoming = next(_message_ids)
    turn = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=incoming
    )
    assert set(turn.delete_message_ids) == {*victim.seen_message_ids, incoming}
    assert len(turn.delete_message_ids) == len(set(turn.delete_message_ids))
    # until the channel reports them deleted they stay tracked, so a failed delete is retried
    assert set(await tracked_ids(db, victim.chat_key)) == set(turn.delete_message_ids)
    await service.messages_deleted(victim.chat_key, turn.delete_message_ids)
    row = await conversation_row(db, victim.chat_key)
    assert row is not None
    assert row.draft is None and row.draft_expires_at is None
    assert await tracked_ids(db, victim.chat_key) == []  # deleted once, not again
    if db.path is not None:  # SQLite: no earlier draft ciphertext is left in any file
        files = sqlite_files(db.path)
        assert [files_containing(files, d[13:]) for d in drafts] == [[], []]


# ---- crash safety -----------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies (not an Exception: nothing in the service may catch it)."""


@pytest.mark.parametrize("failure", ["no_key", "store_raises", "commit_fails"])
async def test_failed_second_commit_says_not_sent(
    db: Database,
    ctx: Context,
    service: ConversationService,
    server_secrets: ServerSecrets,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    real_store = bot.service.store_request
    if failure == "no_key":
        async with transaction(db.sessions) as s:
            await s.execute(
                delete(OrganisationKey).where(OrganisationKey.organisation == CHOSEN_ORG)
            )
    elif failure == "store_raises":

        async def broken(*_: object, **__: object) -> object:
            raise RuntimeError("disk full")

        monkeypatch.setattr(bot.service, "store_request", broken)
    else:

        async def poisoned(session: object, *args: object, **kwargs: object) -> object:
            stored = await real_store(session, *args, **kwargs)  # type: ignore[arg-type]
            # A row that cannot be inserted: the commit itself fails, after sealing.
            session.add(ProcessedUpdate(update_id=1, seen_at=None))  # type: ignore[attr-defined]
            return stored

        monkeypatch.setattr(bot.service, "store_request", poisoned)

    turn = await victim.press("✅ Send")
    assert turn.request_stored is False
    assert says(ctx, turn, "submit_failed")
    assert not any(REFERENCE.search(r.html) for r in turn.replies)
    assert await request_rows(db) == []
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.step == "contact.summary"
    draft = open_draft(victim.draft_key(server_secrets), victim.chat_key, row.draft)
    assert draft is not None and draft["answers"]["codeword"] == CODEWORD  # nothing retyped

    # Once the cause is gone, Send on the new summary works.
    monkeypatch.setattr(bot.service, "store_request", real_store)
    if failure == "no_key":
        await register_public_key(db.sessions, CHOSEN_ORG, generate_keypair()[1])
    retry = await victim.press("✅ Send")
    assert retry.request_stored is True
    assert len(await request_rows(db)) == 1


async def test_crash_during_the_submission_stores_nothing_and_keeps_the_summary(
    db: Database,
    ctx: Context,
    service: ConversationService,
    server_secrets: ServerSecrets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request and the "received" screen commit together: a process that dies in the
    middle leaves the summary exactly as it was, with nothing stored and nothing acknowledged."""
    victim = Victim(service)
    await fill_form(victim)
    real_store = bot.service.store_request

    async def die(*_: object, **__: object) -> object:
        raise Crash

    monkeypatch.setattr(bot.service, "store_request", die)
    with pytest.raises(Crash):
        await victim.send(ButtonPressed(victim.button("✅ Send")))
    monkeypatch.setattr(bot.service, "store_request", real_store)

    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.step == "contact.summary"  # nothing of the turn committed
    assert await request_rows(db) == []
    draft = open_draft(victim.draft_key(server_secrets), victim.chat_key, row.draft)
    assert draft is not None and draft["answers"]["message"] == MESSAGE

    # The restarted process meets the same summary; Send stores exactly one request.
    turn = await victim.press("✅ Send")
    assert turn.request_stored is True
    assert len(await request_rows(db)) == 1


async def test_crash_state_set_directly_gives_not_sent(
    db: Database, ctx: Context, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    async with transaction(db.sessions) as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.chat_key == victim.chat_key)
            .values(step="contact.submitting")
        )
    turn = await victim.send(CommandReceived("menu"))
    assert says(ctx, turn, "submit_interrupted")
    assert await request_rows(db) == []


# ---- nothing identifying at rest --------------------------------------------------------------


async def test_telegram_id_and_answers_never_stored_in_the_clear(
    db: Database, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    done = await victim.press("✅ Send")
    assert done.request_stored
    await victim.send(CommandReceived("status", argument="0000 0000 0000 0000"))
    other = Victim(service, OTHER_USER_ID)  # a half-filled form sits in a draft meanwhile
    await other.send(Started(language_hint="en"))
    await other.press("Continue")

    async with db.sessions() as s:
        cells = await all_values(s)
    assert cells, "the scan must see rows"
    for needle in (USER_ID, OTHER_USER_ID, CODEWORD, MESSAGE, PHONE_DIGITS):
        assert cells_containing(cells, needle) == [], needle
    if db.path is not None:  # SQLite: not in any page of any file either, deleted or live
        files = sqlite_files(db.path)
        for needle in (USER_ID, OTHER_USER_ID, CODEWORD, MESSAGE, PHONE_DIGITS):
            assert files_containing(files, needle.encode()) == [], needle


@only_sqlite
async def test_sqlite_scan_sees_plaintext_it_should(db: Database) -> None:
    """Control for the file scans above: a plaintext value written to the database is found."""
    assert db.path is not None
    async with transaction(db.sessions) as s:
        s.add(
            OrganisationKey(
                key_id=USER_ID,
                organisation="org-a",
                suite="x",
                public_key="p",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    assert files_containing(sqlite_files(db.path), USER_ID.encode())


# ---- a draft that expired or does not open ----------------------------------------------------


async def lose_draft(db: Database, chat_key: str, how: str) -> None:
    if how == "expired":  # as load_conversation finds it once draft_ttl has passed
        values = {"draft_expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}
    else:  # the draft key changed, or the blob was damaged: it no longer opens
        async with db.sessions() as s:
            row = await s.get(Conversation, chat_key)
            assert row is not None and row.draft is not None
            values = {"draft": row.draft[:-1] + bytes([row.draft[-1] ^ 1])}
    async with transaction(db.sessions) as s:
        await s.execute(
            update(Conversation).where(Conversation.chat_key == chat_key).values(**values)
        )


@pytest.mark.parametrize("how", ["expired", "undecryptable"])
async def test_send_after_the_draft_was_lost_stores_nothing(
    db: Database, ctx: Context, service: ConversationService, how: str
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    await lose_draft(db, victim.chat_key, how)
    turn = await victim.press("✅ Send")
    assert turn.request_stored is False
    assert says(ctx, turn, "draft_expired")
    assert not any(REFERENCE.search(r.html) for r in turn.replies)
    assert await request_rows(db) == []
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.step == "menu"
    assert row.draft is None and row.draft_expires_at is None


async def test_answering_after_the_draft_expired_starts_again(
    db: Database, ctx: Context, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim, until="contact.phone")
    await lose_draft(db, victim.chat_key, "expired")
    turn = await victim.type(PHONE_TYPED)  # the phone question is still on the screen
    assert says(ctx, turn, "draft_expired")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.step == "menu" and row.draft is None
    # starting again works, from the first question
    await victim.press("Talk to a support worker")
    turn = await victim.press("Yes, go on")
    assert not says(ctx, turn, "draft_expired")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.step == "contact.method" and row.draft is not None


def clocked_service(
    db: Database, ctx: Context, server_secrets: ServerSecrets, clock: list[dt.datetime]
) -> ConversationService:
    """A service whose clock is `clock[0]`, moved by the test."""
    return ConversationService(
        ctx,
        db.sessions,
        server_secrets,
        state_ttl=dt.timedelta(hours=6),
        draft_ttl=dt.timedelta(minutes=60),
        clock=lambda: clock[0],
        engine=db.engine,
    )


async def test_the_draft_goes_a_fixed_time_after_her_last_answer_not_her_last_press(
    db: Database, ctx: Context, server_secrets: ServerSecrets
) -> None:
    # The screens say the answers go {draft_minutes} minutes "after your last answer": reading
    # the menu or another screen in between must not keep them longer.
    clock = [dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)]
    service = clocked_service(db, ctx, server_secrets, clock)
    victim = Victim(service)
    await fill_form(victim, until="contact.phone")
    answered_at = clock[0]
    presses = ("☰ Menu", "What happens to what I tell you?", "☰ Menu")  # none an answer
    for press in presses:
        clock[0] += dt.timedelta(minutes=17)
        await victim.press(press)
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and row.draft is not None
    assert aware(row.draft_expires_at) == answered_at + dt.timedelta(minutes=60)
    clock[0] = answered_at + dt.timedelta(minutes=61)
    turn = await victim.press("📝 Continue my request")
    assert says(ctx, turn, "draft_gone")
    # and an answer does restart it
    await victim.press("Talk to a support worker")
    await victim.press("Yes, go on")
    row = await conversation_row(db, victim.chat_key)
    assert row is not None and aware(row.draft_expires_at) == clock[0] + dt.timedelta(minutes=60)


# ---- quick exit after the state is gone (messages are kept for Telegram's 48 hours) ----------


async def test_quick_exit_after_forget_still_clears_the_chat(
    db: Database, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim)
    await victim.send(CommandReceived("forget"))
    shown = list(victim.seen_message_ids)  # the summary with phone and code word among them
    forget = await victim.press("Yes")
    press, *forget_replies = victim.seen_message_ids[len(shown) :]
    assert set(forget.delete_message_ids) == {*shown, press}
    assert forget_replies  # "forgotten" and the menu: still on the screen
    await service.messages_deleted(victim.chat_key, forget.delete_message_ids)  # as the channel
    incoming = next(_message_ids)
    leave = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=incoming
    )
    assert set(leave.delete_message_ids) == {*forget_replies, incoming}


async def test_ids_stay_tracked_until_the_channel_deleted_them(
    db: Database, service: ConversationService
) -> None:
    """A delete that failed (network, Telegram down) is tried again by the next quick exit."""
    victim = Victim(service)
    await victim.send(Started(language_hint="en"))
    await victim.press("Continue")
    first = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=next(_message_ids)
    )
    # the channel could not delete anything: a second quick exit gets every id again
    second = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=next(_message_ids)
    )
    assert set(first.delete_message_ids) < set(second.delete_message_ids)
    await service.messages_deleted(victim.chat_key, second.delete_message_ids)
    assert await tracked_ids(db, victim.chat_key) == []


async def test_quick_exit_after_the_conversation_expired_still_clears_the_chat(
    db: Database, service: ConversationService
) -> None:
    victim = Victim(service)
    await fill_form(victim, until="contact.times")  # the phone number typed
    async with transaction(db.sessions) as s:  # state_ttl has passed
        await s.execute(
            update(Conversation)
            .where(Conversation.chat_key == victim.chat_key)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    incoming = next(_message_ids)
    turn = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=incoming
    )
    assert set(turn.delete_message_ids) == {*victim.seen_message_ids, incoming}


async def test_quick_exit_deletes_only_messages_telegram_still_deletes(
    db: Database, ctx: Context, server_secrets: ServerSecrets
) -> None:
    clock = [dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)]
    service = clocked_service(db, ctx, server_secrets, clock)
    victim = Victim(service)
    await victim.send(Started(language_hint="en"))
    old = list(victim.seen_message_ids)
    clock[0] += dt.timedelta(hours=47)
    await victim.send(Started(language_hint="en"))
    recent = victim.seen_message_ids[len(old) :]
    clock[0] += dt.timedelta(hours=2)  # the first messages are now 49 hours old
    incoming = next(_message_ids)
    turn = await service.handle(
        CHANNEL, USER_ID, QuickExitRequested(), incoming_message_id=incoming
    )
    assert set(turn.delete_message_ids) == {*recent, incoming}


async def test_a_clock_in_another_time_zone_is_stored_as_utc(
    db: Database, ctx: Context, server_secrets: ServerSecrets
) -> None:
    """SQLite keeps no offset: a +05:00 clock would otherwise put every timestamp 5 h off
    (the state would expire early, the 48-hour window would shift)."""
    utc = dt.datetime.now(dt.UTC).replace(microsecond=0)
    local = utc.astimezone(dt.timezone(dt.timedelta(hours=5)))
    service = ConversationService(
        ctx,
        db.sessions,
        server_secrets,
        state_ttl=dt.timedelta(hours=6),
        draft_ttl=dt.timedelta(minutes=60),
        clock=lambda: local,
        engine=db.engine,
    )
    victim = Victim(service)
    await victim.send(Started(language_hint="en"))
    row = await conversation_row(db, victim.chat_key)
    assert row is not None
    assert aware(row.updated_at) == utc
    assert aware(row.expires_at) == utc + dt.timedelta(hours=6)
    async with db.sessions() as s:
        sent = await s.scalars(
            select(ChatMessage.sent_at).where(ChatMessage.chat_key == victim.chat_key)
        )
        assert {aware(t) for t in sent} == {utc}
