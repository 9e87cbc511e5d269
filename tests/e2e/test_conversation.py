"""A whole conversation over the real python-telegram-bot stack, polling mode."""

from __future__ import annotations

import re

from bot.app import RunningServer
from tests.e2e.conftest import (
    contact_within,
    fill_request,
    flow_string,
    plain,
    step_lines,
    step_title,
    tr,
)
from tests.e2e.emulator import BotApiEmulator

HUB = "eastshire-hub"  # where an English request without a choice goes


async def test_whole_conversation_to_a_stored_request(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(1001, language_code="en")
    await user.send_command("/start")
    (welcome,) = await user.next_replies(1)
    assert step_title("en", "welcome") in (welcome.text or "")
    assert welcome.protect_content

    answers: dict[str, str | None] = {
        "method": "call",
        "phone": "07911 123456",
        "times": "evenings",
        "leave_message": "no",
        "someone_else": "hang_up",
        "language": "en",
        "interpreter": "no",
        "organisation": "none",
        "message": "Please call after 6pm",
    }
    summary = await fill_request(user, "en", answers)
    text = plain(summary)
    assert step_title("en", "contact.summary") in text
    assert "07911 123456" in text
    assert "Please call after 6pm" in text
    # Answers in words: the option picked, the summary's wording of an answer.
    assert tr("en", "Evenings") in text
    assert tr("en", "No, do not leave one") in text
    assert tr("en", "Not needed") in text
    # The consent that opened the form is not listed.
    assert tr("en", "Contact me") not in text

    await user.press(flow_string("en", "confirm"))
    (done,) = await user.next_replies(1)
    text = plain(done)
    assert step_title("en", "contact.done") in text
    assert re.search(r"\d{4} \d{4} \d{4} \d{4}", text)
    # Who will contact her and when, before the reference number; the quick-exit suggestion
    # last.
    assert step_lines("en", "contact.done")[0] in text
    assert text.index(contact_within("en", HUB)) < text.index(flow_string("en", "reference_intro"))
    assert text.endswith(flow_string("en", "after_send")), text
    assert not emulator.errors, emulator.errors
