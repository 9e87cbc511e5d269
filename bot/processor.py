"""Per-chat ordering of concurrent updates.

Rule: updates of *different* chats run concurrently; updates of *one* chat run one at a time, in
the order PTB received them. With plain ``concurrent_updates(True)`` a second message from the
same person can be handled while the first is still running, see the old conversation state and
be lost (seen in PTB, and in aiogram as issue #1317). Handlers load state only once they hold
their chat's turn, so each one sees the state its predecessor saved.

Why arrival order is kept (checked against PTB 22.8's ``Application`` and CPython 3.11.7's
``asyncio.locks``):

* ``Application`` takes updates off ``update_queue`` one by one and, for each, creates a task
  that calls :meth:`BaseUpdateProcessor.process_update`; tasks start in creation order.
* ``process_update`` first takes a slot of the ``max_concurrent_updates`` semaphore. CPython's
  ``Semaphore`` is FIFO and does not let a newcomer overtake a queued waiter, so the tasks reach
  :meth:`PerChatUpdateProcessor.do_process_update` in arrival order.
* ``do_process_update`` registers itself and queues on the chat's ``asyncio.Lock`` without
  awaiting anything in between, and ``Lock`` is FIFO without overtaking too. So no later task
  can get in front of an earlier one of the same chat.

Known limits:

* Only blocking handlers are ordered. A handler registered with ``block=False`` runs in a task
  of its own, outside the lock.
* A task queued behind its chat's lock still holds one of the ``max_concurrent_updates``
  slots (PTB's ``process_update`` is ``@final`` and takes the slot first). A single chat with
  a backlog larger than the limit therefore stalls all other chats until its backlog shrinks;
  keep the limit well above any plausible per-chat burst.
* This orders updates within one process. With several processes (DESIGN.md, "Growing past
  one machine") the storage layer adds a transaction-scoped PostgreSQL advisory lock on the
  chat's keyed hash; this lock stays, so that a process does not pile its own updates onto
  that database lock.
* The ordering argument rests on CPython's lock semantics (read in 3.11.7);
  ``tests/unit/bot/test_processor.py`` runs with a small limit so that a change there shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Final

from telegram import Update
from telegram.ext import BaseUpdateProcessor

__all__ = ["NO_CHAT", "ChatKey", "PerChatUpdateProcessor", "chat_key"]

ChatKey = int | None
"""A chat id, a user id, or ``NO_CHAT``.

A private chat's id equals its user's id, so a person's chat updates and their chat-less ones
(inline queries, for instance) deliberately share one turn.
"""

NO_CHAT: Final[ChatKey] = None
"""The one shared key for updates that name neither a chat nor a user."""


def chat_key(update: object) -> ChatKey:
    """The key whose updates must be handled one at a time, in order."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return NO_CHAT


class _Turn:
    """A chat's lock plus how many tasks hold it or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handle updates concurrently across chats and strictly in order within a chat.

    Use it as ``ApplicationBuilder().concurrent_updates(PerChatUpdateProcessor(256))``.

    A chat's lock exists only while some task holds or waits for it, so the table never grows
    beyond the number of chats with work in flight.

    Args:
        max_concurrent_updates: The most updates handled (or waiting for their chat's turn) at
            once, across all chats. Must be at least 2 for PTB to use concurrency at all.
    """

    __slots__ = ("_turns",)

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._turns: dict[ChatKey, _Turn] = {}

    @property
    def active_chats(self) -> int:
        """How many chats have an update being handled or waiting (for metrics and tests)."""
        return len(self._turns)

    async def initialize(self) -> None:
        """Nothing to set up: locks are made on demand."""

    async def shutdown(self) -> None:
        """Nothing to release: locks vanish with their last user."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Await ``coroutine`` once every earlier update of the same chat has finished."""
        key = chat_key(update)
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        started = False
        try:
            # No await may come before acquire(): queueing on the lock in the same step as
            # arriving here is what keeps arrival order.
            async with turn.lock:
                started = True
                await coroutine
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]
            if not started and isinstance(coroutine, Coroutine):
                # Cancelled while waiting: close it so Python does not warn that a coroutine
                # was never awaited.
                coroutine.close()
