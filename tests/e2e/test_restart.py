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
from flows.render import NOT_PICKED, PICKED
from tests.e2e.conftest import (
    REPO,
    BotProcess,
    bot_env,
    calm_notice,
    continue_request,
    exit_line,
    flow_string,
    help_now_label,
    notice_then_screen,
    start_bot,
    step_lines,
    step_title,
    tr,
)
from tests.e2e.emulator import BotApiEmulator, ChatMessage, EmulatedUser

PHONE = "07911 123456"
TIMES_Q = step_lines("en", "contact.times")[0]
PHONE_Q = step_lines("en", "contact.phone")[0]
VOICEMAIL_Q = step_lines("en", "contact.voicemail")[0]
MENU = step_title("en", "menu")
SUMMARY = step_title("en", "contact.summary")
NEUTRAL = exit_line("en")
EVENINGS = tr("en", "Evenings")
PAST = "2000-01-01 00:00:00.000000"
# The form from the safe times on: a phone call in the evenings, the rest skipped.
PLAN: dict[str, str | None] = {
    "method": "call",
    "phone": PHONE,
    "times": "evenings",
    "leave_message": "no",
    "someone_else": "hang_up",
    "language": "en",
    "organisation": "none",
}


async def press(
    user: EmulatedUser, label: str, count: int = 1, *, message_id: int | None = None
) -> list[ChatMessage]:
    await user.press(label, message_id=message_id)
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
    """From the safe-times question (a phone call) to the summary: evenings, the rest as
    PLAN says (the shared walker's moves)."""
    summary = await continue_request(user, "en", PLAN, from_step="contact.times")
    assert SUMMARY in (summary.text or "")
    assert EVENINGS in (summary.text or "")
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

        # Still at the same question: a sticker there is answered with the calm notice and
        # the question again (typed words would be an answer of her own on this question).
        await user.send_sticker()
        notice = calm_notice("en", "not_text")
        replies = await user.next_replies(1)
        again = notice_then_screen(replies, notice, help_label=help_now_label("en"))
        assert TIMES_Q in (again.text or "")
        # The buttons of the message sent before the restart still work.
        (picked,) = await press(user, NOT_PICKED + EVENINGS, message_id=question.message_id)
        assert TIMES_Q in (picked.text or "")
        assert PICKED + EVENINGS in picked.button_texts()
        (next_q,) = await press(user, flow_string("en", "done"))
        assert VOICEMAIL_Q in (next_q.text or "")
        assert question.message_id < next_q.message_id
        summary = await continue_request(user, "en", PLAN, from_step="contact.voicemail")
        assert SUMMARY in (summary.text or "")
        assert PHONE in (summary.text or "")
        assert EVENINGS in (summary.text or "")
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
    await user.press(flow_string("en", "quick_exit"))
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
        step_title("en", t) in (screen.text or "") for t in ("welcome", "language", "menu")
    ), screen.text
    assert TIMES_Q not in (screen.text or "")
    # An old question button is stale now, and the form starts empty.
    await user.press(NOT_PICKED + EVENINGS)
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

    await user.press(flow_string("en", "quick_exit"))
    (neutral,) = await user.next_replies(1)
    assert NEUTRAL in (neutral.text or "")
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

    await user.press(flow_string("en", "quick_exit"))
    (neutral,) = await user.next_replies(1)
    assert NEUTRAL in (neutral.text or "")
    assert not (user.chat.deleted_ids & earlier)  # Telegram would refuse them anyway
    assert not emulator.errors, emulator.errors


def draft_expired(server: RunningServer) -> str:
    """The notice after the draft expired, with the bot's own draft time in minutes."""
    minutes = int(server.core.settings.draft_ttl.total_seconds() // 60)
    return flow_string("en", "draft_expired").format(draft_minutes=minutes)


async def test_an_expired_draft_restarts_the_form(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    user = emulator.user(4004, language_code="en")
    await to_times_question(user)
    assert set_column(data_dir, "draft_expires_at", PAST) == 1

    # Answering the question on screen: the person is told, and taken to the menu.
    (menu,) = await press(user, NOT_PICKED + EVENINGS)
    assert (menu.text or "").startswith(draft_expired(polling_bot))
    assert MENU in (menu.text or "")
    assert TIMES_Q not in (menu.text or "")
    with sqlite3.connect(data_dir / "safebot.db") as db:
        (step, draft) = db.execute("SELECT step, draft FROM conversations").fetchone()
    assert (step, draft) == ("menu", None)

    # The form starts again from its first question, and asks for everything again.
    (consent,) = await press(user, "Talk to a support worker")
    assert step_lines("en", "contact.consent")[-1] in (consent.text or "")
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

    (menu,) = await press(user, flow_string("en", "confirm"))
    assert (menu.text or "").startswith(draft_expired(polling_bot))
    assert MENU in (menu.text or "")
    assert step_title("en", "contact.done") not in (menu.text or "")
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
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback
