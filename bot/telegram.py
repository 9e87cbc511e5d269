"""The Telegram channel: updates in (translated and checked), replies out.

In: `incoming(update)` turns one Telegram update into what the inbox stores (an engine event
plus where to answer), or None for updates that need no answer (other chat types, unknown
kinds). Values of the wrong type, out-of-range ids and the like are refused here, before the
engine sees them.

Out: `TelegramChannel` is the `bot.channel.Channel` for the outbox: it sends one reply as HTML
with an inline keyboard, deletes up to 100 ids at once, answers a press, and maps Telegram's
failures onto the three kinds the outbox handles. Telegram ids go no further than the keyed
hash the service computes and the sealed inbox and outbox rows; nothing here logs them or any
text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder

from bot.channel import ChatAddress, MaybeDelivered, RetryLater, Undeliverable
from bot.ratelimit import retry_after_seconds
from bot.service import Incoming
from bot.transport import AiohttpRequest
from flows.definition import CALLBACK_DATA_MAX_BYTES
from flows.engine import Context
from flows.events import (
    ButtonPressed,
    CommandReceived,
    Event,
    NonTextReceived,
    QuickExitRequested,
    Started,
    TextReceived,
)
from flows.replies import Reply

log = logging.getLogger("safebot.telegram")

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_ID = 2**53  # Telegram's ids fit in 52 bits; anything larger is forged
MAX_TEXT = 4096 * 4  # a Telegram message is at most 4096 UTF-16 units
_NON_TEXT_KINDS = (
    "photo",
    "sticker",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "story",
)


class BadUpdate(ValueError):
    """An update that cannot have come from Telegram (wrong types, impossible ids)."""


def _id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_ID:
        raise BadUpdate("id")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadUpdate("text")
    return value


def incoming(update: Update) -> Incoming | None:
    """What the inbox stores for this update; None if it needs no answer.
    Raises BadUpdate for values Telegram would never send."""
    update_id = _id(update.update_id)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE:
        return None
    event = to_event(update)
    if event is None:
        return None
    message_id = update.message.message_id if update.message is not None else None
    return Incoming(
        update_id=update_id,
        channel=CHANNEL,
        user_id=str(_id(user.id)),
        chat=_id(chat.id),
        event=event,
        incoming_message_id=None if message_id is None else _id(message_id),
        language_code=user.language_code if isinstance(user.language_code, str) else None,
    )


def to_event(update: Update) -> Event | None:
    """The engine event an update stands for; None for updates that need no answer."""
    if update.callback_query is not None:
        data = update.callback_query.data
        return ButtonPressed(_text(data) if data is not None else "")
    if update.edited_message is not None:
        return NonTextReceived("edited")
    message = update.message
    if message is None:
        return None
    if message.text is not None:
        text = _text(message.text)
        command = _command(message, text)
        if command is None:
            return TextReceived(text)
        name, argument = command
        if name == "start":
            user = message.from_user
            hint = user.language_code if user else None
            return Started(payload=argument, language_hint=hint if isinstance(hint, str) else None)
        if name == "exit":
            return QuickExitRequested()
        return CommandReceived(name, argument)
    kind = next((k for k in _NON_TEXT_KINDS if getattr(message, k, None)), "other")
    return NonTextReceived(kind)


def _command(message: Message, text: str) -> tuple[str, str] | None:
    """A bot command at offset 0, as Telegram marks it with an entity."""
    for entity in message.entities or ():
        if entity.type == "bot_command" and entity.offset == 0:
            if not isinstance(entity.length, int) or not 1 < entity.length <= len(text):
                return None
            name = text[1 : entity.length].split("@", 1)[0].lower()
            return name, text[entity.length :].strip()
    return None


def press_id(update: Update) -> str | None:
    query = update.callback_query
    return query.id if query is not None and isinstance(query.id, str) else None


def markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    rows = []
    for row in reply.buttons:
        for button in row:
            # PTB sends over-long data unchanged and Telegram then refuses the whole message.
            if len(button.data.encode()) > CALLBACK_DATA_MAX_BYTES:
                raise ValueError("callback data over 64 bytes")
        rows.append([InlineKeyboardButton(b.label, callback_data=b.data) for b in row])
    return InlineKeyboardMarkup(rows)


def _classify(exc: TelegramError) -> Exception:
    if isinstance(exc, RetryAfter):
        return RetryLater("429", retry_after_seconds(exc))
    if isinstance(exc, Forbidden):
        return Undeliverable("forbidden")
    if isinstance(exc, BadRequest):
        return Undeliverable("bad_request")
    if isinstance(exc, NetworkError):
        # Time-outs, lost connections and 5xx: Telegram may have delivered it anyway.
        return MaybeDelivered(type(exc).__name__)
    return MaybeDelivered("telegram_error")


class TelegramChannel:
    """`bot.channel.Channel` over python-telegram-bot's `Bot`."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def deliver(self, chat: ChatAddress, reply: Reply) -> int:
        try:
            # `send_message` with its answer left raw: only the id is needed, and turning the
            # answer into a `Message` (the keyboard comes back in it) was measured as a fifth
            # of the bot's CPU under load. Method names are case-insensitive in the Bot API;
            # the lower-case spelling keeps PTB from suggesting `send_message` instead.
            sent = await self.bot.do_api_request(
                "sendmessage",
                api_kwargs={
                    "chat_id": chat,
                    "text": reply.html,
                    "parse_mode": ParseMode.HTML,
                    "reply_markup": markup(reply),
                    "protect_content": reply.protect,
                    "link_preview_options": LinkPreviewOptions(is_disabled=True),
                },
            )
        except TelegramError as exc:
            raise _classify(exc) from None
        return int(sent["message_id"])

    async def delete(self, chat: ChatAddress, message_ids: Sequence[int]) -> None:
        try:
            await self.bot.delete_messages(chat, list(message_ids))
        except TelegramError as exc:
            raise _classify(exc) from None

    async def acknowledge(self, press_id: str) -> None:
        try:
            await self.bot.answer_callback_query(press_id)
        except TelegramError as exc:
            # Too old, or answered already (a redelivered update): nothing to do.
            log.debug("press not acknowledged: %s", type(exc).__name__)


def build_application(token: str, api_base_url: str) -> Application:  # type: ignore[type-arg]
    """PTB's Application as the Bot API client: transports and 429 handling. Updates do not
    go through its handlers: the durable inbox and the turn runner own them."""
    builder: Any = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_base_url)
        .base_file_url(api_base_url.replace("/bot", "/file/bot", 1))
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(read_timeout=40.0))
        # No rate limiter: the outbox paces and retries replies itself, and a 429 reaches the
        # caller (the outbox, or the notices' own retry).
        .arbitrary_callback_data(False)
        .updater(None)
    )
    application: Application = builder.build()  # type: ignore[type-arg]
    return application


def profile_languages(ctx: Context) -> list[tuple[str | None, str]]:
    """(Telegram language_code, catalogue language) for the per-language menu and profile:
    the default (no code) first, then each enabled language the default does not cover.
    Telegram takes only two-letter ISO 639-1 codes there, so a language without one (Sorani
    `ckb`, Kurmanji `kmr`) has none: its speakers' phones report another language anyway,
    and they get the default menu while the chat itself speaks theirs. Dari shares "fa" with
    Persian: the first one enabled wins."""
    default = ctx.deployment.default_language
    out: list[tuple[str | None, str]] = [(None, default)]
    for language in ctx.deployment.languages:
        code = language.replace("-", "_").split("_")[0]
        two_letters = len(code) == 2 and code.isascii() and code.isalpha()
        if two_letters and code != default.split("_")[0] and all(code != c for c, _l in out):
            out.append((code, language))
    return out


async def set_profile(application: Application, ctx: Context) -> int:  # type: ignore[type-arg]
    """The bot's name, description and short description in every enabled language. Each is
    read first and written only if it differs: Telegram allows few changes of a name a day.
    Returns how many were written."""
    bot = application.bot
    written = 0
    for code, language in profile_languages(ctx):
        tr = ctx.catalogs.get(language)
        for field, text in ctx.flow.profile.items():
            wanted = tr.gettext(text)
            getter, setter = _PROFILE_CALLS[field]
            current = await bot.do_api_request(getter, api_kwargs={"language_code": code})
            if isinstance(current, dict) and current.get(field) == wanted:
                continue
            await bot.do_api_request(setter, api_kwargs={field: wanted, "language_code": code})
            written += 1
    return written


# Raw method names: PTB's helpers return typed objects this does not need.
_PROFILE_CALLS = {
    "name": ("getmyname", "setmyname"),
    "description": ("getmydescription", "setmydescription"),
    "short_description": ("getmyshortdescription", "setmyshortdescription"),
}


async def set_commands(application: Application, ctx: Context) -> None:  # type: ignore[type-arg]
    """The command menu in every shipped language (Telegram picks by the client's language)."""
    flow, catalogs = ctx.flow, ctx.catalogs
    for code, language in profile_languages(ctx):
        tr = catalogs.get(language)
        commands = [
            BotCommand(name, tr.gettext(text)[:256]) for name, text in flow.commands.items()
        ]
        await application.bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(), language_code=code
        )
