"""`safebot chat`: the same conversation in a terminal, with the same engine and storage.

For content editors and translators trying their changes, and for anyone trying safebot
without a bot token. Type a button's number to press it, or type text; /exit, /menu,
/language, /status, /forget and /start work as in Telegram; Ctrl-D leaves.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
from collections.abc import Callable

from bot.service import ConversationService
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    QuickExitRequested,
    Started,
    TextReceived,
)
from flows.replies import Button, Reply

CHANNEL = "terminal"
_TAG = re.compile(r"</?(b|i|u|s|code|pre|blockquote|a)( [^>]*)?>")


def plain(reply_html: str) -> str:
    text = re.sub(r"</?b>", "*", reply_html)
    text = re.sub(r"</?blockquote>", '"', text)
    return html.unescape(_TAG.sub("", text))


def parse_input(line: str, buttons: list[Button]) -> Event | None:
    line = line.strip()
    if not line:
        return None
    if line.isdigit() and 1 <= int(line) <= len(buttons):
        return ButtonPressed(buttons[int(line) - 1].data)
    if line.startswith("/"):
        name, _, argument = line[1:].partition(" ")
        name = name.lower()
        if name == "start":
            return Started(payload=argument.strip())
        if name == "exit":
            return QuickExitRequested()
        return CommandReceived(name, argument.strip())
    return TextReceived(line)


def show(replies: tuple[Reply, ...], write: Callable[[str], object]) -> list[Button]:
    buttons: list[Button] = []
    for reply in replies:
        write("\n" + plain(reply.html) + "\n")
        for row in reply.buttons:
            for button in row:
                buttons.append(button)
                write(f"  [{len(buttons)}] {button.label}\n")
    return buttons


async def chat(service: ConversationService, language: str | None) -> None:
    write = sys.stdout.write
    turn = await service.handle(
        CHANNEL, "local", Started(payload=language or "", language_hint=language)
    )
    buttons = show(turn.replies, write)
    while True:
        sys.stdout.flush()
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            write("\n")
            return
        event = parse_input(line, buttons)
        if event is None:
            continue
        turn = await service.handle(CHANNEL, "local", event)
        if turn.delete_message_ids or isinstance(event, QuickExitRequested):
            write("\033[2J\033[H")  # quick exit: clear the screen too
            await service.messages_deleted(turn.chat_key, turn.delete_message_ids)
        buttons = show(turn.replies, write) or buttons
