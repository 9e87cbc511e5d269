"""`safebot chat`: the same conversation in a terminal, with the same engine and storage.

For content editors and translators trying their changes, and for anyone trying safebot
without a bot token. Type a button's number to press it, or type text; /exit, /menu,
/language, /status, /forget and /start work as in Telegram; Ctrl-D leaves. Replies go
through the same outbox as Telegram's, to the terminal as a channel: quick exit clears the
screen.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import re
import sys
from collections.abc import Callable, Sequence

from bot.channel import ChatAddress
from bot.outbox import OutboxSender
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
CLEAR_SCREEN = "\033[2J\033[H"
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


class TerminalChannel:
    """The terminal as a `bot.channel.Channel`: the outbox delivers here as it does to
    Telegram, so quick exit takes the same path; "deleting" clears the screen."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self.write = write
        self.buttons: list[Button] = []
        self._ids = itertools.count(1)

    async def deliver(self, chat: ChatAddress, reply: Reply) -> int:
        self.buttons = show((reply,), self.write) or self.buttons
        return next(self._ids)

    async def delete(self, chat: ChatAddress, message_ids: Sequence[int]) -> None:
        self.write(CLEAR_SCREEN)
        self.buttons = []

    async def acknowledge(self, press_id: str) -> None:
        """No spinner to stop in a terminal."""


async def chat(service: ConversationService, language: str | None) -> None:
    channel = TerminalChannel(sys.stdout.write)
    # Only this terminal's own replies: the outbox of a bot sharing the database is not ours.
    sender = OutboxSender(
        channel, service.sessions, overall_rate=1e6, chat_rate=1e6, chat_burst=1000
    )
    sender.start()

    async def turn(event: Event) -> None:
        result = await service.handle(CHANNEL, "local", event, deliver_to=CHANNEL)
        sender.submit(result.outbox)
        await sender.wait_idle()
        sys.stdout.flush()

    try:
        await turn(Started(payload=language or "", language_hint=language))
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                sys.stdout.write("\n")
                return
            event = parse_input(line, channel.buttons)
            if event is not None:
                await turn(event)
    finally:
        await sender.stop()
