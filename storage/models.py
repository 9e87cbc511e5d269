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
    ForeignKey,
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


# ---- the advocates' portal (bot/portal) ------------------------------------------------------
#
# Nothing here lets the server open a request on its own: an advocate's personal private key is
# wrapped under a key derived from her passphrase (Argon2id, the identity-file format of
# storage/keys.py), and the organisation's private key is only ever stored sealed (HPKE) to an
# advocate's personal public key. Tokens, session ids and recovery codes are stored as hashes.


class Advocate(Base):
    """A support worker of one receiving organisation. `login` and the secrets are NULL until
    she completes her one-time set-up link."""

    __tablename__ = "advocates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column(String(120))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # "advocate" (works requests) or "outreach" (campaigns and suppressed counts only: never a
    # request, a key grant or the team). An admin is an advocate with is_admin.
    role: Mapped[str] = mapped_column(String(16), default="advocate", server_default="advocate")
    login: Mapped[str | None] = mapped_column(String(64), unique=True)
    # argon2-cffi PasswordHasher output (argon2id, parameters and salt inside).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # ChaCha20-Poly1305 under the portal's server key, bound to the advocate id.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The highest TOTP time-step accepted so far: a code is good once (replay refused).
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Her personal HPKE key pair: the public key in the clear, the private key as a
    # storage/keys.py identity document under her passphrase.
    public_key: Mapped[str | None] = mapped_column(Text)
    # HMAC of the public key under the portal's server key (kept outside the database): a
    # key swapped in the database is refused before an admin grants access to it.
    public_key_mac: Mapped[str | None] = mapped_column(String(64))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    set_up_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SetupLink(Base):
    """A one-time set-up link: only the SHA-256 of its random token is stored. The TOTP secret
    offered on the set-up page is kept here (sealed) until the set-up completes."""

    __tablename__ = "setup_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    advocate_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("advocates.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    pending_totp: Mapped[bytes | None] = mapped_column(LargeBinary)


class RecoveryCode(Base):
    """A single-use code that stands in for a TOTP code; stored as a keyed hash."""

    __tablename__ = "recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    advocate_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("advocates.id", ondelete="CASCADE"), index=True
    )
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AdvocateSession(Base):
    """A server-side portal session: the cookie carries the random id, the table its SHA-256.
    The unwrapped organisation key lives only in the serving process's memory."""

    __tablename__ = "advocate_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    advocate_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("advocates.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class KeyGrant(Base):
    """One organisation private key, HPKE-sealed to one advocate's personal public key."""

    __tablename__ = "key_grants"

    advocate_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("advocates.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    granted_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RequestWork(Base):
    """Who holds a request (the lease) and what was recorded, apart from the sealed request so
    that the bot's own tables stay as they are. Goes with the request (retention, /forget)."""

    __tablename__ = "request_work"

    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("contact_requests.id", ondelete="CASCADE"), primary_key=True
    )
    holder_id: Mapped[str | None] = mapped_column(String(32), index=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # "contacted", "not_reached" or "closed"; a reason from bot/portal/answers.py CLOSE_REASONS.
    outcome: Mapped[str | None] = mapped_column(String(32))
    close_reason: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CaseNote(Base):
    """An advocate's note on a request, HPKE-sealed to the organisation's current pinned key
    (the key new requests go to), bound to the request. In the clear only the author's id, the
    date and the key id: the text (and its length, to within the sealing's padding) is inside
    the blob. Goes with the request (ON DELETE CASCADE: retention) and on withdrawal."""

    __tablename__ = "case_notes"

    # Autoincrement: the order notes were written in, whatever the clock says.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("contact_requests.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class LoginThrottle(Base):
    """Failed logins per account and per address (both keyed hashes)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """The portal's audit log: who (an advocate id), what, when; never personal data. Each
    entry's `entry_hash` is an HMAC over its content and `prev_hash`: an altered, inserted or
    deleted entry breaks the chain (storage/audit.py)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    organisation: Mapped[str | None] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class Campaign(Base):
    """An outreach campaign: an opaque random code and nothing else about its audience (a
    team keeps its own note of where it used a code)."""

    __tablename__ = "campaigns"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class OutreachCount(Base):
    """Counters only, per campaign, language and ISO week ("YYYY-Www"): no per-person row, no
    time finer than the week, nothing that links a count to a person or a request."""

    __tablename__ = "outreach_counts"

    campaign: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    iso_week: Mapped[str] = mapped_column(String(8), primary_key=True)
    started: Mapped[int] = mapped_column(Integer, default=0)
    requested: Mapped[int] = mapped_column(Integer, default=0)
    picked_up: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)


# The campaign of a count that came in by no outreach link (codes are letters and digits).
NO_CAMPAIGN = "-"
# The campaign of a portal count (picked up, closed, an outcome) whose sealed request could
# not be opened at that moment, so its campaign is not known: never guessed.
UNKNOWN_CAMPAIGN = "?"


class OutcomeCount(Base):
    """How requests ended, per campaign (NO_CAMPAIGN for none), language, ISO week of the
    outcome and outcome ("contacted", "not_reached", "closed:<reason>"): counters only."""

    __tablename__ = "outcome_counts"

    campaign: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    iso_week: Mapped[str] = mapped_column(String(8), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class PickupTime(Base):
    """How long requests waited to be picked up, as counters per language, ISO week of the
    pick-up and a coarse bucket ("<1h", "1-4h", ...): the median is reported as a bucket, and
    no row holds one request's times."""

    __tablename__ = "pickup_times"

    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    iso_week: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
