"""One turn of a conversation, for any channel: lock, load, step, perform effects, save.

Rules (STYLE.md, "one update, one transaction"):
1. Claim the update id and take the per-person lock *before* reading state, so a redelivered
   or concurrent update can neither run twice nor see stale state.
2. Effects run inside the turn and report back as events; replies are sent only after the
   commit that makes them true.
3. A contact request is submitted in two commits: first the conversation moves to
   `submitting`, then the sealed request and the `done` state commit together. A crash between
   them leaves a conversation in `submitting`, which the engine answers with "it was NOT
   sent"; it can never leave an acknowledged request that is not stored.
Nothing here logs message text, answers or ids: only step names and counts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows.effects import CheckStatus, DeleteConversation, Effect, ForgetMe, SubmitRequest
from flows.engine import Context, Outcome, initial_state, step
from flows.events import Event, Forgotten, RequestFailed, RequestStored, StatusChecked
from flows.replies import Reply
from flows.state import ROUTING_FIELDS, ConversationState
from storage import queries
from storage.db import checkpoint, transaction
from storage.drafts import open_draft, seal_draft
from storage.identity import keyed_hash
from storage.models import Conversation
from storage.requests import NewRequest, reference_hash, store_request

log = logging.getLogger("safebot.service")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ServerSecrets:
    user_hash_key: bytes
    draft_key: bytes
    lookup_key: bytes


@dataclass(frozen=True)
class Turn:
    replies: tuple[Reply, ...] = ()
    chat_key: str = ""
    delete_message_ids: tuple[int, ...] = ()
    duplicate: bool = False
    request_stored: bool = False


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
    ) -> None:
        self.ctx = ctx
        self.engine = engine
        self.sessions = sessions
        self.secrets = secrets
        self.state_ttl = state_ttl
        self.draft_ttl = draft_ttl
        self._clock = clock

    def clock(self) -> dt.datetime:
        # Always UTC: SQLite keeps no offset, and sealed requests bind their creation time.
        return self._clock().astimezone(dt.UTC)

    def chat_key(self, channel: str, user_id: str) -> str:
        return keyed_hash(self.secrets.user_hash_key, f"chat:{channel}", user_id)

    def owner_key(self, channel: str, user_id: str) -> str:
        return keyed_hash(self.secrets.user_hash_key, f"owner:{channel}", user_id)

    async def handle(
        self,
        channel: str,
        user_id: str,
        event: Event,
        *,
        update_id: int | None = None,
        incoming_message_id: int | None = None,
    ) -> Turn:
        chat_key = self.chat_key(channel, user_id)
        now = self.clock()
        incoming = [incoming_message_id] if incoming_message_id is not None else []
        async with transaction(self.sessions) as session:
            if update_id is not None and not await queries.claim_update(session, update_id, now):
                return Turn(chat_key=chat_key, duplicate=True)
            await queries.lock_chat(session, chat_key)
            row = await queries.load_conversation(session, chat_key, now)
            state = self._restore(row, chat_key)
            outcome = step(self.ctx, state, event)
            log.info(
                "turn event=%s step=%s->%s", type(event).__name__, state.step, outcome.state.step
            )
            effect = outcome.effects[0] if outcome.effects else None

            if isinstance(effect, SubmitRequest):
                # Commit 1 of 2: the conversation is now visibly "submitting".
                await self._save(session, chat_key, row, outcome.state, now, incoming)
            else:
                turn = await self._finish(
                    session, chat_key, user_id, channel, row, outcome, now, incoming
                )
        if isinstance(effect, SubmitRequest):
            return await self._submit(chat_key, channel, user_id, outcome, effect)
        if isinstance(effect, ForgetMe | DeleteConversation) and self.engine is not None:
            # Deleted rows and drafts must leave the disk now, not at the next purge.
            await checkpoint(self.engine)
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

    # ---- internals ---------------------------------------------------------------------

    def _restore(self, row: Conversation | None, chat_key: str) -> ConversationState:
        if row is None:
            return initial_state(self.ctx.flow)
        draft = open_draft(self.secrets.draft_key, chat_key, row.draft)
        return ConversationState.restore({f: getattr(row, f) for f in ROUTING_FIELDS}, draft)

    async def _finish(
        self,
        session: AsyncSession,
        chat_key: str,
        user_id: str,
        channel: str,
        row: Conversation | None,
        outcome: Outcome,
        now: dt.datetime,
        incoming: list[int],
    ) -> Turn:
        replies = list(outcome.replies)
        to_delete: tuple[int, ...] = ()
        state = outcome.state
        forget = False
        for effect in outcome.effects:
            if isinstance(effect, DeleteConversation):
                # The ids stay recorded until the channel reports them deleted: if Telegram's
                # delete fails, the next quick exit tries again.
                await queries.remember_messages(session, chat_key, incoming, now)
                to_delete = tuple(await queries.chat_message_ids(session, chat_key, now))
                incoming = []
            follow = await self._perform(session, effect, chat_key, channel, user_id, now)
            if follow is not None:
                after = step(self.ctx, state, follow)
                replies.extend(after.replies)
                state = after.state
            forget = forget or isinstance(effect, ForgetMe)
        if forget:
            await queries.delete_conversation(session, chat_key)
        else:
            await self._save(session, chat_key, row, state, now, incoming)
        return Turn(tuple(replies), chat_key, delete_message_ids=to_delete)

    async def _perform(
        self,
        session: AsyncSession,
        effect: Effect,
        chat_key: str,
        channel: str,
        user_id: str,
        now: dt.datetime,
    ) -> Event | None:
        if isinstance(effect, CheckStatus):
            status = await queries.status_by_reference(
                session, reference_hash(self.secrets.lookup_key, effect.code)
            )
            return StatusChecked(status)
        if isinstance(effect, ForgetMe):
            result = await queries.forget_requests(session, self.owner_key(channel, user_id), now)
            log.info("forget deleted=%d withdrawn=%d", result.deleted, result.withdrawn)
            return Forgotten(withdrawn=result.withdrawn > 0)
        return None  # DeleteConversation is the channel's job, after the commit

    async def _submit(
        self, chat_key: str, channel: str, user_id: str, first: Outcome, effect: SubmitRequest
    ) -> Turn:
        deployment = self.ctx.deployment
        org = deployment.organisation(effect.organisation or deployment.default_organisation)
        try:
            async with transaction(self.sessions) as session:
                now = self.clock()
                await queries.lock_chat(session, chat_key)
                row = await queries.load_conversation(session, chat_key, now)
                if row is None or row.step != first.state.step or row.seq != first.state.seq:
                    # Another process took this person's next update between the two commits
                    # and has already told them the request was not sent: store nothing.
                    log.warning("submission superseded by a newer turn; nothing stored")
                    return Turn(first.replies, chat_key)
                stored = await store_request(
                    session,
                    NewRequest(
                        answers=effect.answers,
                        language=effect.language,
                        urgent=effect.urgent,
                        organisation=org.id,
                    ),
                    owner_key=self.owner_key(channel, user_id),
                    lookup_key=self.secrets.lookup_key,
                    now=now,
                    retention=dt.timedelta(days=deployment.retention_days),
                    notify=org.notify_chat_id is not None,
                )
                done = step(self.ctx, first.state, RequestStored(stored.reference))
                await self._save(session, chat_key, row, done.state, now, [])
        except Exception:
            log.exception("request could not be stored")
            return await self._submit_failed(chat_key, first)
        # Commit 2 of 2 has happened: only now may the victim read "received". Nothing after
        # this point may turn it into a failure.
        log.info("request stored urgent=%s", effect.urgent)
        if self.engine is not None:
            try:
                # The draft's old versions must not outlive the request in the WAL.
                await checkpoint(self.engine)
            except Exception:
                log.exception("checkpoint after a stored request failed; the next purge retries")
        return Turn((*first.replies, *done.replies), chat_key, request_stored=True)

    async def _submit_failed(self, chat_key: str, first: Outcome) -> Turn:
        failed = step(self.ctx, first.state, RequestFailed())
        try:
            async with transaction(self.sessions) as session:
                now = self.clock()
                await queries.lock_chat(session, chat_key)
                row = await queries.load_conversation(session, chat_key, now)
                # Only if no newer turn has moved on in the meantime.
                if row is not None and (row.step, row.seq) == (first.state.step, first.state.seq):
                    await self._save(session, chat_key, row, failed.state, now, [])
        except Exception:
            # The victim is still told it failed; the stored `submitting` state says so
            # again on their next message.
            log.exception("could not record the failed submission")
        return Turn((*first.replies, *failed.replies), chat_key)

    async def _save(
        self,
        session: AsyncSession,
        chat_key: str,
        row: Conversation | None,
        state: ConversationState,
        now: dt.datetime,
        incoming: list[int],
    ) -> None:
        if row is None:
            row = Conversation(chat_key=chat_key)
        for name, value in state.routing().items():
            setattr(row, name, value)
        if state.answers:
            row.draft = seal_draft(self.secrets.draft_key, chat_key, state.draft())
            row.draft_expires_at = now + self.draft_ttl
        else:
            row.draft = None
            row.draft_expires_at = None
        row.updated_at = now
        row.expires_at = now + self.state_ttl
        await queries.remember_messages(session, chat_key, incoming, now)
        await queries.save_conversation(session, row)
