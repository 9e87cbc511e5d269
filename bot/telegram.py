"""The Telegram channel: updates in, events to the engine, replies out.

Only private chats are served. Every update is translated into one engine event by
`to_event` (pure); every reply is sent as HTML with an inline keyboard. Telegram ids go no
further than the keyed hash the service computes; nothing here logs them or any text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.processor import PerChatUpdateProcessor
from bot.ratelimit import InMemorySendBudget, RetryingRateLimiter
from bot.service import ConversationService
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
from flows.i18n import negotiate
from flows.replies import Reply

log = logging.getLogger("safebot.telegram")

CHANNEL = "telegram"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
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


def to_event(update: Update) -> Event | None:
    """The engine event an update stands for; None for updates that need no answer."""
    if update.callback_query is not None:
        return ButtonPressed(update.callback_query.data or "")
    if update.edited_message is not None:
        return NonTextReceived("edited")
    message = update.message
    if message is None:
        return None
    if message.text is not None:
        command = _command(message)
        if command is None:
            return TextReceived(message.text)
        name, argument = command
        if name == "start":
            user = message.from_user
            return Started(payload=argument, language_hint=user.language_code if user else None)
        if name == "exit":
            return QuickExitRequested()
        return CommandReceived(name, argument)
    kind = next((k for k in _NON_TEXT_KINDS if getattr(message, k, None)), "other")
    return NonTextReceived(kind)


def _command(message: Message) -> tuple[str, str] | None:
    """A bot command at offset 0, as Telegram marks it with an entity."""
    text = message.text or ""
    for entity in message.entities or ():
        if entity.type == "bot_command" and entity.offset == 0:
            name = text[1 : entity.length].split("@", 1)[0].lower()
            return name, text[entity.length :].strip()
    return None


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


class TelegramChannel:
    def __init__(self, service: ConversationService) -> None:
        self.service = service

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None or chat.type != ChatType.PRIVATE:
            return
        event = to_event(update)
        if event is None:
            return
        incoming = update.message.message_id if update.message is not None else None
        try:
            turn = await self.service.handle(
                CHANNEL,
                str(user.id),
                event,
                update_id=update.update_id,
                incoming_message_id=incoming,
            )
        except Exception:
            # Nothing was committed. Say so rather than stay silent: the person may have just
            # pressed Send, and must never think a request went through when it did not.
            await context.bot.send_message(chat.id, self.apology(user.language_code))
            raise
        if turn.duplicate:
            log.info("duplicate update ignored")
            return
        if update.callback_query is not None:
            # Answered after the turn (a database round trip), so that a redelivered update,
            # already answered the first time, is not answered twice. The client shows a
            # spinner until then.
            try:
                await update.callback_query.answer()
            except BadRequest:
                pass  # too old: Telegram gave up waiting
        bot = context.bot
        if turn.delete_message_ids:
            deleted = await self.delete_messages(context, chat.id, turn.delete_message_ids)
            await self.service.messages_deleted(turn.chat_key, deleted)
        sent: list[int] = []
        try:
            for reply in turn.replies:
                message = await bot.send_message(
                    chat.id,
                    reply.html,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup(reply),
                    protect_content=reply.protect,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                sent.append(message.message_id)
        finally:
            await self.service.remember_sent(turn.chat_key, sent)
        if turn.request_stored:
            notifier = context.bot_data.get("notices")
            if notifier is not None:
                notifier.wake()

    def apology(self, language_code: str | None) -> str:
        ctx = self.service.ctx
        language = negotiate(
            language_code, ctx.deployment.languages, ctx.deployment.default_language
        )
        return ctx.catalogs.get(language).gettext(ctx.flow.string("turn_failed"))

    async def delete_messages(
        self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, ids: Sequence[int]
    ) -> list[int]:
        """Delete in batches; return the ids whose batch Telegram accepted."""
        unique = sorted(set(ids))
        done: list[int] = []
        for start in range(0, len(unique), DELETE_BATCH):
            batch = unique[start : start + DELETE_BATCH]
            try:
                await context.bot.delete_messages(chat_id, batch)
                done += batch
            except TelegramError as exc:
                # Too old (48 h) or already gone: the neutral line still tells the person how
                # to delete the chat from the device.
                log.warning("delete_messages failed: %s", type(exc).__name__)
        return done


def build_application(
    token: str,
    api_base_url: str,
    channel: TelegramChannel,
    *,
    chat_send_rate: float = 1.0,
) -> Application:  # type: ignore[type-arg]
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(api_base_url)
        .base_file_url(api_base_url.replace("/bot", "/file/bot", 1))
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(read_timeout=40.0))
        .concurrent_updates(PerChatUpdateProcessor(256))
        .rate_limiter(RetryingRateLimiter(InMemorySendBudget(chat_rate=chat_send_rate)))
        # No PTB persistence: state lives in safebot's database, written in each turn.
        .arbitrary_callback_data(False)
    )
    # No PTB Updater in either mode: polling confirms updates only once they are handled
    # (bot/polling.py); webhooks arrive through the project's own aiohttp server.
    application = builder.updater(None).build()
    application.add_handler(TypeHandler(Update, channel.on_update))
    application.add_error_handler(_on_error)
    return application


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # The exception's type only: messages may carry request parameters.
    log.error("update handling failed: %s", type(context.error).__name__)


async def set_commands(application: Application, ctx: Context) -> None:  # type: ignore[type-arg]
    """The command menu in every shipped language (Telegram picks by the client's language)."""
    flow, catalogs = ctx.flow, ctx.catalogs
    for language in (None, *ctx.deployment.languages):
        tr = catalogs.get(language or ctx.deployment.default_language)
        commands = [
            BotCommand(name, tr.gettext(text)[:256]) for name, text in flow.commands.items()
        ]
        code = None if language is None else language.split("_")[0]
        if code == ctx.deployment.default_language.split("_")[0] and language is not None:
            continue  # the default set already covers it
        await application.bot.set_my_commands(
            commands, scope=BotCommandScopeAllPrivateChats(), language_code=code
        )
