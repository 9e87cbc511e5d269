"""Delivery as Telegram really behaves: faults of every kind, a send whose answer never comes
back, per-chat pacing with a crowd, and quick exit behind a backlog (real PTB over HTTP
against the emulator, in-process).

Each test counts what was lost or left on screen, and prints its figures."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.app import RunningServer
from tests.e2e.conftest import (
    TOKEN,
    bot_env,
    exit_line,
    flow_string,
    start_bot,
    step_lines,
    step_title,
)
from tests.e2e.emulator import FAULT_KINDS, BotApiEmulator, ChatMessage, EmulatedUser

# What each screen says (the catalogue's English), to know it arrived.
NEUTRAL = exit_line("en")
WELCOME = step_title("en", "welcome")
MENU = step_title("en", "menu")
CONSENT = step_lines("en", "contact.consent")[-1]
METHOD = step_lines("en", "contact.method")[0]
PHONE_Q = step_lines("en", "contact.phone")[0]
TIMES_Q = step_lines("en", "contact.times")[0]
PHONE = "07911 123456"
QUICK_EXIT = flow_string("en", "quick_exit")
HELP_NOW = step_title("en", "help.now")


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)


def shows(user: EmulatedUser, text: str, after: int = 0) -> bool:
    return any(text in (m.text or "") for m in user.chat.bot_messages() if m.message_id > after)


def newest_id(user: EmulatedUser) -> int:
    return max((m.message_id for m in user.chat.messages), default=0)


async def step(user: EmulatedUser, action: Callable[[], object], expect: str) -> None:
    """Do something and wait for the screen it leads to (however many retries it takes)."""
    before = newest_id(user)
    result = action()
    if asyncio.iscoroutine(result):
        await result
    await wait_until(lambda: shows(user, expect, before), 60, f"{expect!r} in chat {user.id}")


def leftovers(user: EmulatedUser) -> list[ChatMessage]:
    """Everything still on screen after quick exit that is not the neutral line."""
    return [m for m in user.chat.visible() if not (m.from_bot and NEUTRAL in (m.text or ""))]


async def stop(server: RunningServer) -> None:
    await asyncio.wait_for(server.stop(), 30)


# ---- faults ---------------------------------------------------------------------------------


async def test_a_fifth_of_calls_failing_loses_no_reply_and_quick_exit_leaves_nothing(
    tmp_path: Path,
) -> None:
    seed = random.randrange(10**6)
    async with BotApiEmulator(
        token=TOKEN,
        fault_rate=0.2,
        fault_seed=seed,
        fault_methods=("sendMessage", "deleteMessages", "answerCallbackQuery", "getUpdates"),
        shared_message_ids=True,  # ids of one chat are never consecutive
        hang_seconds=6.0,  # longer than the send time-out: the answer never comes back
    ) as emu:
        # Every kind at least once, whatever the seed draws; then a fifth of calls at random.
        for kind in FAULT_KINDS:
            emu.fault_next("sendMessage", kind)
        print(f"fault seed {seed}")  # shown with a failure, to repeat the run
        server = await start_bot(bot_env(emu, tmp_path / "data"))
        users = [emu.user(7000 + i, language_code="en") for i in range(8)]

        async def journey(user: EmulatedUser) -> None:
            await step(user, lambda: user.send_command("/start"), WELCOME)
            await step(user, lambda: user.press("Continue"), MENU)
            await step(user, lambda: user.press("Talk to a support worker"), CONSENT)
            await step(user, lambda: user.press("Yes, go on"), METHOD)
            await step(user, lambda: user.press("Phone call"), PHONE_Q)
            await step(user, lambda: user.send_text(PHONE), TIMES_Q)
            await step(user, lambda: user.press(QUICK_EXIT), NEUTRAL)

        try:
            await asyncio.gather(*(journey(u) for u in users))
            assert server.delivery is not None
            await asyncio.wait_for(server.delivery.sender.wait_idle(), 90)
        finally:
            await stop(server)
        left = {u.id: [m.text for m in leftovers(u)] for u in users}
        kinds = {kind for _method, kind in emu.faults_injected}
        sends = len(emu.calls_to("sendMessage"))
        print(
            f"seed {seed}: {len(emu.faults_injected)} faults in {len(emu.calls)} calls "
            f"({sorted(kinds)}), {sends} sends, leftovers {sum(map(len, left.values()))}"
        )
        assert all(not texts for texts in left.values()), (seed, left)
        assert kinds >= {"500", "502", "drop", "lost_answer"}, (seed, kinds)
        assert server.delivery.sender.abandoned == 0


async def test_a_hung_send_then_quick_exit_leaves_nothing_on_screen(tmp_path: Path) -> None:
    """The phone-number screen reaches the chat but its answer never comes back, so its id is
    unknown. Quick exit, pressed while that send still hangs, must delete it anyway (ids of
    one chat are not consecutive: another person is chatting at the same time)."""
    async with BotApiEmulator(token=TOKEN, shared_message_ids=True, hang_seconds=8.0) as emu:
        server = await start_bot(bot_env(emu, tmp_path / "data"))
        try:
            user, other = emu.user(7100, language_code="en"), emu.user(7101, language_code="en")
            await step(user, lambda: user.send_command("/start"), WELCOME)
            for label, expect in [
                ("Continue", MENU),
                ("Talk to a support worker", CONSENT),
                ("Yes, go on", METHOD),
                ("Phone call", PHONE_Q),
            ]:
                await step(user, lambda label=label: user.press(label), expect)  # type: ignore[misc]
                await step(other, lambda: other.send_command("/start"), WELCOME)
            emu.fault_next("sendMessage", "hang")
            before = newest_id(user)
            await user.send_text(PHONE)
            await wait_until(lambda: shows(user, TIMES_Q, before), 10, "the hung send arrives")
            await step(other, lambda: other.send_command("/start"), WELCOME)
            await step(user, lambda: user.press(QUICK_EXIT), NEUTRAL)
            assert server.delivery is not None
            await asyncio.wait_for(server.delivery.sender.wait_idle(), 30)
        finally:
            await stop(server)
        assert leftovers(user) == [], [m.text for m in leftovers(user)]
        ids = [m.message_id for m in user.chat.messages]
        assert any(b - a > 1 for a, b in itertools.pairwise(ids)), "ids were consecutive"
        assert all(not m.deleted for m in other.chat.messages), "another chat was touched"


async def test_failing_deletions_are_retried_without_redoing_quick_exit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every deletion of a quick exit fails a few times in a row. Each is tried again in
    place: the quick exit is not started over (which resent the neutral line and waited out a
    growing backoff), and nothing is left on screen."""
    async with BotApiEmulator(token=TOKEN, shared_message_ids=True, hang_seconds=1.0) as emu:
        server = await start_bot(bot_env(emu, tmp_path / "data"))
        try:
            user, other = emu.user(7150, language_code="en"), emu.user(7151, language_code="en")
            await step(user, lambda: user.send_command("/start"), WELCOME)
            await step(other, lambda: other.send_command("/start"), WELCOME)
            await step(user, lambda: user.press("Continue"), MENU)
            emu.fault_next("sendMessage", "lost_answer")  # an id never known: a gap to clear
            await step(user, lambda: user.press("Talk to a support worker"), CONSENT)
            assert server.delivery is not None
            await asyncio.wait_for(server.delivery.sender.wait_idle(), 30)
            for kind in ("500", "drop", "502", "429"):
                emu.fault_next("deleteMessages", kind)
            with caplog.at_level(logging.INFO, logger="safebot.outbox"):
                await step(user, lambda: user.press(QUICK_EXIT), NEUTRAL)
                await asyncio.wait_for(server.delivery.sender.wait_idle(), 30)
        finally:
            await stop(server)
        assert leftovers(user) == [], [m.text for m in leftovers(user)]
        neutral_sends = [
            c for c in emu.calls_to("sendMessage") if NEUTRAL in str(c.get("text", ""))
        ]
        assert len(neutral_sends) == 1
        said = [r.getMessage() for r in caplog.records]
        assert not [line for line in said if line.startswith("send failed")]
        assert sum("delete failed" in line for line in said) == 4


# ---- crowds and pacing ------------------------------------------------------------------------


async def test_a_backlog_delays_no_one_else_and_quick_exit_goes_first(
    emulator: BotApiEmulator, tmp_path: Path
) -> None:
    """With Telegram's per-chat pace (about one a second), one person's 20 quick messages
    take many seconds to answer. Someone else's first reply, that person's press, and their
    quick exit must not wait behind them."""
    env = bot_env(emulator, tmp_path / "data", SAFEBOT_CHAT_SEND_RATE="1")
    server = await start_bot(env)
    loop = asyncio.get_running_loop()
    try:
        busy = emulator.user(7200, language_code="en")
        await step(busy, lambda: busy.send_command("/start"), WELCOME)
        await step(busy, lambda: busy.press("Continue"), MENU)
        menu = busy.last_bot_message()
        for n in range(20):
            await busy.send_text(f"hello {n}")
        await wait_until(lambda: len(busy.chat.bot_messages()) >= 4, 10, "the backlog starts")

        newcomer = emulator.user(7201, language_code="en")
        began = loop.time()
        await step(newcomer, lambda: newcomer.send_command("/start"), WELCOME)
        first_reply = loop.time() - began

        began = loop.time()
        query = await busy.press_data(menu.message_id, "m")
        await wait_until(lambda: query in emulator.answered_callbacks, 5, "the press answered")
        press_answer = loop.time() - began
        backlog = 21 - len(busy.chat.bot_messages())

        began = loop.time()
        await step(busy, lambda: busy.send_command("/exit"), NEUTRAL)
        quick_exit = loop.time() - began
        assert server.delivery is not None
        await asyncio.wait_for(server.delivery.sender.wait_idle(), 30)
    finally:
        await stop(server)
    print(
        f"backlog {backlog}: first reply {first_reply:.2f}s, press answered "
        f"{press_answer:.2f}s, quick exit {quick_exit:.2f}s"
    )
    assert backlog >= 5, "the test needs a real backlog"
    assert first_reply < 1.5
    assert press_answer < 1.0
    assert quick_exit < 1.5
    # Nothing of the backlog reached the screen after the quick exit.
    assert leftovers(busy) == [], [m.text for m in leftovers(busy)]


async def test_a_crowd_gets_first_replies_within_the_overall_limit(
    emulator: BotApiEmulator, tmp_path: Path
) -> None:
    """N people at once, each answered with one message: the last first reply comes about
    N/30 s after the burst (Telegram's 30 messages a second), not later."""
    n = 90
    server = await start_bot(bot_env(emulator, tmp_path / "data", SAFEBOT_CHAT_SEND_RATE="1"))
    loop = asyncio.get_running_loop()
    try:
        crowd = [emulator.user(8000 + i, language_code="en") for i in range(n)]
        began = loop.time()
        await asyncio.gather(*(u.send_command("/start") for u in crowd))
        await wait_until(
            lambda: all(u.chat.bot_messages() for u in crowd), n / 30 + 10, "first replies"
        )
        last = loop.time() - began
    finally:
        await stop(server)
    print(f"{n} people: last first reply after {last:.2f}s (limit {n / 30:.1f}s)")
    assert last < n / 30 + 2
    assert all(len(u.chat.bot_messages()) == 1 for u in crowd)


async def test_quick_exit_and_the_emergency_screen_go_ahead_of_a_crowd(
    emulator: BotApiEmulator, tmp_path: Path
) -> None:
    """While a crowd's first replies are being paced out at 30 a second, someone already in
    the chat presses "I need help now" and someone else quick-exits: both are answered in
    well under a second, ahead of the crowd (lanes), not after it."""
    n = 150  # 5 s of first replies at 30 a second
    server = await start_bot(bot_env(emulator, tmp_path / "data", SAFEBOT_CHAT_SEND_RATE="1"))
    loop = asyncio.get_running_loop()
    try:
        urgent = emulator.user(8500, language_code="en")
        leaving = emulator.user(8501, language_code="en")
        for user in (urgent, leaving):
            await step(user, lambda u=user: u.send_command("/start"), WELCOME)
        welcome = urgent.last_bot_message()
        crowd = [emulator.user(8600 + i, language_code="en") for i in range(n)]
        await asyncio.gather(*(u.send_command("/start") for u in crowd))
        await wait_until(
            lambda: sum(bool(u.chat.bot_messages()) for u in crowd) >= 15, 10, "the crowd starts"
        )
        waiting = sum(not u.chat.bot_messages() for u in crowd)

        async def timed(act: Callable[[], Awaitable[object]], done: Callable[[], bool]) -> float:
            began = loop.time()
            await act()
            await wait_until(done, 10, "an answer ahead of the crowd")
            return loop.time() - began

        emergency, quick_exit = await asyncio.gather(
            timed(
                lambda: urgent.press_data(welcome.message_id, "g:help.now"),
                lambda: HELP_NOW in (urgent.last_bot_message().text or ""),
            ),
            timed(
                lambda: leaving.send_command("/exit"),
                lambda: NEUTRAL in (leaving.last_bot_message().text or ""),
            ),
        )
        await wait_until(
            lambda: all(u.chat.bot_messages() for u in crowd), n / 30 + 10, "the crowd served"
        )
    finally:
        await stop(server)
    print(
        f"{waiting} of {n} still waiting: emergency screen {emergency:.2f}s, "
        f"quick exit {quick_exit:.2f}s"
    )
    assert waiting >= 30, "the test needs a crowd still waiting"
    assert emergency < 1.0
    assert quick_exit < 1.0


def test_every_fault_kind_is_emulated() -> None:
    assert set(FAULT_KINDS) == {"500", "502", "drop", "lost_answer", "hang", "429"}
