"""Pacing of outgoing messages and retrying of Telegram's flood-control answers.

Rule 1: **a reply is never dropped silently.** When Telegram answers 429 with
``retry_after``, the call waits exactly that long and is made again, up to ``max_retries``
times; if it still fails, ``RetryAfter`` is raised to the caller, who can tell the person.
PTB's ``AIORateLimiter`` only retries when ``max_retries`` is set (the default is 0).

Rule 2: **send below Telegram's limits rather than bounce off them.** Methods that post or
change a message are paced by a :class:`SendBudget`: about 30 messages a second overall and
about one a second per private chat with short bursts tolerated (20 a minute per group).
Methods that must be fast are not paced: ``answerCallbackQuery`` (the person's client shows a
spinner until it is answered) and ``deleteMessage(s)`` (the quick exit must not queue behind
replies).

Rule 3: **the budget is shareable.** Telegram counts per bot, not per process. One process
uses :class:`InMemorySendBudget`; several ``safebot run`` processes behind a reverse proxy (see
DESIGN.md, "Growing past one machine") must share one budget, e.g. in PostgreSQL, by passing
another :class:`SendBudget` to :class:`RetryingRateLimiter`. Nothing else changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Final, Protocol

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

__all__ = [
    "PACED_METHODS",
    "Bucket",
    "InMemorySendBudget",
    "RetryingRateLimiter",
    "SendBudget",
    "retry_after_seconds",
]

_LOGGER = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
ApiResult = bool | dict[str, Any] | list[dict[str, Any]]

PACED_METHODS: Final[frozenset[str]] = frozenset(
    name.lower()
    for name in (
        "sendMessage",
        "sendPhoto",
        "sendAudio",
        "sendDocument",
        "sendVideo",
        "sendAnimation",
        "sendVoice",
        "sendVideoNote",
        "sendPaidMedia",
        "sendMediaGroup",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendChecklist",
        "sendDice",
        "sendSticker",
        "sendInvoice",
        "sendGame",
        "forwardMessage",
        "forwardMessages",
        "copyMessage",
        "copyMessages",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "editMessageLiveLocation",
        "stopMessageLiveLocation",
        "editMessageChecklist",
        "stopPoll",
    )
)
"""Bot API methods (lower-cased) that count against Telegram's message limits."""


class SendBudget(Protocol):
    """Permission to send one message, shared by everything that sends for this bot.

    ``acquire`` returns once the message may be sent, waiting as long as needed. An
    implementation backed by PostgreSQL lets several processes share Telegram's per-bot limits.
    """

    async def acquire(self, chat_id: int | str | None) -> None:
        """Wait until one more message to ``chat_id`` (None: no particular chat) is allowed."""
        ...


class _Bucket:
    """A token bucket in GCRA form: one timestamp instead of a token count and a refill time.

    ``tat`` (theoretical arrival time) is when the bucket would be full again if nothing more
    were sent. A send is allowed once ``now >= tat - tolerance``; each send pushes ``tat`` on by
    one interval. Reserving is synchronous, so concurrent callers get distinct, FIFO slots.
    """

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = float("-inf")

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until a send would be allowed, without claiming it."""
        return max(0.0, self.tat - self.tolerance - now)

    def reserve(self, now: float) -> float:
        """Claim the next slot; return how many seconds from ``now`` it starts."""
        start = max(now, self.tat - self.tolerance)
        self.tat = max(self.tat, now) + self.interval
        return start - now

    def idle(self, now: float) -> bool:
        """Full again, i.e. indistinguishable from a new bucket."""
        return self.tat <= now


class InMemorySendBudget:
    """A :class:`SendBudget` for a single process: token buckets in a dict.

    Each message needs a slot from its chat's bucket first (private chats: ``chat_burst`` at
    once, then ``chat_rate`` a second; groups and channels, i.e. negative or ``@name`` ids:
    ``group_burst`` then ``group_rate``), then from the overall bucket. Taking the overall slot
    only once the chat's slot is due keeps a chat with a backlog from reserving overall
    capacity that other chats could use now.

    A chat's bucket is forgotten once it has refilled, checked at most every
    ``sweep_interval`` seconds, so the table holds only recently active chats.

    Args:
        overall_rate: Messages a second across all chats.
        overall_burst: Messages allowed at once across all chats.
        chat_rate: Messages a second to one private chat.
        chat_burst: Messages allowed at once to one private chat.
        group_rate: Messages a second to one group or channel.
        group_burst: Messages allowed at once to one group or channel.
        sweep_interval: Seconds between sweeps for idle buckets.
        clock: Monotonic time in seconds (injectable for tests).
        sleep: Async sleep (injectable for tests).
    """

    __slots__ = (
        "_buckets",
        "_chat_burst",
        "_chat_rate",
        "_clock",
        "_group_burst",
        "_group_rate",
        "_last_sweep",
        "_overall",
        "_sleep",
        "_sweep_interval",
    )

    def __init__(
        self,
        *,
        overall_rate: float = 30.0,
        overall_burst: int = 1,
        chat_rate: float = 1.0,
        chat_burst: int = 3,
        group_rate: float = 20 / 60,
        group_burst: int = 1,
        sweep_interval: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for rate in (overall_rate, chat_rate, group_rate):
            if rate <= 0:
                raise ValueError("rates must be positive")
        for burst in (overall_burst, chat_burst, group_burst):
            if burst < 1:
                raise ValueError("bursts must be at least 1")
        self._overall = _Bucket(overall_rate, overall_burst)
        self._chat_rate = chat_rate
        self._chat_burst = chat_burst
        self._group_rate = group_rate
        self._group_burst = group_burst
        self._sweep_interval = sweep_interval
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[int | str, _Bucket] = {}
        self._last_sweep = clock()

    @property
    def tracked_chats(self) -> int:
        """How many chats currently have a bucket (for metrics and tests)."""
        return len(self._buckets)

    async def acquire(self, chat_id: int | str | None) -> None:
        """Wait for the chat's slot, then for an overall slot."""
        key = _normalise_chat_id(chat_id)
        if key is not None:
            now = self._clock()
            self._sweep(now)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = self._new_bucket(key)
            delay = bucket.reserve(now)
            if delay > 0:
                await self._sleep(delay)
        delay = self._overall.reserve(self._clock())
        if delay > 0:
            await self._sleep(delay)

    def _new_bucket(self, key: int | str) -> _Bucket:
        if isinstance(key, str) or key < 0:
            return _Bucket(self._group_rate, self._group_burst)
        return _Bucket(self._chat_rate, self._chat_burst)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self._sweep_interval:
            return
        self._last_sweep = now
        for key in [k for k, bucket in self._buckets.items() if bucket.idle(now)]:
            del self._buckets[key]


Bucket = _Bucket


def _normalise_chat_id(chat_id: object) -> int | str | None:
    """One key per chat whether PTB was given ``123`` or ``"123"``."""
    if chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id)
    try:
        return int(text)
    except ValueError:
        return text


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait.

    PTB 22.2+ stores a ``timedelta`` but, unless ``PTB_TIMEDELTA`` is set, returns an ``int``
    from ``retry_after`` with a deprecation warning; later versions return the ``timedelta``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: int | float | timedelta = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class RetryingRateLimiter(BaseRateLimiter[int]):
    """Pace message-sending calls with a :class:`SendBudget` and retry on ``RetryAfter``.

    Use it as ``ApplicationBuilder().rate_limiter(RetryingRateLimiter())``. PTB never passes
    ``getUpdates`` through a rate limiter; every other call comes here. All calls are retried
    on ``RetryAfter``; only methods in :data:`PACED_METHODS` are paced, and each attempt
    (retries included) takes a fresh slot from the budget, since Telegram counts it as a send.

    ``rate_limit_args`` (``bot.send_message(..., rate_limit_args=n)``) overrides
    ``max_retries`` for one call.

    Other errors are not handled here, as ``BaseRateLimiter`` requires: a timed-out send may
    already have been delivered, so repeating it is the caller's decision.

    Args:
        budget: The pacing budget; an :class:`InMemorySendBudget` with default limits when
            omitted.
        max_retries: How many times a call is repeated after ``RetryAfter`` before that error
            is raised.
        sleep: Async sleep used for ``retry_after`` waits (injectable for tests).
    """

    __slots__ = ("_budget", "_max_retries", "_sleep")

    def __init__(
        self,
        budget: SendBudget | None = None,
        *,
        max_retries: int = 5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self._budget: SendBudget = budget if budget is not None else InMemorySendBudget()
        self._max_retries = max_retries
        self._sleep = sleep

    @property
    def budget(self) -> SendBudget:
        """The budget outgoing messages are paced by."""
        return self._budget

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> ApiResult:
        """Make the call, paced and retried; see ``BaseRateLimiter.process_request``."""
        max_retries = self._max_retries if rate_limit_args is None else rate_limit_args
        paced = endpoint.lower() in PACED_METHODS
        chat_id = data.get("chat_id")
        retries = 0
        while True:
            if paced:
                await self._budget.acquire(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if retries >= max_retries:
                    _LOGGER.warning(
                        "Flood control on %s: giving up after %d retries", endpoint, retries
                    )
                    raise
                retries += 1
                delay = retry_after_seconds(exc)
                _LOGGER.info(
                    "Flood control on %s: retry %d of %d in %.1f s",
                    endpoint,
                    retries,
                    max_retries,
                    delay,
                )
                await self._sleep(delay)
