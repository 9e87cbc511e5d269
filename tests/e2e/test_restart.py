"""Restarts and expiry: a conversation survives a stopped or killed process, and forgets
what it should once the stored state or draft expires."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.app import RunningServer
from tests.e2e.conftest import REPO, BotProcess, bot_env, start_bot
from tests.e2e.emulator import BotApiEmulator, ChatMessage, EmulatedUser

PHONE = "07911 123456"
TIMES_Q = "When is it safe to contact you?"
PHONE_Q = "What is a safe phone number for you?"
PAST = "2000-01-01 00:00:00.000000"


async def press(user: EmulatedUser, label: str, count: int = 1) -> list[ChatMessage]:
    await user.press(label)
    return await user.next_replies(count)


async def to_phone_question(user: EmulatedUser) -> ChatMessage:
    await user.send_command("/start")
    await user.next_replies(1)
    for label in ["Continue", "Talk to a support worker", "Yes, go on"]:
        await press(user, label)
    (question,) = await press(user, "Phone call")
    assert PHONE_Q in (question.text or "")
    return question


async def to_times_question(user: EmulatedUser) -> ChatMessage:
    await to_phone_question(user)
    await user.send_text(PHONE)
    (question,) = await user.next_replies(1)
    assert TIMES_Q in (question.text or "")
    return question


async def times_to_summary(user: EmulatedUser) -> ChatMessage:
    """From the safe-times question (a phone call) to the summary."""
    for label in [
        "Evenings",
        "No, do not leave a message",
        "End the call",
        "Skip",
        "English",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "No preference",
    ]:
        await press(user, label)
    (summary,) = await press(user, "Skip")
    assert "Check your answers" in (summary.text or "")
    return summary


def set_column(data_dir: Path, column: str, value: str) -> int:
    assert column in {"expires_at", "draft_expires_at"}
    with sqlite3.connect(data_dir / "safebot.db") as db:
        changed = db.execute(f"UPDATE conversations SET {column} = ?", (value,)).rowcount
    return changed


async def terminate(process: BotProcess, timeout: float = 15.0) -> int:
    """SIGTERM and wait *without blocking the event loop*: the emulator runs in this loop and
    the bot's clean shutdown still talks to it (BotProcess.stop() waits synchronously, so a
    shutdown that makes a Bot API call stalls until its 15 s timeout)."""
    proc = process.proc
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.poll() is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if proc.poll() is None:
        process.kill()
        raise AssertionError("safebot did not stop on SIGTERM")
    return proc.returncode


# --------------------------------------------------------------------------- restarts


async def test_an_in_process_restart_resumes_at_the_same_question(
    emulator: BotApiEmulator, data_dir: Path
) -> None:
    env = bot_env(emulator, data_dir)
    server: RunningServer = await start_bot(env)
    try:
        user = emulator.user(4001, language_code="en")
        question = await to_times_question(user)
        await server.stop()
        server = await start_bot(env)

        # Still at the same question: a text there is answered "buttons only" + the question.
        await user.send_text("hello")
        (again,) = await user.next_replies(1)
        assert (again.text or "").startswith("Please use the buttons below.")
        assert TIMES_Q in (again.text or "")
        # The buttons of the message sent before the restart still work.
        (next_q,) = await press(user, "Evenings")
        assert "leave a message" in (next_q.text or "")
        assert question.message_id < next_q.message_id
        await press(user, "No, do not leave a message")
        for label in [
            "End the call",
            "Skip",
            "English",
            "Skip",
            "Skip",
            "Skip",
            "Skip",
            "Skip",
            "No preference",
        ]:
            await press(user, label)
        (summary,) = await press(user, "Skip")
        assert "Check your answers" in (summary.text or "")
        assert PHONE in (summary.text or "")
        assert "Evenings" in (summary.text or "")
    finally:
        await server.stop()
    assert not emulator.errors, emulator.errors


async def test_a_killed_process_resumes_after_restart(
    emulator: BotApiEmulator, bot_process: BotProcess
) -> None:
    await bot_process.start()
    user = emulator.user(4002, language_code="en")
    await to_phone_question(user)
    bot_process.kill()
    await bot_process.start()

    await user.send_text(PHONE)
    (question,) = await user.next_replies(1, timeout=10)
    assert TIMES_Q in (question.text or "")
    summary = await times_to_summary(user)
    assert PHONE in (summary.text or "")
    # Quick exit still deletes what was sent before the kill.
    earlier = {m.message_id for m in user.chat.messages}
    await user.press("🚪 Quick exit")
    (neutral,) = await user.next_replies(1)
    assert user.chat.deleted_ids >= earlier
    assert [m.message_id for m in user.chat.visible()] == [neutral.message_id]
    assert await terminate(bot_process) == 0  # and a clean stop after all that
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- expiry


async def test_an_expired_conversation_starts_afresh(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    user = emulator.user(4003, language_code="en")
    await to_times_question(user)
    assert set_column(data_dir, "expires_at", PAST) == 1

    await user.send_text("hello")
    replies = await user.next_replies(1)
    screen = replies[-1]
    assert any(
        t in (screen.text or "") for t in ("Welcome", "Choose your language", "How can I help?")
    ), screen.text
    assert TIMES_Q not in (screen.text or "")
    # An old question button is stale now, and the form starts empty.
    await user.press("Evenings")
    replies = await user.next_replies(1)
    assert TIMES_Q not in (replies[-1].text or "")
    with sqlite3.connect(data_dir / "safebot.db") as db:
        (count,) = db.execute("SELECT count(*) FROM conversations").fetchone()
        (draft,) = db.execute("SELECT draft FROM conversations").fetchone()
    assert count == 1 and draft is None
    assert not emulator.errors, emulator.errors


async def test_quick_exit_after_the_state_expired_still_deletes_the_chat(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    """The message ids are kept apart from the conversation for Telegram's 48-hour delete
    window: the welcome promises quick exit deletes the chat, also after SAFEBOT_STATE_TTL."""
    user = emulator.user(4007, language_code="en")
    await to_times_question(user)
    earlier = {m.message_id for m in user.chat.messages}
    assert set_column(data_dir, "expires_at", PAST) == 1  # as if 6 hours had passed

    await user.press("🚪 Quick exit")
    (neutral,) = await user.next_replies(1)
    assert "Chat cleared." in (neutral.text or "")
    assert not emulator.errors, emulator.errors
    assert user.chat.deleted_ids >= earlier, sorted(earlier - user.chat.deleted_ids)
    assert [m.message_id for m in user.chat.visible()] == [neutral.message_id]


async def test_quick_exit_does_not_try_messages_past_telegrams_48_hours(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    user = emulator.user(4008, language_code="en")
    await to_times_question(user)
    earlier = {m.message_id for m in user.chat.messages}
    with sqlite3.connect(data_dir / "safebot.db") as db:  # as if sent three days ago
        aged = db.execute("UPDATE chat_messages SET sent_at = ?", (PAST,)).rowcount
    assert aged == len(earlier)

    await user.press("🚪 Quick exit")
    (neutral,) = await user.next_replies(1)
    assert "Chat cleared." in (neutral.text or "")
    assert not (user.chat.deleted_ids & earlier)  # Telegram would refuse them anyway
    assert not emulator.errors, emulator.errors


DRAFT_EXPIRED = (
    "To keep you safe, your unfinished answers were deleted after a while. Nothing was sent. "
    "You can start again at any time."
)


async def test_an_expired_draft_restarts_the_form(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    user = emulator.user(4004, language_code="en")
    await to_times_question(user)
    assert set_column(data_dir, "draft_expires_at", PAST) == 1

    # Answering the question on screen: the person is told, and taken to the menu.
    (menu,) = await press(user, "Evenings")
    assert (menu.text or "").startswith(DRAFT_EXPIRED)
    assert "How can I help?" in (menu.text or "")
    assert TIMES_Q not in (menu.text or "")
    with sqlite3.connect(data_dir / "safebot.db") as db:
        (step, draft) = db.execute("SELECT step, draft FROM conversations").fetchone()
    assert (step, draft) == ("menu", None)

    # The form starts again from its first question, and asks for everything again.
    (consent,) = await press(user, "Talk to a support worker")
    assert "Do you want to go on?" in (consent.text or "")
    await press(user, "Yes, go on")
    (question,) = await press(user, "Phone call")
    assert PHONE_Q in (question.text or "")
    await user.send_text("07400 123456")
    (question,) = await user.next_replies(1)
    assert TIMES_Q in (question.text or "")
    summary = await times_to_summary(user)
    assert "07400 123456" in (summary.text or "")
    assert PHONE not in (summary.text or "")
    assert not emulator.errors, emulator.errors


async def test_send_after_the_draft_expired_on_the_summary_is_not_acknowledged(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    user = emulator.user(4006, language_code="en")
    await to_times_question(user)
    summary = await times_to_summary(user)
    assert PHONE in (summary.text or "")
    assert set_column(data_dir, "draft_expires_at", PAST) == 1

    (menu,) = await press(user, "✅ Send")
    assert (menu.text or "").startswith(DRAFT_EXPIRED)
    assert "How can I help?" in (menu.text or "")
    assert "Your request was sent" not in (menu.text or "")
    with sqlite3.connect(data_dir / "safebot.db") as db:
        (stored,) = db.execute("SELECT count(*) FROM contact_requests").fetchone()
        (notices,) = db.execute("SELECT count(*) FROM notices").fetchone()
    assert (stored, notices) == (0, 0)
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- no token


def test_run_without_a_token_explains_how_to_get_one(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "TELEGRAM_BOT_TOKEN" and not k.startswith("SAFEBOT_")
    }
    env["SAFEBOT_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
    assert "@BotFather" in result.stderr
    assert "safebot chat" in result.stderr
