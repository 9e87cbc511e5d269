"""Tables. Nothing here holds a Telegram id, a name, a phone number or message text in the
clear: people are keyed hashes, drafts are encrypted with the server's draft key, and
contact requests are HPKE envelopes only the receiving organisation can open.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flows.kinds import RequestStatus


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Conversation(Base):
    """Where one person is in the conversation. Keyed by HMAC(user-hash key, Telegram id)."""

    __tablename__ = "conversations"

    chat_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    editing: Mapped[bool] = mapped_column(Boolean, default=False)
    flow_version: Mapped[int] = mapped_column(Integer, default=1)
    # ChaCha20-Poly1305 under the draft key, bound to chat_key; NULL when there is no draft.
    draft: Mapped[bytes | None] = mapped_column(LargeBinary)
    draft_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ChatMessage(Base):
    """Ids of the messages in one person's chat, so quick exit can delete them. Kept apart from
    the conversation state for Telegram's 48-hour deletion window: quick exit must still work
    after the state itself has expired or been forgotten."""

    __tablename__ = "chat_messages"

    chat_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ProcessedUpdate(Base):
    """Telegram redelivers webhook updates: a unique update id makes handling idempotent
    across processes."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class ContactRequest(Base):
    """A sealed contact request. In the clear only what routing and triage need."""

    __tablename__ = "contact_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # A `flows.kinds.RequestStatus` value, stored as a plain string (no database enum type).
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.NEW, index=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    key_id: Mapped[str] = mapped_column(String(64))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    # HMAC of the reference code the victim holds; the code itself is never stored.
    reference_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC of the Telegram id under a separate label, so /forget finds the victim's requests.
    owner_key: Mapped[str] = mapped_column(String(64), index=True)
    picked_up_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delete_after: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class RemovedRequest(Base):
    """A request deleted on the victim's wish or by the purge leaves only this: the keyed hash
    of its reference number, so that `/status` can say it was withdrawn or deleted instead of
    "check the number". Nothing else: no organisation, no owner, the date only to the day."""

    __tablename__ = "removed_requests"

    reference_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    forget_after: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class OrganisationKey(Base):
    """Public keys of receiving organisations. Several may be active (rotation): new requests
    use the newest, old requests open with the key named in their envelope."""

    __tablename__ = "organisation_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64), index=True)
    suite: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Notice(Base):
    """Outbox of neutral "new request" notices to an organisation's Telegram group. Written in
    the request's transaction so a crash cannot lose one; sent after commit."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed sends so far; a notice that keeps failing (bot removed from the group) must not
    # hold back the others, and is dropped after MAX_NOTICE_ATTEMPTS.
    attempts: Mapped[int] = mapped_column(Integer, default=0)


Index("ix_notices_unsent", Notice.sent_at, Notice.id)


class InboxUpdate(Base):
    """An update stored before Telegram is told it arrived (durable inbox). The update is
    sealed under the server's draft key (it carries text, names and ids); the row is deleted
    in the same transaction as the turn that handles it."""

    __tablename__ = "inbox"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_key: Mapped[str] = mapped_column(String(64), index=True)
    # 0 quick exit, 1 emergency, 2 everything else: served first across people.
    lane: Mapped[int] = mapped_column(Integer, default=2)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class OutboxItem(Base):
    """A reply or a quick exit, committed with the turn that made it and delivered afterwards
    (durable outbox). The payload (chat id, text, buttons) is sealed under the draft key and
    the row is deleted once Telegram confirms delivery."""

    __tablename__ = "outbox"
    # Ids are never reused (SQLite would reuse the highest after a delete): the sender tells
    # items apart by id, and a quick exit must not look like the reply it replaced.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_key: Mapped[str] = mapped_column(String(64))
    lane: Mapped[int] = mapped_column(Integer, default=2)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # The process delivering it, while its lease runs; an expired lease (the process died)
    # lets another process take the item over.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)


Index("ix_outbox_chat", OutboxItem.chat_key, OutboxItem.id)


class SendGap(Base):
    """A send whose answer never came back: Telegram may have delivered it, so quick exit
    deletes every id between the chat's known ids around it (`after_id` < id < `before_id`;
    `before_id` is filled in by the next id the chat learns)."""

    __tablename__ = "send_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat_key: Mapped[str] = mapped_column(String(64), index=True)
    after_id: Mapped[int] = mapped_column(BigInteger)
    before_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class SendBudget(Base):
    """Telegram's send limits are per bot, not per process: with several processes on one
    PostgreSQL, each send reserves its slot here (GCRA: `tat` is when the bucket would be full
    again, in seconds since the epoch). One row for the whole bot and one per recent chat."""

    __tablename__ = "send_budget"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tat: Mapped[float] = mapped_column(Float)
