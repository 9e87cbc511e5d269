"""The outbox sender: delivers committed replies fairly, within Telegram's limits, and never
drops one silently.

Scheduling rules:

1. **Per-person order.** A chat's items go out one at a time, in the order they were committed.
2. **Lanes first.** Across people, quick exit (lane 0) goes before emergency screens (lane 1),
   which go before everything else (lane 2).
3. **Fair within a lane.** Among ready chats the one served longest ago goes first, so a
   person with a backlog never delays anyone else's first reply.
4. **Telegram's limits.** About 30 messages a second overall and, per private chat, about one
   a second sustained with a short burst (a GCRA bucket each). Quick exit is not held back
   by either: it deletes first and sends one neutral line.

Failures (see `bot.channel`): `RetryLater` waits as long as asked; `MaybeDelivered` records a
send gap (quick exit must delete an id nobody knows) and retries with backoff;
`Undeliverable` is logged by kind and dropped. An item is deleted from the outbox in the same
transaction that records its message id, so after a crash only the unconfirmed ones are sent
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channel import Channel, MaybeDelivered, RetryLater, Undeliverable
from bot.ratelimit import Bucket
from bot.service import Queued
from storage import delivery, queries
from storage.db import transaction
from storage.models import OutboxItem

log = logging.getLogger("safebot.outbox")

DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
MAX_GAP_IDS = 5_000  # ids tried per unknown send; ids are not consecutive in a chat
MAX_ATTEMPTS = 12  # about five minutes of backoff before a reply is given up, loudly
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
# Quick exit is retried sooner (she may be watched), and each deletion is retried in place:
# deleting is safe to repeat, and one failed batch must not redo the whole quick exit.
QUICK_EXIT_BACKOFF_MAX = 4.0
DELETE_TRIES, DELETE_RETRY_START = 5, 0.2
FLUSH_DELAY = 0.01  # seconds deliveries wait to be written together
OVERALL_TOLERANCE = 0.5  # of one interval, in the overall buckets (see OutboxSender)


@dataclass
class _Chat:
    queue: deque[Queued] = field(default_factory=deque)
    bucket: Bucket | None = None
    served: float = float("-inf")
    not_before: float = 0.0
    busy: bool = False
    queued: bool = False  # has a live entry in the ready heap
    gen: int = 0
    timer: asyncio.TimerHandle | None = None
    # Items a quick exit took off the outbox while they were in flight: never retried.
    superseded: set[int] = field(default_factory=set)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboxSender:
    def __init__(
        self,
        channel: Channel,
        sessions: async_sessionmaker[AsyncSession],
        *,
        overall_rate: float = 30.0,
        chat_rate: float = 1.0,
        chat_burst: int = 3,
        max_in_flight: int = 32,
        owner: str = "",
        shared: bool = False,
        clock: Callable[[], float] = time.monotonic,
        utc: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.channel = channel
        self.sessions = sessions
        # `owner` names this process on the items it delivers; `shared` (PostgreSQL) means
        # other processes may deliver to the same chats, so order is checked in the database.
        self.owner = owner
        self.shared = shared
        self.overall_rate = overall_rate
        self.chat_rate = chat_rate
        self.chat_burst = chat_burst
        self.max_in_flight = max_in_flight
        self._overall = Bucket(overall_rate, 1)
        # A send released late (the loop was busy) must not push every later one back too:
        # with no tolerance each late wake-up is lost for good, and over a burst of 2,000
        # first replies they added up to seconds. Half an interval absorbs that and still
        # allows no more sends in any second than none would (floor((1 s + I/2) / I) + 1).
        self._overall.tolerance = OVERALL_TOLERANCE / overall_rate
        self._clock = clock
        self._utc = utc
        self._chats: dict[str, _Chat] = {}
        self._heap: list[tuple[int, float, int, int, str]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._open_row: Callable[[OutboxItem], Queued | None] | None = None
        self._deliveries: list[tuple[int, str, list[int]]] = []
        self._delivered_chats: dict[str, int] = {}  # chats with deliveries not yet written
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        # Items waiting for their cross-process check (shared), and the task running checks.
        self._checks: list[tuple[Queued, asyncio.Future[tuple[int | None, float]]]] = []
        self._checker: asyncio.Task[None] | None = None
        self.abandoned = 0  # for tests and health: replies given up after every retry

    # ---- feeding ---------------------------------------------------------------------

    def submit(self, items: Iterable[Queued]) -> None:
        """Committed outbox rows to deliver (in commit order)."""
        for item in items:
            chat = self._chats.get(item.chat_key)
            if chat is None:
                chat = self._chats[item.chat_key] = _Chat()
            if item.kind == "quick_exit":
                # The turn already deleted the waiting rows; forget them here too. A send
                # already in flight finishes and is deleted by this quick exit's range.
                keep = [chat.queue[0]] if chat.busy and chat.queue else []
                chat.superseded.update(q.id for q in keep)
                chat.queue = deque(keep)
            if any(q.id == item.id for q in chat.queue):
                continue
            # In id order (commit order), but never in front of the item in flight: items
            # taken over from a dead process may be older than what this one holds.
            index = len(chat.queue)
            while index > (1 if chat.busy else 0) and chat.queue[index - 1].id > item.id:
                index -= 1
            chat.queue.insert(index, item)
            self._idle.clear()
            if not chat.busy:
                self._make_ready(item.chat_key, chat)

    async def load(self, open_row: Callable[[OutboxItem], Queued | None]) -> int:
        """Start-up (and every lease period when shared): take over what was committed but
        not delivered, by the last run of this process or by one that died."""
        self._open_row = open_row
        async with transaction(self.sessions) as session:
            rows = await delivery.claim_outbox(
                session, self.owner, self._utc(), everything=not self.shared
            )
        items = [q for q in (open_row(r) for r in rows) if q is not None]
        if items:
            # Any of them may have been sent just before the last process died, under an id
            # nobody wrote down: quick exit must delete above the ids known now.
            async with transaction(self.sessions) as session:
                for chat_key in {q.chat_key for q in items}:
                    now = self._utc()
                    await delivery.open_gap(session, chat_key, now, known_before=now)
        self.submit(items)
        unreadable = len(rows) - len(items)
        if unreadable:
            log.warning("%d outbox items sealed under an old key are dropped", unreadable)
            async with transaction(self.sessions) as session:
                known = {q.id for q in items}
                for r in rows:
                    if r.id not in known:
                        await delivery.abandon(session, r.id)
        return len(items)

    async def wait_idle(self) -> None:
        """Until nothing is queued or in flight (for tests and a clean stop)."""
        await self._idle.wait()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="safebot-outbox")
        self._lease_task = asyncio.create_task(self._leases(), name="safebot-outbox-leases")

    async def _leases(self) -> None:
        """Keep this process's claim on its items alive; take over items whose process died."""
        period = delivery.LEASE.total_seconds() / 3
        while True:
            await asyncio.sleep(period)
            try:
                async with transaction(self.sessions) as session:
                    await delivery.renew_lease(session, self.owner, self._utc())
                    if self.shared:
                        await delivery.forget_idle_budgets(session, time.time())
                if self.shared and self._open_row is not None:
                    await self.load(self._open_row)
            except Exception as exc:
                log.warning("outbox lease renewal failed: %s", type(exc).__name__)

    async def stop(self, grace: float = 5.0) -> None:
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace)
        for task in list(self._in_flight):
            task.cancel()
        if self._checker is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._checker, grace)
        await self.flush()
        for chat in self._chats.values():
            if chat.timer is not None:
                chat.timer.cancel()

    # ---- scheduling ------------------------------------------------------------------

    def _make_ready(self, key: str, chat: _Chat) -> None:
        if chat.busy or not chat.queue:
            return
        now = self._clock()
        head = chat.queue[0]
        wait = chat.not_before - now
        if head.lane > 0:
            if chat.bucket is None:
                chat.bucket = Bucket(self.chat_rate, self.chat_burst)
            wait = max(wait, chat.bucket.wait(now))
        if wait > 0:
            if chat.timer is None:
                chat.timer = asyncio.get_running_loop().call_later(wait, self._timer, key)
            return
        if chat.timer is not None:
            chat.timer.cancel()
            chat.timer = None
        chat.gen += 1
        chat.queued = True
        heapq.heappush(self._heap, (head.lane, chat.served, next(self._order), chat.gen, key))
        self._wake.set()

    def _timer(self, key: str) -> None:
        chat = self._chats.get(key)
        if chat is not None:
            chat.timer = None
            self._make_ready(key, chat)

    def _pop(self) -> tuple[str, _Chat] | None:
        while self._heap:
            _lane, _served, _order, gen, key = heapq.heappop(self._heap)
            chat = self._chats.get(key)
            if chat is not None and chat.queued and chat.gen == gen and not chat.busy:
                chat.queued = False
                return key, chat
        return None

    def _peek_lane(self) -> int | None:
        while self._heap:
            _lane, _s, _o, gen, key = self._heap[0]
            chat = self._chats.get(key)
            if chat is not None and chat.queued and chat.gen == gen and not chat.busy:
                return chat.queue[0].lane if chat.queue else None
            heapq.heappop(self._heap)
        return None

    async def _run(self) -> None:
        while True:
            lane = self._peek_lane()
            if lane is None or len(self._in_flight) >= self.max_in_flight:
                self._check_idle()
                self._wake.clear()
                await self._wake.wait()
                continue
            if lane > 0:
                wait = self._overall.wait(self._clock())
                if wait > 0:
                    # Sleep until the next overall slot, but wake for a quick exit.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            popped = self._pop()
            if popped is None:
                continue
            key, chat = popped
            item = chat.queue[0]
            now = self._clock()
            if item.lane > 0:
                self._overall.reserve(now)
                if chat.bucket is not None:
                    chat.bucket.reserve(now)
            chat.busy = True
            chat.served = now
            task = asyncio.create_task(self._deliver(key, chat, item))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    def _check_idle(self) -> None:
        if self._deliveries and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush_soon())
        if not self._in_flight and all(not c.queue for c in self._chats.values()):
            self._idle.set()
            # Forget chats with nothing to do, so the table tracks only active ones.
            now = self._clock()
            for key in [k for k, c in self._chats.items() if _forgettable(c, now)]:
                del self._chats[key]

    # ---- delivery --------------------------------------------------------------------

    async def _deliver(self, key: str, chat: _Chat, item: Queued) -> None:
        started = self._utc()
        finished = True
        try:
            if self.shared and not await self._first_in_line(chat, item):
                finished = item.id in chat.superseded
                return
            if item.kind == "quick_exit":
                await self._quick_exit(item)
            else:
                message_id = await self.channel.deliver(item.chat, item.replies[0])
                await self._record(item, [message_id])
        except RetryLater as exc:
            finished = item.id in chat.superseded
            chat.not_before = self._clock() + exc.seconds
            log.info("flood control: %s waits %.1f s", exc.kind, exc.seconds)
        except MaybeDelivered as exc:
            finished = await self._maybe_delivered(chat, item, exc, started)
        except Undeliverable as exc:
            log.warning("reply undeliverable (%s); dropped", exc.kind)
            self.abandoned += 1
            await self._retry_db(lambda s: delivery.abandon(s, item.id))
        except Exception as exc:
            # Most likely the database, after the send itself: retried like a lost answer.
            log.error("delivery failed: %s", type(exc).__name__)
            finished = await self._maybe_delivered(chat, item, exc, started)
        finally:
            chat.superseded.discard(item.id)
            if finished and chat.queue and chat.queue[0].id == item.id:
                chat.queue.popleft()
            elif not finished and len(chat.queue) > 1:
                # Items taken over from a dead process while this one was in flight may be
                # older: back to commit order, or this one would be refused as "not first"
                # for ever, with the older one waiting behind it.
                chat.queue = deque(sorted(chat.queue, key=lambda q: q.id))
            chat.busy = False
            self._make_ready(key, chat)

    async def _first_in_line(self, chat: _Chat, item: Queued) -> bool:
        """Several processes: send only the chat's oldest waiting item, only while it is still
        waiting (another process's quick exit deletes it), and within Telegram's per-bot
        limits, whose buckets are in the database (overall, and this chat's). Quick exit does
        not wait for the buckets."""
        if item.chat_key in self._delivered_chats:
            await self.flush()
        first, delay = await self._check(item)
        if first is None or first > item.id:
            chat.superseded.add(item.id)  # gone: a quick exit elsewhere took it off
            return False
        if first < item.id:
            chat.not_before = self._clock() + 0.1  # an older one is with another process
            return False
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    async def _check(self, item: Queued) -> tuple[int | None, float]:
        """The chat's first waiting item and, if it is this one, how long this send must wait
        for its slot in the shared buckets. Items asking while a check runs are checked
        together in the next one: one transaction for all of them instead of one per send
        (which, measured, cost more than the turns)."""
        future: asyncio.Future[tuple[int | None, float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._checks.append((item, future))
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._run_checks())
        return await future

    async def _run_checks(self) -> None:
        while self._checks:
            batch, self._checks = self._checks, []
            try:
                async with transaction(self.sessions) as session:
                    firsts = await delivery.first_waiting(
                        session, list({item.chat_key for item, _f in batch})
                    )
                    paced = [
                        item
                        for item, _f in batch
                        if item.lane > 0 and firsts.get(item.chat_key) == item.id
                    ]
                    delays = await delivery.reserve_sends(
                        session, [self._rates(item) for item in paced], time.time()
                    )
            except Exception as exc:
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            delay_of = {item.id: d for item, d in zip(paced, delays, strict=True)}
            for item, future in batch:
                if not future.done():
                    future.set_result((firsts.get(item.chat_key), delay_of.get(item.id, 0.0)))

    def _rates(self, item: Queued) -> list[delivery.Rate]:
        return [
            delivery.Rate("all", 1 / self.overall_rate, OVERALL_TOLERANCE / self.overall_rate),
            delivery.Rate(
                "chat:" + item.chat_key,
                1 / self.chat_rate,
                (self.chat_burst - 1) / self.chat_rate,
            ),
        ]

    async def _maybe_delivered(
        self, chat: _Chat, item: Queued, exc: Exception, started: dt.datetime
    ) -> bool:
        """A send that may have reached the chat: remember the gap, try again later (unless a
        quick exit has taken it off the outbox meanwhile: that quick exit deletes the gap).
        Returns whether the item is done with."""
        kind = getattr(exc, "kind", type(exc).__name__)
        attempts = item.attempts + 1
        await self._retry_db(lambda s: self._gap_and_attempt(s, item, started))
        if item.id in chat.superseded:
            return True
        if attempts >= MAX_ATTEMPTS:
            log.error("reply given up after %d attempts (%s)", attempts, kind)
            self.abandoned += 1
            await self._retry_db(lambda s: delivery.abandon(s, item.id))
            return True
        cap = QUICK_EXIT_BACKOFF_MAX if item.kind == "quick_exit" else BACKOFF_MAX
        delay = min(cap, BACKOFF_START * 2 ** (attempts - 1))
        log.info("send failed (%s), attempt %d; retry in %.1f s", kind, attempts, delay)
        chat.not_before = self._clock() + delay
        if chat.queue and chat.queue[0].id == item.id:
            chat.queue[0] = replace(item, attempts=attempts)
        return False

    async def _gap_and_attempt(
        self, session: AsyncSession, item: Queued, started: dt.datetime
    ) -> None:
        await delivery.open_gap(session, item.chat_key, self._utc(), known_before=started)
        await delivery.count_attempt(session, item.id)

    async def _record(self, item: Queued, message_ids: Sequence[int]) -> None:
        """Note a delivery; deliveries are written together, a few milliseconds later, in one
        transaction (one per message measured as the largest cost per turn). A crash before
        the write sends those items again, and `load` opens a gap for every chat it resumes,
        so quick exit still deletes the first copies."""
        self._deliveries.append((item.id, item.chat_key, list(message_ids)))
        self._delivered_chats[item.chat_key] = self._delivered_chats.get(item.chat_key, 0) + 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_DELAY)
        await self.flush()

    async def flush(self) -> None:
        """Write every noted delivery now (before quick exit reads the chat's ids)."""
        async with self._flush_lock:
            batch, self._deliveries = self._deliveries, []
            if not batch:
                return
            now = self._utc()

            async def write(session: AsyncSession) -> None:
                await delivery.delivered_many(session, batch, now)

            try:
                await self._retry_db(write)
            except Exception as exc:
                # The items stay in the outbox and go again after a restart (a gap is opened
                # for them then); nothing is lost, a reply may come twice.
                log.error("deliveries not recorded: %s", type(exc).__name__)
            for _id, chat_key, _ids in batch:
                left = self._delivered_chats.get(chat_key, 1) - 1
                if left <= 0:
                    self._delivered_chats.pop(chat_key, None)
                else:
                    self._delivered_chats[chat_key] = left

    async def _retry_db(self, work: Callable[[AsyncSession], object], tries: int = 5) -> None:
        """Write what Telegram told us; a brief database hiccup must not turn a delivered
        message into one that is sent again."""
        delay = 0.05
        for attempt in range(tries):
            try:
                async with transaction(self.sessions) as session:
                    result = work(session)
                    if asyncio.iscoroutine(result):
                        await result
                return
            except Exception:
                if attempt == tries - 1:
                    raise
                await asyncio.sleep(delay)
                delay *= 4

    async def _quick_exit(self, item: Queued) -> None:
        """Delete every id the chat may show, known or not, then send the neutral line."""
        await self.flush()
        async with self.sessions() as session:
            known = await queries.chat_message_ids(session, item.chat_key, self._utc())
            gaps = await delivery.gaps(session, item.chat_key)
        # What is on screen goes first: the person may be watched right now.
        await self._delete(item, known)
        sent = [await self.channel.deliver(item.chat, reply) for reply in item.replies]
        ceiling = min(sent) if sent else None
        known_set = set(known)
        for after, before in gaps:
            high = before if before is not None else ceiling
            if high is None:
                high = after + MAX_GAP_IDS + 1
            low = max(after + 1, high - MAX_GAP_IDS)
            await self._delete(item, [i for i in range(low, high) if i not in known_set])
        async with transaction(self.sessions) as session:
            await delivery.chat_cleared(session, item.chat_key, known, gaps_done=True)
            await delivery.delivered(session, item.id, item.chat_key, sent, self._utc())
        log.info("quick exit done deleted=%d gaps=%d", len(known), len(gaps))

    async def _delete(self, item: Queued, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), DELETE_BATCH):
            await self._delete_batch(item, list(ids[start : start + DELETE_BATCH]))

    async def _delete_batch(self, item: Queued, batch: list[int]) -> None:
        """One deleteMessages call, tried again in place on a fault; after the last try the
        fault reaches `_deliver` and the whole quick exit goes again (with the gap open)."""
        delay = DELETE_RETRY_START
        for attempt in range(DELETE_TRIES):
            try:
                await self.channel.delete(item.chat, batch)
                return
            except Undeliverable as exc:
                # Too old (48 h) or already gone: the neutral line still says how to delete
                # the chat from the device.
                log.warning("delete refused (%s)", exc.kind)
                return
            except (MaybeDelivered, RetryLater) as exc:
                if attempt == DELETE_TRIES - 1:
                    raise
                wait = exc.seconds if isinstance(exc, RetryLater) else delay
                log.info("delete failed (%s); again in %.1f s", exc.kind, wait)
                await asyncio.sleep(wait)
                delay *= 2


def _forgettable(chat: _Chat, now: float) -> bool:
    quiet = chat.bucket is None or chat.bucket.idle(now)
    return not chat.queue and chat.timer is None and not chat.busy and quiet
