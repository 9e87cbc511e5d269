"""The turn runner: one turn of a conversation, for any channel, in one transaction.

A turn is: take the update (from the durable inbox, or straight from the terminal), claim its
id, take the person's lock, load the state, step the engine, run every effect through one
dispatcher (a bounded loop that feeds each effect's result back to the engine), save the state
and write the replies to the durable outbox, then commit. All of it commits together or none
of it does. Under load the inbox hands over the turns of many people at once (`run_batch`):
one turn per chat, all in one transaction, each step one statement for all of them (the
statements and the commit were most of a turn's cost); if anything in it fails, nothing of it
commits and its turns run again one at a time, so the rules below hold per turn either way:

1. A redelivered update finds its id claimed and does nothing; an update whose turn crashed is
   still in the inbox and runs again from the start.
2. A contact request and the "received" screen commit together, with the inbox row gone, so a
   request is never stored twice and never acknowledged without being stored. If storing fails
   the transaction is rolled back and the turn runs again with `RequestFailed`, which says
   plainly that it was NOT sent.
3. Quick exit drops every reply still waiting for that chat and queues one quick-exit item
   ahead of everything else; the outbox delivers it (and retries it after a crash).
4. Outreach counters go up in the turn's transaction: `started` once for a new conversation
   (no live state before the turn), under NO_CAMPAIGN and the language it ended the turn in,
   unless a live campaign link counted the start for its campaign; `requested` for every
   stored request. A repeated /start of a live conversation is not a new one.
Nothing here logs message text, answers or ids: only step names and counts.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channel import ChatAddress
from flows.effects import (
    CheckStatus,
    DeleteConversation,
    Effect,
    ForgetMe,
    OpenCampaign,
    SubmitRequest,
)
from flows.engine import Context, Outcome, initial_state, step
from flows.events import (
    ButtonPressed,
    CampaignChecked,
    CommandReceived,
    Event,
    Forgotten,
    QuickExitRequested,
    RequestFailed,
    RequestStored,
    StatusChecked,
    event_from_json,
    event_to_json,
)
from flows.i18n import is_rtl, negotiate
from flows.replies import Button, Reply, coalesce
from flows.state import ConversationState
from storage import conversations, delivery, outreach, queries
from storage.db import transaction
from storage.dialect import checkpoint
from storage.drafts import open_json, person_draft_key, seal_json
from storage.identity import keyed_hash
from storage.models import NO_CAMPAIGN, OutboxItem
from storage.requests import NewRequest, reference_hash, store_request
from storage.signing import SigningKey, generate_signing_key

log = logging.getLogger("safebot.service")

MAX_EFFECTS = 8  # effects a turn may chain; a flow that needs more is broken

LANE_QUICK_EXIT, LANE_URGENT, LANE_NORMAL = 0, 1, 2


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ServerSecrets:
    user_hash_key: bytes
    draft_key: bytes
    lookup_key: bytes
    # Signs every sealed request (bot/app.py loads it from outside the database); a fresh
    # key by default, for tests: requests signed by it verify against nothing else.
    signing_key: SigningKey = field(default_factory=generate_signing_key)


@dataclass(frozen=True)
class Incoming:
    """One update as a channel hands it over, before it is stored in the inbox."""

    update_id: int
    channel: str
    user_id: str
    chat: ChatAddress
    event: Event
    incoming_message_id: int | None = None
    language_code: str | None = None  # the client's language, for an apology


@dataclass(frozen=True)
class Queued:
    """A committed outbox row, decoded: what the outbox sender delivers."""

    id: int
    chat_key: str
    lane: int
    kind: str  # "send" or "quick_exit"
    chat: ChatAddress
    replies: tuple[Reply, ...]
    attempts: int = 0


@dataclass(frozen=True)
class TurnResult:
    """What a turn did, for the caller: the replies (the terminal prints them), the outbox
    rows it committed (the sender delivers them), and what it changed."""

    replies: tuple[Reply, ...] = ()
    chat_key: str = ""
    delete_message_ids: tuple[int, ...] = ()
    duplicate: bool = False
    request_stored: bool = False
    outbox: tuple[Queued, ...] = ()
    # Quick exit or forget: something was deleted that must leave the disk now.
    wiped: bool = False
    lane: int = LANE_NORMAL  # the lane of the inbox update it handled


class _SubmitFailed(Exception):
    pass


@dataclass
class _Attempt:
    """Set once a turn reaches the submission: a failure from then on, the commit included,
    means the request was not stored and the person must be told so."""

    submitting: bool = False


@dataclass
class _TurnState:
    state: ConversationState
    replies: list[Reply] = field(default_factory=list)
    quick_exit: bool = False
    forget: bool = False
    stored: bool = False
    # What this turn counts (storage/outreach.py), added up at the end of the transaction.
    counts: list[tuple[str, str, outreach.Counter]] = field(default_factory=list)
    # A live campaign link counted this turn's start (so the new conversation is not
    # counted again under NO_CAMPAIGN).
    campaign_start: bool = False


@dataclass(frozen=True)
class _Work:
    """One turn to run: an update taken from the inbox, or handed over by the terminal."""

    chat_key: str
    channel: str
    user_id: str
    event: Event
    incoming: tuple[int, ...]  # the person's message, which quick exit must delete too
    deliver_to: ChatAddress | None  # None: the caller shows the replies (no outbox)
    lane: int = LANE_NORMAL


def reply_to_json(reply: Reply) -> dict[str, object]:
    return {
        "html": reply.html,
        "buttons": [[[b.label, b.data] for b in row] for row in reply.buttons],
        "protect": reply.protect,
        "rtl": reply.rtl,
    }


def reply_from_json(data: dict[str, object]) -> Reply:
    rows = data.get("buttons") or []
    assert isinstance(rows, list)
    return Reply(
        html=str(data["html"]),
        buttons=tuple(tuple(Button(str(b[0]), str(b[1])) for b in row) for row in rows),
        protect=bool(data.get("protect", True)),
        rtl=bool(data.get("rtl", False)),
    )


class ConversationService:
    def __init__(
        self,
        ctx: Context,
        sessions: async_sessionmaker[AsyncSession],
        secrets: ServerSecrets,
        *,
        state_ttl: dt.timedelta,
        draft_ttl: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
        engine: AsyncEngine | None = None,
        owner: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.owner = owner  # this process, on the outbox items its turns queue
        self.engine = engine
        self.sessions = sessions
        self.secrets = secrets
        self.state_ttl = state_ttl
        self.draft_ttl = draft_ttl
        self.lifetimes = conversations.Lifetimes(state=state_ttl, draft=draft_ttl)
        self._clock = clock
        self._urgent_steps = frozenset(s.id for s in ctx.flow.steps.values() if s.urgent)

    def clock(self) -> dt.datetime:
        # Always UTC: SQLite keeps no offset, and sealed requests bind their creation time.
        return self._clock().astimezone(dt.UTC)

    def chat_key(self, channel: str, user_id: str) -> str:
        return keyed_hash(self.secrets.user_hash_key, f"chat:{channel}", user_id)

    def owner_key(self, channel: str, user_id: str) -> str:
        return keyed_hash(self.secrets.user_hash_key, f"owner:{channel}", user_id)

    def lane_of(self, event: Event) -> int:
        """How urgently an update is handled, ahead of other people's: quick exit first, then
        whatever opens an emergency screen, then everything else."""
        if isinstance(event, QuickExitRequested) or (
            isinstance(event, ButtonPressed) and event.data == "x"
        ):
            return LANE_QUICK_EXIT
        if isinstance(event, ButtonPressed) and event.data.startswith("g:"):
            if event.data[2:] in self._urgent_steps:
                return LANE_URGENT
        if isinstance(event, CommandReceived) and event.name in {"help", "sos"}:
            return LANE_URGENT
        return LANE_NORMAL

    # ---- the inbox ---------------------------------------------------------------------

    async def receive(self, updates: Sequence[Incoming]) -> list[tuple[str, int]]:
        """Store updates durably (one transaction); only then may the channel tell the
        messenger they arrived. Returns (chat key, lane) for each, for the inbox scheduler."""
        stored: list[delivery.Received] = []
        for u in updates:
            chat_key = self.chat_key(u.channel, u.user_id)
            body = {
                "channel": u.channel,
                "user": u.user_id,
                "chat": u.chat,
                "event": event_to_json(u.event),
                "incoming": u.incoming_message_id,
                "language": u.language_code,
            }
            payload = seal_json(self.secrets.draft_key, "inbox:" + chat_key, body)
            stored.append(delivery.Received(u.update_id, chat_key, self.lane_of(u.event), payload))
        async with transaction(self.sessions) as session:
            await delivery.store_updates(session, stored, self.clock())
        return [(r.chat_key, r.lane) for r in stored]

    async def run_next(self, chat_key: str) -> TurnResult | None:
        """Handle the chat's oldest stored update; None when the inbox holds none for it."""
        attempt = _Attempt()
        try:
            (turn,) = await self._run([chat_key], attempt, submit_failed=False)
        except Exception:
            if not attempt.submitting:
                raise
            log.warning("submission rolled back; the turn runs again as not sent")
            (turn,) = await self._run([chat_key], _Attempt(), submit_failed=True)
        return turn

    async def run_batch(self, chat_keys: Sequence[str]) -> list[TurnResult | None]:
        """`run_next` for several distinct chats in ONE transaction (one turn each, so each
        person's order holds): the statements and the commit are shared, which is most of a
        turn's cost. All of it commits or none of it does; if it raises, the caller runs the
        same chats one at a time with `run_next`, so that one failing turn (a submission that
        cannot be stored) is rolled back and rerun alone, and the others commit as usual."""
        return await self._run(chat_keys, _Attempt(), submit_failed=False)

    async def _run(
        self, chat_keys: Sequence[str], attempt: _Attempt, *, submit_failed: bool
    ) -> list[TurnResult | None]:
        now = self.clock()
        results: dict[str, TurnResult | None] = dict.fromkeys(chat_keys)
        async with transaction(self.sessions) as session:
            await queries.lock_chats(session, chat_keys)
            popped = await delivery.pop_updates(session, chat_keys)
            claimed = await queries.claim_updates(
                session, [row.update_id for row in popped.values()], now
            )
            work: list[_Work] = []
            for chat_key, row in popped.items():
                item = self._opened(chat_key, row) if row.update_id in claimed else None
                if item is None:
                    # Handled already (a redelivery), or unreadable: the row just goes.
                    results[chat_key] = TurnResult(chat_key=chat_key, duplicate=True, lane=row.lane)
                else:
                    work.append(item)
            for turn in await self._turns(session, work, now, attempt, submit_failed):
                results[turn.chat_key] = turn
        await self._after_commit([t for t in results.values() if t is not None])
        return [results[k] for k in chat_keys]

    def _opened(self, chat_key: str, row: delivery.Popped) -> _Work | None:
        body = open_json(self.secrets.draft_key, "inbox:" + chat_key, row.payload)
        event = event_from_json(body.get("event")) if body else None
        if body is None or event is None:
            # Sealed under a server key that has since changed: nothing can be done with it.
            log.warning("inbox update that does not open dropped")
            return None
        incoming = body.get("incoming")
        return _Work(
            chat_key,
            str(body["channel"]),
            str(body["user"]),
            event,
            (incoming,) if isinstance(incoming, int) else (),
            deliver_to=body["chat"],
            lane=row.lane,
        )

    def apology(self, language_code: str | None) -> Reply:
        """Said when a turn keeps failing, in the client's language (the state may be what
        cannot be read)."""
        ctx = self.ctx
        language = negotiate(
            language_code, ctx.deployment.languages, ctx.deployment.default_language
        )
        text = ctx.catalogs.get(language).gettext(ctx.flow.string("turn_failed"))
        return Reply(html.escape(text), rtl=is_rtl(language))

    async def give_up(self, chat_key: str) -> tuple[Queued, ...] | None:
        """A turn that keeps failing: drop its update so the person's next one can run, and
        queue an apology (returned, for the sender). None if even that could not be stored."""
        queued: tuple[Queued, ...] = ()
        try:
            async with transaction(self.sessions) as session:
                await queries.lock_chat(session, chat_key)
                row = await delivery.pop_update(session, chat_key)
                if row is None:
                    return queued
                await queries.claim_update(session, row.update_id, self.clock())
                body = open_json(self.secrets.draft_key, "inbox:" + chat_key, row.payload)
                if body is not None:
                    language = body.get("language")
                    reply = self.apology(language if isinstance(language, str) else None)
                    outgoing = self._outgoing(chat_key, body["chat"], [reply], LANE_NORMAL)
                    (queued,) = await self._queue(session, [outgoing], self.clock())
            return queued
        except Exception as exc:
            log.error("could not drop a failing update: %s", type(exc).__name__)
            return None

    # ---- a turn without the inbox (terminal chat, tests) -----------------------------------

    async def handle(
        self,
        channel: str,
        user_id: str,
        event: Event,
        *,
        update_id: int | None = None,
        incoming_message_id: int | None = None,
        deliver_to: ChatAddress | None = None,
    ) -> TurnResult:
        attempt = _Attempt()
        args = (channel, user_id, event, update_id, incoming_message_id, deliver_to)
        try:
            return await self._handle(*args, attempt, False)
        except Exception:
            if not attempt.submitting:
                raise
            log.warning("submission rolled back; the turn runs again as not sent")
            return await self._handle(*args, _Attempt(), True)

    async def _handle(
        self,
        channel: str,
        user_id: str,
        event: Event,
        update_id: int | None,
        incoming_message_id: int | None,
        deliver_to: ChatAddress | None,
        attempt: _Attempt,
        submit_failed: bool,
    ) -> TurnResult:
        chat_key = self.chat_key(channel, user_id)
        now = self.clock()
        incoming = () if incoming_message_id is None else (incoming_message_id,)
        work = _Work(chat_key, channel, user_id, event, incoming, deliver_to=deliver_to)
        async with transaction(self.sessions) as session:
            if update_id is not None and not await queries.claim_update(session, update_id, now):
                return TurnResult(chat_key=chat_key, duplicate=True)
            await queries.lock_chat(session, chat_key)
            (turn,) = await self._turns(session, [work], now, attempt, submit_failed)
        await self._after_commit([turn])
        return turn

    async def messages_deleted(self, chat_key: str, message_ids: Sequence[int]) -> None:
        """The channel deleted these messages: they need not be tracked any more."""
        if not message_ids:
            return
        async with transaction(self.sessions) as session:
            await queries.forget_chat_messages(session, chat_key, message_ids)

    async def remember_sent(self, chat_key: str, message_ids: Sequence[int]) -> None:
        """Record the ids of messages the channel sent, so quick exit can delete them."""
        if not message_ids:
            return
        async with transaction(self.sessions) as session:
            await queries.remember_messages(session, chat_key, message_ids, self.clock())

    # ---- the turn ------------------------------------------------------------------------

    async def _turns(
        self,
        session: AsyncSession,
        work: Sequence[_Work],
        now: dt.datetime,
        attempt: _Attempt,
        submit_failed: bool,
    ) -> list[TurnResult]:
        """The turns of distinct chats, in the caller's transaction. The rows every turn
        reads and writes (state, incoming message ids, replies) go through one statement per
        table for all of them; effects (a submission, a status lookup, forget, quick exit) are
        rare and run turn by turn, in order, before those writes."""
        # Each person's draft opens with a key only her own turn can make (her id is in it).
        server_key = self.secrets.draft_key
        draft_keys = {w.chat_key: person_draft_key(server_key, w.channel, w.user_id) for w in work}
        states = await conversations.load_many(session, draft_keys, now, legacy_key=server_key)
        saves: list[tuple[str, ConversationState]] = []
        kept_clock: set[str] = set()  # no new answer: the draft's expiry stays
        messages: list[tuple[str, int]] = []
        outgoing: list[list[tuple[delivery.Outgoing, Queued]]] = []
        done: list[tuple[_Work, _TurnState, tuple[Reply, ...], tuple[int, ...]]] = []
        # Every counter the turns move, added up: one upsert per row, in one order, at the end.
        counted: Counter[tuple[str, str, outreach.Counter]] = Counter()
        for w in work:
            known = states.get(w.chat_key)
            state = known or initial_state(self.ctx.flow)
            outcome = step(self.ctx, state, w.event)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "turn event=%s step=%s->%s",
                    type(w.event).__name__,
                    state.step,
                    outcome.state.step,
                )
            acc = _TurnState(outcome.state, list(outcome.replies))
            if outcome.effects:
                if any(isinstance(e, SubmitRequest) for e in outcome.effects):
                    attempt.submitting = True
                await self._dispatch(session, acc, outcome, w, now, submit_failed)
            incoming = list(w.incoming)
            delete_ids: tuple[int, ...] = ()
            if acc.quick_exit:
                # Every reply still waiting for this chat is dropped: nothing may reach the
                # screen after quick exit. The incoming message is part of what must go.
                await delivery.drop_outgoing(session, w.chat_key)
                if w.deliver_to is None:
                    await queries.remember_messages(session, w.chat_key, incoming, now)
                    incoming = []
                    delete_ids = tuple(await queries.chat_message_ids(session, w.chat_key, now))
            messages += [(w.chat_key, i) for i in incoming]
            if acc.forget:
                await queries.delete_conversation(session, w.chat_key)
            else:
                saves.append((w.chat_key, acc.state))
                if not conversations.answered(known, acc.state):
                    kept_clock.add(w.chat_key)
                if known is None and not acc.campaign_start:
                    # A new conversation (no live state before this turn), by no campaign
                    # link, in the language it ended the turn in.
                    language = acc.state.language or self.ctx.deployment.default_language
                    acc.counts.append((NO_CAMPAIGN, language, "started"))
            counted.update(acc.counts)
            replies = coalesce(tuple(acc.replies))
            if w.deliver_to is not None:
                lane = LANE_URGENT if acc.state.step in self._urgent_steps else LANE_NORMAL
                outgoing.append(
                    self._outgoing(
                        w.chat_key, w.deliver_to, replies, lane, quick_exit=acc.quick_exit
                    )
                )
            else:
                outgoing.append([])
            done.append((w, acc, replies, delete_ids))
        await queries.remember_many(session, messages, now)
        await conversations.save_many(
            session, saves, now, draft_keys, self.lifetimes, kept_clock=kept_clock
        )
        for (campaign, language, counter), count in sorted(counted.items()):
            # In the turns' transaction: a crash never counts without its turn. Sorted, so
            # two batches never take the same counter rows in opposite orders (PostgreSQL).
            await outreach.add_one(session, campaign, language, counter, now, by=count)
        queued = await self._queue(session, outgoing, now)
        return [
            TurnResult(
                replies,
                w.chat_key,
                delete_message_ids=delete_ids,
                request_stored=acc.stored,
                outbox=q,
                wiped=acc.quick_exit or acc.forget,
                lane=w.lane,
            )
            for (w, acc, replies, delete_ids), q in zip(done, queued, strict=True)
        ]

    async def _dispatch(
        self,
        session: AsyncSession,
        acc: _TurnState,
        outcome: Outcome,
        w: _Work,
        now: dt.datetime,
        submit_failed: bool,
    ) -> None:
        """Run every effect, feeding each result back to the engine; effects that the engine
        asks for in reply are run too, up to MAX_EFFECTS."""
        todo: deque[Effect] = deque(outcome.effects)
        done = 0
        while todo:
            if done >= MAX_EFFECTS:
                log.error("turn asked for more than %d effects; the rest are not run", done)
                break
            effect = todo.popleft()
            done += 1
            follow = await self._perform(
                session, effect, acc, w.chat_key, w.channel, w.user_id, now, submit_failed
            )
            if follow is not None:
                after = step(self.ctx, acc.state, follow)
                acc.replies.extend(after.replies)
                acc.state = after.state
                todo.extend(after.effects)

    async def _perform(
        self,
        session: AsyncSession,
        effect: Effect,
        acc: _TurnState,
        chat_key: str,
        channel: str,
        user_id: str,
        now: dt.datetime,
        submit_failed: bool,
    ) -> Event | None:
        if isinstance(effect, CheckStatus):
            status = await queries.status_by_reference(
                session, reference_hash(self.secrets.lookup_key, effect.code)
            )
            return StatusChecked(status)
        if isinstance(effect, ForgetMe):
            result = await queries.forget_requests(session, self.owner_key(channel, user_id), now)
            log.info("forget deleted=%d withdrawn=%d", result.deleted, result.withdrawn)
            acc.forget = True
            return Forgotten(withdrawn=result.withdrawn > 0)
        if isinstance(effect, DeleteConversation):
            acc.quick_exit = True
            return None
        if isinstance(effect, OpenCampaign):
            active = await outreach.is_active(session, effect.code)
            if active:
                acc.counts.append((effect.code, effect.language, "started"))
                acc.campaign_start = True
            # Neither the payload nor the code is logged.
            log.info("outreach start counted=%s", active)
            return CampaignChecked(effect.code, effect.language, active, effect.language_hint)
        if isinstance(effect, SubmitRequest):
            if submit_failed:
                return RequestFailed()
            return await self._submit(session, effect, acc, channel, user_id, now)
        log.error("unknown effect %s not run", type(effect).__name__)
        return None

    async def _submit(
        self,
        session: AsyncSession,
        effect: SubmitRequest,
        acc: _TurnState,
        channel: str,
        user_id: str,
        now: dt.datetime,
    ) -> Event:
        deployment = self.ctx.deployment
        try:
            org = deployment.organisation(effect.organisation or deployment.default_organisation)
            stored = await store_request(
                session,
                NewRequest(
                    answers=effect.answers,
                    language=effect.language,
                    urgent=effect.urgent,
                    organisation=org.id,
                    campaign=effect.campaign,
                ),
                owner_key=self.owner_key(channel, user_id),
                lookup_key=self.secrets.lookup_key,
                now=now,
                retention=dt.timedelta(days=deployment.retention_days),
                notify=org.notify_chat_id is not None,
                signer=self.secrets.signing_key,
                pinned=deployment.key_pins(org.id),
            )
            # Every request, under her campaign (her start was counted there: the campaign was
            # live then; retiring it since does not undo that) or NO_CAMPAIGN. Added up at the
            # end of the request's transaction: counted if and only if it is stored.
            acc.counts.append((effect.campaign or NO_CAMPAIGN, effect.language, "requested"))
        except Exception as exc:
            # The transaction may be unusable now: roll all of it back and run the turn again,
            # telling the person it was NOT sent.
            log.error("request could not be stored: %s", type(exc).__name__)
            raise _SubmitFailed from exc
        log.info("request stored urgent=%s", effect.urgent)
        acc.stored = True
        return RequestStored(stored.reference)

    async def _after_commit(self, turns: Sequence[TurnResult]) -> None:
        if self.engine is None or not any(t.request_stored or t.wiped for t in turns):
            return
        try:
            # Deleted rows and old draft versions must leave the disk now, not at the next purge.
            await checkpoint(self.engine)
        except Exception:
            log.exception("checkpoint failed; the next purge retries")

    # ---- outbox rows -------------------------------------------------------------------

    def _outgoing(
        self,
        chat_key: str,
        chat: ChatAddress,
        replies: Sequence[Reply],
        lane: int,
        *,
        quick_exit: bool = False,
    ) -> list[tuple[delivery.Outgoing, Queued]]:
        """A turn's replies as sealed outbox rows, each with what the sender is handed once
        the row has its id: one row per reply, or one quick-exit item carrying them all."""
        if quick_exit:
            body = {"chat": chat, "replies": [reply_to_json(r) for r in replies]}
            item = delivery.Outgoing("quick_exit", LANE_QUICK_EXIT, self._seal_out(chat_key, body))
            return [
                (item, Queued(0, chat_key, LANE_QUICK_EXIT, "quick_exit", chat, tuple(replies)))
            ]
        return [
            (
                delivery.Outgoing(
                    "send",
                    lane,
                    self._seal_out(chat_key, {"chat": chat, "reply": reply_to_json(r)}),
                ),
                Queued(0, chat_key, lane, "send", chat, (r,)),
            )
            for r in replies
        ]

    async def _queue(
        self,
        session: AsyncSession,
        turns: Sequence[Sequence[tuple[delivery.Outgoing, Queued]]],
        now: dt.datetime,
    ) -> list[tuple[Queued, ...]]:
        """Insert the outbox rows of several turns in one statement; returns each turn's
        items with their ids (commit order)."""
        flat = [pair for turn in turns for pair in turn]
        ids = iter(
            await delivery.add_outgoing_many(
                session, [(q.chat_key, item) for item, q in flat], now, self.owner
            )
        )
        return [tuple(replace(q, id=next(ids)) for _item, q in turn) for turn in turns]

    def _seal_out(self, chat_key: str, body: Mapping[str, object]) -> bytes:
        return seal_json(self.secrets.draft_key, "outbox:" + chat_key, body)

    def open_queued(self, row: OutboxItem) -> Queued | None:
        """An outbox row read back after a restart."""
        body = open_json(self.secrets.draft_key, "outbox:" + row.chat_key, row.payload)
        if body is None:
            return None
        if row.kind == "quick_exit":
            raw = body.get("replies") or []
            replies = tuple(reply_from_json(r) for r in raw) if isinstance(raw, list) else ()
        else:
            replies = (reply_from_json(body["reply"]),)
        chat = body["chat"]
        assert isinstance(chat, int | str)
        return Queued(
            row.id, row.chat_key, row.lane, row.kind, chat, replies, attempts=row.attempts
        )
