"""A whole conversation over the real python-telegram-bot stack, polling mode."""

from __future__ import annotations

import re

from bot.app import RunningServer
from tests.e2e.emulator import BotApiEmulator


async def test_whole_conversation_to_a_stored_request(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(1001, language_code="en")
    await user.send_command("/start")
    (welcome,) = await user.next_replies(1)
    assert "Welcome" in welcome.text
    assert welcome.protect_content
    steps = [
        "Continue",
        "Talk to a support worker",
        "Yes, go on",
        "Phone call",
    ]
    for label in steps:
        await user.press(label)
        await user.next_replies(1)
    await user.send_text("07911 123456")
    await user.next_replies(1)
    for label in [
        "Evenings",
        "No, do not leave a message",
        "End the call",
        "Skip",
        "English",
        "No",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "No preference",
    ]:
        await user.press(label)
        await user.next_replies(1)
    await user.send_text("Please call after 6pm")
    (summary,) = await user.next_replies(1)
    assert "07911 123456" in summary.text
    assert "Please call after 6pm" in summary.text
    await user.press("✅ Send")
    (done,) = await user.next_replies(1)
    assert "Your request was sent" in done.text
    assert re.search(r"\d{4} \d{4} \d{4} \d{4}", done.text)
    assert not emulator.errors, emulator.errors
