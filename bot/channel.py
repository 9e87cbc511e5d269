"""The seam between the delivery machinery and a messenger.

A channel does three things for the outbox: deliver one reply (returning the message id the
messenger gave it), delete a set of message ids, and acknowledge a button press. It reports
failures in three kinds, because each is handled differently:

* `RetryLater`: the messenger asked us to wait (Telegram's 429 and `retry_after`);
* `MaybeDelivered`: a time-out, a lost connection or a 5xx. The message may have arrived
  anyway, so it is sent again *and* quick exit treats its id as unknown (see `SendGap`);
* `Undeliverable`: the messenger refused for good (blocked bot, bad request). Logged by kind
  and dropped, so one broken chat never holds up anyone else.

Telegram is `bot/telegram.py`; the terminal chat needs none of this (it prints at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flows.replies import Reply

ChatAddress = int | str


class DeliveryError(Exception):
    """Base: `kind` is a short name that is safe to log (never text or ids)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class RetryLater(DeliveryError):
    def __init__(self, kind: str, seconds: float) -> None:
        super().__init__(kind)
        self.seconds = seconds


class MaybeDelivered(DeliveryError):
    pass


class Undeliverable(DeliveryError):
    pass


class Channel(Protocol):
    async def deliver(self, chat: ChatAddress, reply: Reply) -> int:
        """Send one reply; return the id the messenger gave the message."""
        ...

    async def delete(self, chat: ChatAddress, message_ids: Sequence[int]) -> None:
        """Delete these ids (at most 100); ids that are not in the chat are skipped."""
        ...

    async def acknowledge(self, press_id: str) -> None:
        """Stop the spinner on a pressed button."""
        ...
