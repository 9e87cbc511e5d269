"""Where each person is in the conversation, loaded and saved inside a turn's transaction,
for all the chats of a batch of turns at once (one statement each way).

The routing fields are stored in the clear (nothing personal in them); the draft answers are
sealed under the person's own draft key (storage/drafts.py: derived from the server's key and
her messenger id, which only her turn brings), bound to the chat key, and expire with the draft
lifetime.
A stored state whose draft no longer opens (the key changed) loads without its answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.state import ROUTING_FIELDS, ConversationState
from storage import queries
from storage.dialect import aware, conflict_insert
from storage.drafts import open_draft, seal_draft
from storage.models import Conversation


@dataclass(frozen=True)
class Lifetimes:
    state: dt.timedelta  # idle time after which the whole state goes
    draft: dt.timedelta  # idle time after which unfinished answers go


async def load_many(
    session: AsyncSession,
    draft_keys: Mapping[str, bytes],
    now: dt.datetime,
    legacy_key: bytes | None = None,
) -> dict[str, ConversationState]:
    """The stored states of these chats (the keys of `draft_keys`, each with its person's
    draft key) in one statement, by chat key. A chat with no state, or whose state has
    expired, is missing: its turn starts afresh, and `save_many` then overwrites the expired
    row (or the turn deletes it). `legacy_key` opens a draft sealed before drafts had a key
    per person (it is sealed again under hers when the turn saves)."""
    if not draft_keys:
        return {}
    conversations = queries.table(Conversation)
    result = await session.execute(
        select(conversations).where(conversations.c.chat_key.in_(list(draft_keys)))
    )
    states: dict[str, ConversationState] = {}
    for row in result.mappings():
        if aware(row["expires_at"]) <= now:
            continue
        chat_key = row["chat_key"]
        draft = None
        expires = row["draft_expires_at"]
        if expires is None or aware(expires) > now:
            draft = open_draft(draft_keys[chat_key], chat_key, row["draft"])
            if draft is None and legacy_key is not None:
                draft = open_draft(legacy_key, chat_key, row["draft"])
        states[chat_key] = ConversationState.restore({f: row[f] for f in ROUTING_FIELDS}, draft)
    return states


def answered(before: ConversationState | None, after: ConversationState) -> bool:
    """Whether a turn restarts the draft's clock: her answers (or the campaign kept with
    them) changed. Reading screens or moving between questions does not: the screens say
    the answers go a fixed time "after your last answer"."""
    return before is None or (before.answers, before.campaign) != (after.answers, after.campaign)


async def save_many(
    session: AsyncSession,
    states: Sequence[tuple[str, ConversationState]],
    now: dt.datetime,
    draft_keys: Mapping[str, bytes],
    lifetimes: Lifetimes,
    *,
    kept_clock: Collection[str] = (),
) -> None:
    """Write (chat key, state) pairs: an insert, or an update of the row already there
    (expired or not). Each draft is sealed under its person's key. A draft's time runs from
    now, except for the chats in `kept_clock` (no new answer this turn: see `answered`),
    whose stored expiry stays as it was."""
    if not states:
        return
    fresh: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for chat_key, state in states:
        sealed = (
            seal_draft(draft_keys[chat_key], chat_key, state.draft())
            if state.has_draft_part
            else None
        )
        row = {
            "chat_key": chat_key,
            **state.routing(),
            "draft": sealed,
            "draft_expires_at": None if sealed is None else now + lifetimes.draft,
            "updated_at": now,
            "expires_at": now + lifetimes.state,
        }
        (kept if chat_key in kept_clock else fresh).append(row)
    table = Conversation.__table__
    for rows, keep in ((fresh, False), (kept, True)):
        if not rows:
            continue
        stmt = conflict_insert(session, Conversation)
        update = {name: stmt.excluded[name] for name in rows[0] if name != "chat_key"}
        if keep:
            # The stored expiry, while there is a draft; a new one only if none was stored.
            update["draft_expires_at"] = case(
                (stmt.excluded.draft.is_(None), None),
                else_=func.coalesce(table.c.draft_expires_at, stmt.excluded.draft_expires_at),
            )
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["chat_key"], set_=update), rows
        )
