"""Where one person is in the conversation, loaded and saved inside a turn's transaction.

The routing fields are stored in the clear (nothing personal in them); the draft answers are
sealed with the server's draft key, bound to the chat key, and expire with the draft lifetime.
A stored state whose draft no longer opens (the key changed) loads without its answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flows.state import ROUTING_FIELDS, ConversationState
from storage import queries
from storage.drafts import open_draft, seal_draft
from storage.models import Conversation


@dataclass(frozen=True)
class Lifetimes:
    state: dt.timedelta  # idle time after which the whole state goes
    draft: dt.timedelta  # idle time after which unfinished answers go


@dataclass(frozen=True)
class Loaded:
    row: Conversation | None  # None: no stored state (new, expired or forgotten)
    state: ConversationState | None


async def load(session: AsyncSession, chat_key: str, now: dt.datetime, draft_key: bytes) -> Loaded:
    row = await queries.load_conversation(session, chat_key, now)
    if row is None:
        return Loaded(None, None)
    draft = open_draft(draft_key, chat_key, row.draft)
    state = ConversationState.restore({f: getattr(row, f) for f in ROUTING_FIELDS}, draft)
    return Loaded(row, state)


async def save(
    session: AsyncSession,
    chat_key: str,
    loaded: Loaded,
    state: ConversationState,
    now: dt.datetime,
    draft_key: bytes,
    lifetimes: Lifetimes,
) -> None:
    row = loaded.row if loaded.row is not None else Conversation(chat_key=chat_key)
    for name, value in state.routing().items():
        setattr(row, name, value)
    if state.answers:
        row.draft = seal_draft(draft_key, chat_key, state.draft())
        row.draft_expires_at = now + lifetimes.draft
    else:
        row.draft = None
        row.draft_expires_at = None
    row.updated_at = now
    row.expires_at = now + lifetimes.state
    await queries.save_conversation(session, row)
