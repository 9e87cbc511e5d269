"""RetryingRateLimiter and InMemorySendBudget, on injected sleep and a virtual clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import warnings
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import BadRequest, RetryAfter
from telegram.ext import ExtBot
from telegram.request import BaseRequest, RequestData

from bot.ratelimit import InMemorySendBudget, RetryingRateLimiter, retry_after_seconds

# PTB warns whenever a RetryAfter is built unless PTB_TIMEDELTA is set; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class VirtualTime:
    """A clock that only moves when every task is asleep, jumping to the next wake-up."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), future))
        await future

    async def run(self, *coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
        tasks = [asyncio.create_task(c) for c in coroutines]
        while True:
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            assert self._sleepers, "tasks blocked on something other than virtual sleep"
            wake_at = self._sleepers[0][0]
            self.now = max(self.now, wake_at)
            while self._sleepers and self._sleepers[0][0] <= wake_at:
                heapq.heappop(self._sleepers)[2].set_result(None)


class RecordingBudget:
    def __init__(self) -> None:
        self.acquired: list[int | str | None] = []

    async def acquire(self, chat_id: int | str | None) -> None:
        self.acquired.append(chat_id)


class Recorder:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)


def _flaky(failures: list[BaseException]) -> tuple[list[int], Any]:
    calls: list[int] = []

    async def callback(*_: object, **__: object) -> dict[str, Any]:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return {"message_id": 1}

    return calls, callback


async def _send(
    limiter: RetryingRateLimiter,
    callback: Any,
    endpoint: str = "sendMessage",
    chat_id: int | str | None = 42,
    rate_limit_args: int | None = None,
) -> Any:
    data = {} if chat_id is None else {"chat_id": chat_id}
    return await limiter.process_request(
        callback, (endpoint, data), {}, endpoint, data, rate_limit_args
    )


async def test_retry_after_is_slept_exactly_then_retried() -> None:
    sleeper, budget = Recorder(), RecordingBudget()
    calls, callback = _flaky([RetryAfter(1), RetryAfter(1)])
    limiter = RetryingRateLimiter(budget, sleep=sleeper.sleep)

    assert await _send(limiter, callback) == {"message_id": 1}
    assert len(calls) == 3
    assert sleeper.slept == [1.0, 1.0]
    # Every attempt is a send in Telegram's eyes, so each takes a slot.
    assert budget.acquired == [42, 42, 42]


async def test_retry_after_as_timedelta() -> None:
    sleeper = Recorder()
    _, callback = _flaky([RetryAfter(timedelta(seconds=1.5))])
    limiter = RetryingRateLimiter(RecordingBudget(), sleep=sleeper.sleep)
    await _send(limiter, callback)
    assert sleeper.slept == [1.5]


@pytest.mark.parametrize("opt_in", ["", "true"])
def test_retry_after_seconds_with_either_ptb_representation(
    monkeypatch: pytest.MonkeyPatch, opt_in: str
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", opt_in)
    exc = RetryAfter(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reading the value must not warn either way
        assert retry_after_seconds(exc) == 3.0


async def test_exhausted_retries_reraise() -> None:
    sleeper = Recorder()
    calls, callback = _flaky([RetryAfter(2) for _ in range(10)])
    limiter = RetryingRateLimiter(RecordingBudget(), sleep=sleeper.sleep)
    with pytest.raises(RetryAfter):
        await _send(limiter, callback)
    assert len(calls) == 6  # the first try and max_retries=5 retries
    assert sleeper.slept == [2.0] * 5


async def test_rate_limit_args_override_max_retries() -> None:
    sleeper = Recorder()
    calls, callback = _flaky([RetryAfter(2) for _ in range(10)])
    limiter = RetryingRateLimiter(RecordingBudget(), max_retries=5, sleep=sleeper.sleep)
    with pytest.raises(RetryAfter):
        await _send(limiter, callback, rate_limit_args=0)
    assert (len(calls), sleeper.slept) == (1, [])


async def test_other_errors_are_not_retried() -> None:
    sleeper = Recorder()
    calls, callback = _flaky([BadRequest("Message is too long")])
    limiter = RetryingRateLimiter(RecordingBudget(), sleep=sleeper.sleep)
    with pytest.raises(BadRequest):
        await _send(limiter, callback)
    assert (len(calls), sleeper.slept) == (1, [])


async def test_only_sending_methods_are_paced() -> None:
    budget = RecordingBudget()
    limiter = RetryingRateLimiter(budget, sleep=Recorder().sleep)
    for endpoint in ("answerCallbackQuery", "deleteMessages", "deleteMessage", "getMe"):
        _, callback = _flaky([])
        await _send(limiter, callback, endpoint=endpoint)
    assert budget.acquired == []

    for endpoint in ("sendMessage", "editMessageText", "sendDocument", "copyMessage"):
        _, callback = _flaky([])
        await _send(limiter, callback, endpoint=endpoint, chat_id=endpoint)
    assert budget.acquired == ["sendMessage", "editMessageText", "sendDocument", "copyMessage"]


async def test_private_chat_burst_then_one_per_second() -> None:
    time = VirtualTime()
    # A generous overall budget isolates the per-chat bucket.
    budget = InMemorySendBudget(clock=time.clock, sleep=time.sleep, overall_rate=1e6)
    starts: list[float] = []

    async def send() -> None:
        await budget.acquire(42)
        starts.append(time.now)

    await time.run(*(send() for _ in range(6)))
    assert starts == pytest.approx([0, 0, 0, 1, 2, 3], abs=1e-3)

    # After a quiet spell the burst is available again.
    time.now = 20.0
    starts.clear()
    await time.run(*(send() for _ in range(4)))
    assert starts == pytest.approx([20, 20, 20, 21], abs=1e-3)


async def test_overall_budget_spreads_many_chats() -> None:
    time = VirtualTime()
    budget = InMemorySendBudget(clock=time.clock, sleep=time.sleep)
    starts: list[float] = []

    async def send(chat: int) -> None:
        await budget.acquire(chat)
        starts.append(time.now)

    await time.run(*(send(chat) for chat in range(1, 61)))
    assert starts == pytest.approx([i / 30 for i in range(60)])
    assert sum(1 for s in starts if s < 1.0 - 1e-9) == 30


async def test_backlogged_chat_does_not_hold_back_others() -> None:
    time = VirtualTime()
    budget = InMemorySendBudget(clock=time.clock, sleep=time.sleep)
    starts: dict[str, list[float]] = {"busy": [], "other": []}

    async def send(chat: int, label: str) -> None:
        await budget.acquire(chat)
        starts[label].append(time.now)

    await time.run(*(send(1, "busy") for _ in range(5)), send(2, "other"))
    assert starts["busy"] == pytest.approx([0, 1 / 30, 2 / 30, 1, 2])
    assert starts["other"] == pytest.approx([3 / 30])


async def test_groups_are_paced_per_minute_and_ids_normalised() -> None:
    time = VirtualTime()
    budget = InMemorySendBudget(clock=time.clock, sleep=time.sleep, overall_rate=1e6)
    starts: list[tuple[object, float]] = []

    async def send(chat: int | str) -> None:
        await budget.acquire(chat)
        starts.append((chat, time.now))

    await time.run(send(-100), send("-100"), send("@channel"), send("@channel"))
    assert sorted(s for c, s in starts if c in (-100, "-100")) == pytest.approx([0, 3], abs=1e-3)
    assert sorted(s for c, s in starts if c == "@channel") == pytest.approx([0, 3], abs=1e-3)
    assert budget.tracked_chats == 2


async def test_idle_buckets_are_evicted() -> None:
    time = VirtualTime()
    budget = InMemorySendBudget(
        clock=time.clock, sleep=time.sleep, overall_rate=10_000, sweep_interval=60
    )
    await time.run(*(budget.acquire(chat) for chat in range(1, 1001)))
    assert budget.tracked_chats == 1000

    time.now += 61
    await time.run(budget.acquire(5000))
    assert budget.tracked_chats == 1


async def test_no_chat_is_paced_by_overall_budget_only() -> None:
    time = VirtualTime()
    budget = InMemorySendBudget(clock=time.clock, sleep=time.sleep)
    await time.run(*(budget.acquire(None) for _ in range(3)))
    assert time.now == pytest.approx(2 / 30)
    assert budget.tracked_chats == 0


async def test_limiter_through_ext_bot() -> None:
    # PTB routes every call but getUpdates through the limiter and turns a 429 answer into
    # RetryAfter before it gets here.
    sleeper = Recorder()
    budget = RecordingBudget()
    request = _ScriptedRequest(
        [
            (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests",
                    "parameters": {"retry_after": 4},
                },
            ),
            (
                200,
                {
                    "ok": True,
                    "result": {
                        "message_id": 5,
                        "date": 0,
                        "chat": {"id": 42, "type": "private"},
                        "text": "hi",
                    },
                },
            ),
        ]
    )
    bot = ExtBot(
        "1:FAKE",
        request=request,
        get_updates_request=request,
        rate_limiter=RetryingRateLimiter(budget, sleep=sleeper.sleep),
    )
    async with bot:
        message = await bot.send_message(chat_id=42, text="hi")
    assert message.message_id == 5
    assert sleeper.slept == [4.0]
    assert budget.acquired == [42, 42]
    assert request.endpoints == ["getMe", "sendMessage", "sendMessage"]


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        RetryingRateLimiter(max_retries=-1)
    with pytest.raises(ValueError):
        InMemorySendBudget(chat_rate=0)
    with pytest.raises(ValueError):
        InMemorySendBudget(chat_burst=0)


class _ScriptedRequest(BaseRequest):
    """Answers getMe, then the scripted answers in turn."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = script
        self.endpoints: list[str] = []

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[1]
        self.endpoints.append(endpoint)
        if endpoint == "getMe":
            body: dict[str, Any] = {
                "ok": True,
                "result": {"id": 1, "is_bot": True, "first_name": "b", "username": "b_bot"},
            }
            return 200, json.dumps(body).encode()
        status, body = self.script.pop(0)
        return status, json.dumps(body).encode()
