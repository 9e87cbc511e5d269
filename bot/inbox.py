"""The inbox: updates are stored before Telegram is told they arrived, then their turns run
fairly across people.

Receipt (`Receiver.receive`, used by the webhook and the poller): translate and check each
update, store the batch in one transaction, hand the chats to the scheduler, and stop the
spinner on pressed buttons. If storing fails, nothing is acknowledged and Telegram delivers
the updates again.

Scheduling (`InboxScheduler`):

Rules:

1. **Per-person order.** A chat's turns run one at a time; each takes that chat's oldest stored
   update (under the chat's database lock), so order holds whichever process stored it.
2. **Fair across people.** One turn per chat per round: among chats with work, the one served
   longest ago goes next, so one person's backlog (or a flood of junk) never delays another
   person's first turn. Under load a worker takes the next `batch` chats of the normal lane
   in that order and runs their turns in one transaction (`ConversationService.run_batch`),
   still one turn per chat.
3. **Urgent first.** A chat with a quick exit waiting goes before one with an emergency
   screen waiting, which goes before everyone else, and runs alone, never inside a batch.
4. **Nothing is lost.** The update stays in the inbox until its turn commits. A turn that
   fails is retried with backoff; one that keeps failing is dropped with an apology so the
   person's next message can run. A batch that fails commits nothing and its turns run again
   one at a time, so only a failing turn is retried. Start-up, and a sweep every few seconds,
   pick up whatever the inbox holds (updates stored by a process that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from telegram import Update

from bot.outbox import OutboxSender
from bot.service import LANE_NORMAL, ConversationService, Incoming, TurnResult
from bot.telegram import BadUpdate, TelegramChannel, incoming, press_id
from storage import delivery

log = logging.getLogger("safebot.inbox")

MAX_TURN_FAILURES = 3


@dataclass
class _Chat:
    lanes: Counter[int] = field(default_factory=Counter)
    served: float = float("-inf")
    busy: bool = False
    failures: int = 0
    gen: int = 0
    queued: bool = False

    def lane(self) -> int:
        live = [lane for lane, n in self.lanes.items() if n > 0]
        return min(live) if live else LANE_NORMAL

    def waiting(self) -> int:
        return sum(n for n in self.lanes.values() if n > 0)


class InboxScheduler:
    def __init__(
        self,
        service: ConversationService,
        sender: OutboxSender | None,
        *,
        workers: int = 4,
        batch: int = 64,
        on_turn: Callable[[TurnResult], None] = lambda _t: None,
        sweep_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.sender = sender
        self.workers = workers
        self.batch = batch  # turns of different chats run in one transaction
        self.on_turn = on_turn
        self.sweep_interval = sweep_interval
        self._clock = clock
        self._chats: dict[str, _Chat] = {}
        self._heap: list[tuple[int, float, int, int, str]] = []
        self._order = itertools.count()
        self._ready = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- feeding ---------------------------------------------------------------------

    def notify(self, stored: list[tuple[str, int]]) -> None:
        """Updates for these chats are now in the inbox."""
        for key, lane in stored:
            chat = self._chats.get(key)
            if chat is None:
                chat = self._chats[key] = _Chat()
            chat.lanes[lane] += 1
            self._push(key, chat)
        self._idle.clear()
        self._kick()

    async def load(self) -> int:
        """Everything the inbox holds (start-up, and the sweep)."""
        async with self.service.sessions() as session:
            waiting = await delivery.waiting_chats(session)
        for key, lane, count in waiting:
            chat = self._chats.get(key)
            if chat is None:
                chat = self._chats[key] = _Chat()
            if chat.waiting() < count:
                chat.lanes[LANE_NORMAL] += count - chat.waiting() - 1
                chat.lanes[lane] += 1
            self._push(key, chat)
        if waiting:
            self._idle.clear()
            self._kick()
        return sum(c for _k, _l, c in waiting)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"safebot-turns-{i}")
            for i in range(self.workers)
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="safebot-inbox-sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # ---- scheduling ------------------------------------------------------------------

    def _push(self, key: str, chat: _Chat) -> None:
        if chat.busy or chat.waiting() <= 0:
            return
        chat.gen += 1
        chat.queued = True
        heapq.heappush(self._heap, (chat.lane(), chat.served, next(self._order), chat.gen, key))

    def _kick(self) -> None:
        async def wake() -> None:
            async with self._ready:
                self._ready.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(wake())

    def _pop(self) -> tuple[str, _Chat] | None:
        while self._heap:
            *_rest, gen, key = heapq.heappop(self._heap)
            chat = self._chats.get(key)
            if chat is not None and chat.queued and chat.gen == gen and not chat.busy:
                chat.queued = False
                return key, chat
        return None

    def _pop_batch(self) -> list[tuple[str, _Chat]]:
        """The chats whose turns run next, together: the one served longest ago in the best
        lane, then, if that is the normal lane, up to `batch` more from the normal lane in the
        same order. A quick exit or an emergency screen runs alone, never behind a batch."""
        first = self._pop()
        if first is None:
            return []
        picked = [first]
        if first[1].lane() < LANE_NORMAL:
            return picked
        while len(picked) < self.batch and self._peek_lane() == LANE_NORMAL:
            more = self._pop()
            if more is None:
                break
            picked.append(more)
        return picked

    def _peek_lane(self) -> int | None:
        while self._heap:
            lane, _served, _order, gen, key = self._heap[0]
            chat = self._chats.get(key)
            if chat is not None and chat.queued and chat.gen == gen and not chat.busy:
                return lane
            heapq.heappop(self._heap)
        return None

    async def _worker(self) -> None:
        while True:
            async with self._ready:
                picked = self._pop_batch()
                while not picked:
                    if not any(c.busy for c in self._chats.values()):
                        self._idle.set()
                    await self._ready.wait()
                    picked = self._pop_batch()
            now = self._clock()
            for _key, chat in picked:
                chat.busy = True
                chat.served = now
            try:
                await self._run(picked)
            finally:
                self._release(picked)

    def _release(self, picked: list[tuple[str, _Chat]]) -> None:
        """These chats' turns are over: they may be picked again (if anything waits)."""
        for key, chat in picked:
            if not chat.busy:
                continue
            chat.busy = False
            if chat.waiting() > 0:
                self._push(key, chat)
            elif chat.failures == 0 and self._chats.get(key) is chat:
                del self._chats[key]
        if self._heap:
            self._kick()
        elif not any(c.busy for c in self._chats.values()):
            self._idle.set()

    async def _run(self, picked: list[tuple[str, _Chat]]) -> None:
        if len(picked) == 1:
            await self._one_turn(*picked[0])
            return
        try:
            turns = await self.service.run_batch([key for key, _chat in picked])
        except Exception as exc:
            # Nothing of the batch committed: each turn runs again on its own, so that only a
            # failing one is retried (or, after a few tries, dropped with an apology), and
            # each chat is free again as soon as its own turn is, not after a failing one's
            # back-off.
            log.warning(
                "batch of %d turns failed (%s); one at a time", len(picked), type(exc).__name__
            )

            async def alone(key: str, chat: _Chat) -> None:
                try:
                    await self._one_turn(key, chat)
                finally:
                    self._release([(key, chat)])

            await asyncio.gather(*(alone(key, chat) for key, chat in picked))
            return
        for (_key, chat), turn in zip(picked, turns, strict=True):
            self._done(chat, turn)

    async def _one_turn(self, key: str, chat: _Chat) -> None:
        try:
            turn = await self.service.run_next(key)
        except Exception as exc:
            chat.failures += 1
            log.error("turn failed (%s), attempt %d", type(exc).__name__, chat.failures)
            if chat.failures >= MAX_TURN_FAILURES:
                apology = await self.service.give_up(key)
                if apology is not None:
                    chat.failures = 0
                    self._consume(chat, None)
                    if self.sender is not None:
                        self.sender.submit(apology)
            await asyncio.sleep(min(2.0, 0.1 * 2**chat.failures))
            return
        self._done(chat, turn)

    def _done(self, chat: _Chat, turn: TurnResult | None) -> None:
        chat.failures = 0
        if turn is None:
            chat.lanes.clear()  # another process took them, or a stale count
            return
        self._consume(chat, turn.lane)
        if turn.outbox and self.sender is not None:
            self.sender.submit(turn.outbox)
        self.on_turn(turn)

    @staticmethod
    def _consume(chat: _Chat, lane: int | None) -> None:
        if lane is not None and chat.lanes[lane] > 0:
            chat.lanes[lane] -= 1
            return
        for candidate in sorted(chat.lanes, reverse=True):
            if chat.lanes[candidate] > 0:
                chat.lanes[candidate] -= 1
                return

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.load()
            except Exception as exc:
                log.warning("inbox sweep failed: %s", type(exc).__name__)


class Receiver:
    def __init__(
        self, service: ConversationService, scheduler: InboxScheduler, channel: TelegramChannel
    ) -> None:
        self.service = service
        self.scheduler = scheduler
        self.channel = channel
        self._acks: set[asyncio.Task[None]] = set()

    async def receive(self, updates: Sequence[Update]) -> int:
        """Store what needs an answer; return how many were stored. Raises if the database
        cannot take them (the caller must then not acknowledge)."""
        batch: list[Incoming] = []
        presses: list[str] = []
        for update in updates:
            try:
                item = incoming(update)
            except BadUpdate as exc:
                log.warning("update refused: bad %s", exc)
                continue
            if item is None:
                continue
            batch.append(item)
            pid = press_id(update)
            if pid is not None:
                presses.append(pid)
        if not batch:
            return 0
        stored = await self.service.receive(batch)
        self.scheduler.notify(stored)
        for pid in presses:
            # The press is safe in the inbox: stop its spinner now, not after the turn and
            # the person's paced replies.
            task = asyncio.create_task(self.channel.acknowledge(pid))
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)
        return len(batch)
