"""A local, strict emulator of the Telegram Bot API for safebot's end-to-end tests.

The e2e tests run the real python-telegram-bot ``Application`` over HTTP against this server
(``ApplicationBuilder().base_url(emu.api_url).base_file_url(emu.file_url)``); requests arrive as
``POST /bot<TOKEN>/<method>`` (GET is accepted too). Parameters may come as a query string, a
JSON body, form-urlencoded or multipart data. PTB 22 (httpx transport) posts
form-urlencoded data where every non-string value is JSON-encoded: ints as ``"123"``, bools as
``"true"``, objects such as ``reply_markup`` as JSON strings. The emulator normalises all of
these before validating, and records the normalised parameters in ``emu.calls``.

Why strict: a test that passes here should not be refused by Telegram. The emulator enforces
(see /work/shared/telegram-limits.md):

* text 1-4096 UTF-16 code units *after* entity parsing and trimming of surrounding whitespace
  ("message text is empty" / "message is too long");
* ``parse_mode`` HTML with Telegram's tag set only, balanced and properly nested tags, and
  ``<``, ``>`` and ``&`` escaped unless part of a tag or of ``&lt; &gt; &amp; &quot; &#NN;
  &#xHH;`` ("can't parse entities: ..."). The real server silently accepts a bare ``>`` and a
  ``&`` that starts no entity; the emulator refuses them, as the documentation demands, so
  that every piece of dynamic text is escaped. MarkdownV2 (reserved characters must be
  escaped, entities must be closed) and legacy Markdown are parsed too;
* inline keyboards: arrays of arrays, non-empty button text, exactly one action field,
  ``callback_data`` 1-64 *bytes* of UTF-8 ("BUTTON_DATA_INVALID"), URL buttons http/https/tg;
* known private chats only (the user must have written to the bot first), blocked users (403);
* deletion of missing or deleted messages, messages older than 48 hours (injectable clock);
* edits of missing messages and edits that change nothing ("message is not modified"); an
  ``editMessageText`` without ``reply_markup`` removes the inline keyboard, as on Telegram;
* callback queries may be answered once (and within ``callback_answer_timeout`` seconds);
* bot commands (``[a-z0-9_]{1,32}``, description 1-256, <= 100, per scope and two-letter
  language code), name/description/short-description lengths;
* polling and a webhook cannot both be used (409); a second ``getUpdates`` terminates the first
  (409), as when two bot instances run;
* webhook deliveries carry ``X-Telegram-Bot-Api-Secret-Token``; a non-2xx answer or a
  connection error is retried with a short bounded backoff, and updates of one chat are
  delivered in order. ``deliver_twice_next()`` delivers the next update twice (same
  ``update_id``) to test idempotency.

Not emulated: groups and channels, inline mode, payments, file uploads/downloads, automatic
URL/mention entity detection in bot messages. Unknown methods answer 404 "Not Found".
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_DELETE_IDS = 100
MAX_COMMANDS = 100
DELETE_WINDOW_SECONDS = 48 * 3600
BOT_USERNAME = "safebot_test_bot"
BOT_FIRST_NAME = "SafeBot Test"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_INT_RE = re.compile(r"-?\d+")
_BOT_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
FAULT_KINDS = ("500", "502", "drop", "lost_answer", "hang", "429")
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Methods that do not count as bot "activity" when tests wait for the bot to go quiet.
_PASSIVE_METHODS = frozenset({"getUpdates", "getMe", "getWebhookInfo"})

_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "max_connections",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "user_id",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "protect_content",
        "disable_notification",
        "disable_web_page_preview",
        "show_alert",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "allow_paid_broadcast",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
        "entities",
        "caption_entities",
        "allowed_updates",
        "message_ids",
        "menu_button",
    }
)


def utf16_len(text: str) -> int:
    """Length of ``text`` the way Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class ApiError(Exception):
    """An error answer of the Bot API: ``{"ok": false, "error_code", "description"}``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return body


def _bad(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


class EntityParseError(Exception):
    """Raised by the formatting parsers; becomes "Bad Request: can't parse entities: ..."."""


# --------------------------------------------------------------------------- formatting


class _Builder:
    """Accumulates parsed text and tracks the current UTF-16 offset."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8", "surrogatepass"))


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_UNQUOTED_VALUE_RE = re.compile(r"[^\s>\"'<=`]+")
_HTML_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6}));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass
class _OpenTag:
    name: str
    start: int
    attrs: dict[str, str]
    language: str | None = None


def _decode_entity(src: str, i: int, end: int) -> tuple[str, int]:
    """Decode the HTML entity at ``src[i]`` (an ``&``); return (character, index after it)."""
    match = _HTML_ENTITY_RE.match(src, i, end)
    if match is None:
        raise EntityParseError(
            f'Character "&" must be escaped as "&amp;" at byte offset {_byte_offset(src, i)}'
        )
    if match.group(1):
        return _NAMED_ENTITIES[match.group(1)], match.end()
    code = int(match.group(2)) if match.group(2) else int(match.group(3), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(f"Invalid character reference at byte offset {_byte_offset(src, i)}")
    return chr(code), match.end()


def _html_unescape(src: str, start: int, end: int) -> str:
    """Decode ``src[start:end]``; every ``&`` must start a supported entity."""
    out: list[str] = []
    i = start
    while i < end:
        amp = src.find("&", i, end)
        if amp == -1:
            out.append(src[i:end])
            break
        out.append(src[i:amp])
        char, i = _decode_entity(src, amp, end)
        out.append(char)
    return "".join(out)


def parse_html(src: str) -> tuple[str, list[JSON]]:
    """Parse Telegram-HTML strictly; return the plain text and its entities."""
    out = _Builder()
    stack: list[_OpenTag] = []
    entities: list[JSON] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == ">":
            raise EntityParseError(
                f'Character ">" must be escaped as "&gt;" at byte offset {_byte_offset(src, i)}'
            )
        if char == "&":
            decoded, i = _decode_entity(src, i, n)
            out.add(decoded)
        elif char != "<":
            j = i
            while j < n and src[j] not in "<>&":
                j += 1
            out.add(src[i:j])
            i = j
        elif src.startswith("</", i):
            i = _html_close_tag(src, i, stack, out.pos, entities)
        else:
            i = _html_open_tag(src, i, stack, out.pos)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


def _skip_space(src: str, j: int) -> int:
    while j < len(src) and src[j].isspace():
        j += 1
    return j


def _html_open_tag(src: str, i: int, stack: list[_OpenTag], pos: int) -> int:
    offset = _byte_offset(src, i)
    match = _TAG_NAME_RE.match(src, i + 1)
    if match is None:
        raise EntityParseError(f'Unsupported start tag "" at byte offset {offset}')
    name = match.group().lower()
    if name not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs: dict[str, str] = {}
    j, n = match.end(), len(src)
    while True:
        j = _skip_space(src, j)
        if j >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
        if src[j] == ">":
            j += 1
            break
        attr_match = _ATTR_NAME_RE.match(src, j)
        if attr_match is None:
            raise EntityParseError(
                f'Empty attribute name in the tag "{name}" at byte offset {offset}'
            )
        attr = attr_match.group().lower()
        j = _skip_space(src, attr_match.end())
        value = ""
        if j < n and src[j] == "=":
            j = _skip_space(src, j + 1)
            if j >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
            if src[j] in "\"'":
                end = src.find(src[j], j + 1)
                if end == -1:
                    raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
                if "<" in src[j + 1 : end]:
                    raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
                value = _html_unescape(src, j + 1, end)
                j = end + 1
            else:
                value_match = _UNQUOTED_VALUE_RE.match(src, j)
                if value_match is None:
                    raise EntityParseError(
                        f'Expected a value of the attribute "{attr}" at byte offset {offset}'
                    )
                value = _html_unescape(src, j, value_match.end())
                j = value_match.end()
        attrs[attr] = value
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError('Tag "span" must have class "tg-spoiler"')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError('Tag "tg-emoji" must have a numeric "emoji-id" attribute')
    stack.append(_OpenTag(name, pos, attrs))
    return j


def _html_close_tag(src: str, i: int, stack: list[_OpenTag], pos: int, entities: list[JSON]) -> int:
    offset = _byte_offset(src, i)
    end = src.find(">", i)
    if end == -1:
        raise EntityParseError(f"Unclosed end tag at byte offset {offset}")
    name = src[i + 2 : end].strip().lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
    tag = stack.pop()
    if name != tag.name:
        raise EntityParseError(
            f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", '
            f'found "</{name}>"'
        )
    kind = _HTML_TAGS[tag.name]
    if tag.name == "code" and stack and stack[-1].name == "pre":
        css = tag.attrs.get("class", "")
        if css.startswith("language-"):
            stack[-1].language = css[len("language-") :]
        return end + 1
    length = pos - tag.start
    if length == 0:
        return end + 1
    entity: JSON = {"type": kind, "offset": tag.start, "length": length}
    if kind == "text_link":
        if not tag.attrs.get("href"):
            return end + 1
        entity["url"] = tag.attrs["href"]
    elif kind == "pre" and tag.language:
        entity["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    entities.append(entity)
    return end + 1


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_TYPES = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "[": ("text_link", "TextUrl"),
}


def _mdv2_until(src: str, i: int, closing: str, what: str, start: int) -> tuple[str, int]:
    """Read escaped content up to ``closing``; return (content, index after closing)."""
    out: list[str] = []
    n = len(src)
    while i < n:
        if src[i] == "\\" and i + 1 < n:
            out.append(src[i + 1])
            i += 2
        elif src.startswith(closing, i):
            return "".join(out), i + len(closing)
        else:
            out.append(src[i])
            i += 1
    raise EntityParseError(f"Can't find end of {what} at byte offset {_byte_offset(src, start)}")


def parse_markdown_v2(src: str) -> tuple[str, list[JSON]]:
    """Parse MarkdownV2 strictly (reserved characters must be escaped)."""
    out = _Builder()
    entities: list[JSON] = []
    stack: list[tuple[str, int, int]] = []  # (delimiter, output offset, source index)
    quote_start: int | None = None
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        line_start = i == 0 or src[i - 1] == "\n"
        if line_start and quote_start is not None and char != ">":
            entities.append(
                {"type": "blockquote", "offset": quote_start, "length": out.pos - 1 - quote_start}
            )
            quote_start = None
        if line_start and char == ">":
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if char == "\\":
            if i + 1 < n and 0 < ord(src[i + 1]) <= 126:
                out.add(src[i + 1])
                i += 2
                continue
            raise EntityParseError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if char not in _MDV2_RESERVED:
            out.add(char)
            i += 1
            continue
        start = out.pos
        if src.startswith("```", i):
            body, i = _mdv2_until(src, i + 3, "```", "Pre entity", i)
            language, newline, rest = body.partition("\n")
            if newline and language and not any(c.isspace() for c in language):
                body = rest
            else:
                language = ""
            out.add(body)
            entity: JSON = {"type": "pre", "offset": start, "length": out.pos - start}
            if language:
                entity["language"] = language
            entities.append(entity)
        elif char == "`":
            body, i = _mdv2_until(src, i + 1, "`", "Code entity", i)
            out.add(body)
            entities.append({"type": "code", "offset": start, "length": out.pos - start})
        elif char == "]" and stack and stack[-1][0] == "[":
            _, link_start, source = stack.pop()
            if not src.startswith("(", i + 1):
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(src, source)}"
                )
            url, i = _mdv2_until(src, i + 2, ")", "a URL", i)
            if out.pos > link_start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": link_start,
                        "length": out.pos - link_start,
                        "url": url,
                    }
                )
        elif char in "*~_[" or src.startswith("||", i):
            delimiter = "__" if src.startswith("__", i) else "||" if char == "|" else char
            if delimiter != "[" and stack and stack[-1][0] == delimiter:
                _, entity_start, _ = stack.pop()
                if out.pos > entity_start:
                    entities.append(
                        {
                            "type": _MDV2_TYPES[delimiter][0],
                            "offset": entity_start,
                            "length": out.pos - entity_start,
                        }
                    )
            else:
                stack.append((delimiter, start, i))
            i += len(delimiter)
        else:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
    if quote_start is not None:
        entities.append(
            {"type": "blockquote", "offset": quote_start, "length": out.pos - quote_start}
        )
    if stack:
        delimiter, _, source = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MDV2_TYPES[delimiter][1]} entity at byte offset "
            f"{_byte_offset(src, source)}"
        )
    entities = [e for e in entities if e["length"] > 0]
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


def parse_markdown(src: str) -> tuple[str, list[JSON]]:
    """Parse legacy Markdown (``*bold* _italic_ `code` ```pre``` [text](url)``)."""
    out = _Builder()
    entities: list[JSON] = []
    i, n = 0, len(src)
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        char = src[i]
        if char == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if char not in "*_`[":
            out.add(char)
            i += 1
            continue
        start = out.pos
        error = EntityParseError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
        )
        entity: JSON
        if src.startswith("```", i):
            end = src.find("```", i + 3)
            if end == -1:
                raise error
            out.add(src[i + 3 : end])
            entity = {"type": "pre", "offset": start, "length": out.pos - start}
            i = end + 3
        elif char == "[":
            close = src.find("]", i + 1)
            if close == -1 or not src.startswith("(", close + 1):
                raise error
            url_end = src.find(")", close + 2)
            if url_end == -1:
                raise error
            out.add(src[i + 1 : close])
            entity = {
                "type": "text_link",
                "offset": start,
                "length": out.pos - start,
                "url": src[close + 2 : url_end],
            }
            i = url_end + 1
        else:
            end = src.find(char, i + 1)
            if end == -1:
                raise error
            out.add(src[i + 1 : end])
            entity = {"type": kinds[char], "offset": start, "length": out.pos - start}
            i = end + 1
        if entity["length"] > 0:
            entities.append(entity)
    return out.text(), entities


_PARSERS: dict[str, Callable[[str], tuple[str, list[JSON]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def format_text(text: Any, parse_mode: Any, entities: Any = None) -> tuple[str, list[JSON]]:
    """Validate message text as Telegram does; return (visible text, entities)."""
    if parse_mode is not None and not isinstance(parse_mode, str):
        raise _bad("unsupported parse_mode")
    mode = (parse_mode or "").lower()
    if mode and mode not in _PARSERS:
        raise _bad("unsupported parse_mode")
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = str(text)
    if text is None or not isinstance(text, str):
        raise _bad("message text is empty")
    if mode:
        try:
            plain, parsed = _PARSERS[mode](text)
        except EntityParseError as exc:
            raise _bad(f"can't parse entities: {exc}") from None
    else:
        plain = text
        if entities is not None and not isinstance(entities, list):
            raise _bad("can't parse entities JSON object")
        parsed = list(entities or [])
    plain, parsed = _trim(plain, parsed)
    if not plain:
        raise _bad("message text is empty")
    if utf16_len(plain) > MAX_TEXT_LENGTH:
        raise _bad("message is too long")
    return plain, parsed


def _trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    result: list[JSON] = []
    for entity in entities:
        start = max(int(entity.get("offset", 0)) - lead, 0)
        end = min(int(entity.get("offset", 0)) + int(entity.get("length", 0)) - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


# --------------------------------------------------------------------------- keyboards

_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
    "web_app",
)


def _valid_url(url: Any, schemes: tuple[str, ...] = ("http", "https", "tg")) -> bool:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        return False
    return parts.scheme.lower() == "tg" or bool(parts.netloc)


def validate_reply_markup(value: Any, *, inline_only: bool = False) -> JSON | None:
    """Validate ``reply_markup``; return it normalised (``None`` for an empty keyboard)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _bad("can't parse reply keyboard markup JSON object") from None
    if not isinstance(value, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in value:
        return _validate_inline_keyboard(value)
    if inline_only:
        raise _bad("inline keyboard expected")
    if "keyboard" in value:
        rows = value["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text.strip():
                    raise _bad("can't parse keyboard button: text must be non-empty")
        placeholder = value.get("input_field_placeholder")
        if placeholder is not None and not (
            isinstance(placeholder, str) and 1 <= len(placeholder) <= 64
        ):
            raise _bad("input field placeholder must be 1-64 characters")
        return value
    if value.get("remove_keyboard") is True or value.get("force_reply") is True:
        return value
    raise _bad("can't parse reply keyboard markup JSON object")


def _validate_inline_keyboard(markup: JSON) -> JSON | None:
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    total = 0
    for row in rows:
        if not isinstance(row, list):
            raise _bad(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for button in row:
            if not isinstance(button, dict):
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            text = button.get("text")
            if not isinstance(text, str):
                raise _bad("can't parse inline keyboard button: Can't find field \"text\"")
            if not text.strip():
                raise _bad("BUTTON_TEXT_INVALID")
            actions = [key for key in _BUTTON_ACTIONS if button.get(key) is not None]
            if not actions:
                raise _bad("text buttons are unallowed in the inline keyboard")
            if len(actions) > 1:
                raise _bad(
                    "can't parse inline keyboard button: exactly one of the optional "
                    f"fields must be used, got {actions}"
                )
            if "callback_data" in actions:
                data = button["callback_data"]
                try:
                    size = len(data.encode("utf-8")) if isinstance(data, str) else 0
                except UnicodeEncodeError:
                    size = 0
                if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
            if "url" in actions and not _valid_url(button["url"]):
                raise _bad("BUTTON_URL_INVALID")
            if "web_app" in actions and not (
                isinstance(button["web_app"], dict)
                and _valid_url(button["web_app"].get("url"), ("https",))
            ):
                raise _bad("BUTTON_URL_INVALID")
            total += 1
    if total > 100:
        raise _bad("reply markup is too long")
    return markup if total else None


# --------------------------------------------------------------------------- chat model


@dataclass
class ChatMessage:
    """One message in an emulated private chat (sent by the user or by the bot)."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    kind: str = "text"  # text, photo, sticker, voice, location, document, contact
    text: str | None = None  # visible text (after entity parsing) or caption
    source_text: str | None = None  # text exactly as the bot sent it (with markup)
    parse_mode: str | None = None
    entities: list[JSON] = field(default_factory=list)
    reply_markup: JSON | None = None  # inline keyboard, reply keyboard, remove/force reply
    protect_content: bool = False
    reply_to: int | None = None
    deleted: bool = False
    edits: list[JSON] = field(default_factory=list)  # earlier versions, oldest first
    payload: JSON = field(default_factory=dict)  # the Message object as Telegram returns it
    seq: int = 0  # global order of bot messages (used by the reply cursors)

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    @property
    def inline_keyboard(self) -> list[list[JSON]]:
        if self.reply_markup is None:
            return []
        rows: list[list[JSON]] = self.reply_markup.get("inline_keyboard", [])
        return rows

    def buttons(self) -> list[JSON]:
        return [button for row in self.inline_keyboard for button in row]

    def button_texts(self) -> list[str]:
        return [str(button["text"]) for button in self.buttons()]

    def find_button(self, target: str) -> JSON | None:
        """The inline button whose text, or else whose callback_data, equals ``target``."""
        buttons = self.buttons()
        for button in buttons:
            if button.get("text") == target:
                return button
        for button in buttons:
            if button.get("callback_data") == target:
                return button
        return None


class Chat:
    """A private chat between one emulated user and the bot (chat id == user id)."""

    def __init__(self, user: EmulatedUser, ids: Iterator[int] | None = None) -> None:
        self.id = user.id
        self.user = user
        self.messages: list[ChatMessage] = []
        self.started = False  # the user has written to the bot
        self.blocked = False
        self._by_id: dict[int, ChatMessage] = {}
        # Shared with every chat when the emulator counts ids across chats, as Telegram may:
        # then a chat's ids are increasing but never consecutive.
        self._ids = ids if ids is not None else itertools.count(1)

    def next_message_id(self) -> int:
        return next(self._ids)

    def add(self, message: ChatMessage) -> None:
        self.messages.append(message)
        self._by_id[message.message_id] = message

    def get(self, message_id: int) -> ChatMessage | None:
        """A message by id, deleted or not."""
        return self._by_id.get(message_id)

    @property
    def deleted_ids(self) -> set[int]:
        return {m.message_id for m in self.messages if m.deleted}

    def visible(self) -> list[ChatMessage]:
        return [m for m in self.messages if not m.deleted]

    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self.messages if m.from_bot and not m.deleted]

    def user_messages(self) -> list[ChatMessage]:
        return [m for m in self.messages if not m.from_bot and not m.deleted]

    def as_dict(self) -> JSON:
        chat: JSON = {"id": self.id, "type": "private", "first_name": self.user.first_name}
        if self.user.last_name:
            chat["last_name"] = self.user.last_name
        if self.user.username:
            chat["username"] = self.user.username
        return chat

    def __iter__(self) -> Iterator[ChatMessage]:
        return iter(self.visible())

    def __len__(self) -> int:
        return len(self.visible())

    def __getitem__(self, index: int) -> ChatMessage:
        return self.visible()[index]


class EmulatedUser:
    """A Telegram user talking to the bot. Obtain one with ``emu.user(...)``."""

    def __init__(
        self,
        emu: BotApiEmulator,
        user_id: int,
        first_name: str,
        language_code: str | None,
        username: str | None = None,
        last_name: str | None = None,
    ) -> None:
        self.emu = emu
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.last_name = last_name
        self._cursor = 0  # bot messages with seq > cursor are "new"

    def as_dict(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        return user

    @property
    def chat(self) -> Chat:
        return self.emu.chat(self.id)

    def bot_messages(self) -> list[ChatMessage]:
        return self.chat.bot_messages()

    def last_bot_message(self) -> ChatMessage:
        messages = self.bot_messages()
        if not messages:
            raise LookupError(f"no visible bot message in chat {self.id}")
        return messages[-1]

    def block(self) -> None:
        """The user blocks the bot: sends to this chat then fail with 403."""
        self.chat.blocked = True

    def unblock(self) -> None:
        self.chat.blocked = False

    # -- acting as the user -------------------------------------------------------------

    async def send_text(self, text: str, *, entities: list[JSON] | None = None) -> int:
        """Send a text message; ``/commands`` get ``bot_command`` entities as on Telegram."""
        if entities is None:
            entities = [
                {
                    "type": "bot_command",
                    "offset": utf16_len(text[: m.start()]),
                    "length": utf16_len(m.group()),
                }
                for m in _BOT_COMMAND_RE.finditer(text)
            ]
        fields: JSON = {"text": text}
        if entities:
            fields["entities"] = entities
        return await self._send("text", fields, text)

    async def send_command(self, command: str, args: str | None = None) -> int:
        command = command if command.startswith("/") else f"/{command}"
        text = f"{command} {args}" if args else command
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
        return await self.send_text(text, entities=[entity])

    async def send_photo(self, caption: str | None = None) -> int:
        sizes = [(90, 68, 1_500), (320, 240, 18_000), (1280, 960, 120_000)]
        photo = [self.emu.file("AgAC", width=w, height=h, file_size=s) for w, h, s in sizes]
        return await self._send("photo", _with_caption({"photo": photo}, caption), caption)

    async def send_sticker(self, emoji: str = "👍") -> int:
        sticker = self.emu.file(
            "CAAC",
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
            emoji=emoji,
        )
        return await self._send("sticker", {"sticker": sticker}, None)

    async def send_voice(self, duration: int = 3) -> int:
        voice = self.emu.file("AwAC", duration=duration, mime_type="audio/ogg", file_size=9_000)
        return await self._send("voice", {"voice": voice}, None)

    async def send_location(self, latitude: float = 51.5072, longitude: float = -0.1276) -> int:
        location = {"latitude": latitude, "longitude": longitude}
        return await self._send("location", {"location": location}, None)

    async def send_document(
        self,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> int:
        document = self.emu.file("BQAC", file_name=file_name, mime_type=mime_type, file_size=42_000)
        return await self._send("document", _with_caption({"document": document}, caption), caption)

    async def send_contact(self, phone_number: str = "+447700900123", *, own: bool = True) -> int:
        contact: JSON = {"phone_number": phone_number, "first_name": self.first_name}
        if own:
            contact["user_id"] = self.id
        return await self._send("contact", {"contact": contact}, None)

    async def edit_message(self, message_id: int, new_text: str) -> int:
        """Edit one of the user's own text messages (an ``edited_message`` update)."""
        message = self.chat.get(message_id)
        if message is None or message.deleted or message.from_bot or message.kind != "text":
            raise LookupError(f"user message {message_id} cannot be edited")
        message.edits.append({"text": message.text, "date": message.payload.get("edit_date")})
        message.text = new_text
        message.payload["text"] = new_text
        message.payload.pop("entities", None)
        message.payload["edit_date"] = int(self.emu.now())
        self._cursor = self.emu._seq
        self.emu._enqueue("edited_message", message.payload, self.id)
        await asyncio.sleep(0)
        return message_id

    async def press(self, target: str, message_id: int | None = None) -> str:
        """Press an inline button (by text or callback_data) on the newest bot message that
        has it, or on ``message_id``; returns the callback query id."""
        chat = self.chat
        candidates = [chat.get(message_id)] if message_id is not None else chat.bot_messages()
        for message in reversed(candidates):
            if message is None or message.deleted or not message.from_bot:
                continue
            button = message.find_button(target)
            if button is None:
                continue
            if "callback_data" not in button:
                raise ValueError(f"button {target!r} is not a callback button: {button}")
            return await self.press_data(message.message_id, str(button["callback_data"]))
        shown = {m.message_id: m.button_texts() for m in chat.bot_messages() if m.buttons()}
        raise LookupError(f"no inline button {target!r} in chat {self.id}; buttons: {shown}")

    async def press_data(self, message_id: int, data: str) -> str:
        """Send a callback query with arbitrary ``data`` (forged or stale) for a message."""
        message = self.chat.get(message_id)
        if message is None or message.deleted or not message.from_bot:
            raise LookupError(f"no visible bot message {message_id} in chat {self.id}")
        query_id = self.emu._new_callback_query(self.id)
        query = {
            "id": query_id,
            "from": self.as_dict(),
            "message": message.payload,
            "chat_instance": str(self.emu.bot_id * 1_000_003 + self.id),
            "data": data,
        }
        self._cursor = self.emu._seq
        self.emu._enqueue("callback_query", query, self.id)
        await asyncio.sleep(0)
        return query_id

    async def _send(self, kind: str, fields: JSON, text: str | None) -> int:
        emu = self.emu
        chat = self.chat
        chat.started = True
        chat.blocked = False
        message_id = chat.next_message_id()
        payload: JSON = {
            "message_id": message_id,
            "from": self.as_dict(),
            "chat": chat.as_dict(),
            "date": int(emu.now()),
            **fields,
        }
        chat.add(
            ChatMessage(
                message_id=message_id,
                chat_id=chat.id,
                from_bot=False,
                date=payload["date"],
                kind=kind,
                text=text,
                entities=list(fields.get("entities", [])),
                payload=payload,
            )
        )
        self._cursor = emu._seq
        emu._enqueue("message", payload, chat.id)
        await asyncio.sleep(0)
        return message_id

    # -- waiting for the bot ------------------------------------------------------------

    async def next_replies(
        self, count: int = 1, *, timeout: float = 5.0, quiet: float = 0.15
    ) -> list[ChatMessage]:
        """Wait until at least ``count`` bot messages arrived in this chat since the user's
        last action or wait, and the bot has gone quiet (every update handed over, no API
        call for ``quiet`` seconds). Returns the new messages (deleted ones included, flagged).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            new = [m for m in self.chat.messages if m.from_bot and m.seq > self._cursor]
            if len(new) >= count and self.emu._is_quiet(quiet):
                break
            if loop.time() >= deadline:
                if len(new) >= count:
                    break
                raise AssertionError(
                    f"expected {count} new bot message(s) in chat {self.id} within {timeout}s, "
                    f"got {len(new)}: {[m.text for m in new]}; "
                    f"recent refused calls: {self.emu.errors[-5:]}"
                )
            await asyncio.sleep(0.01)
        self._cursor = self.emu._seq
        return new

    async def wait_for_bot_messages(self, count: int, timeout: float = 5.0) -> list[ChatMessage]:
        return await self.next_replies(count, timeout=timeout)

    async def settle(self, *, timeout: float = 5.0, quiet: float = 0.15) -> list[ChatMessage]:
        """Wait until the bot is quiet; return whatever new bot messages arrived (maybe none)."""
        return await self.next_replies(0, timeout=timeout, quiet=quiet)

    @contextlib.asynccontextmanager
    async def expect_replies(
        self, count: int = 1, *, timeout: float = 5.0
    ) -> AsyncIterator[list[ChatMessage]]:
        """``async with user.expect_replies(2) as replies: await user.send_text("hi")``."""
        replies: list[ChatMessage] = []
        self._cursor = self.emu._seq
        yield replies
        replies.extend(await self.next_replies(count, timeout=timeout))


def _with_caption(fields: JSON, caption: str | None) -> JSON:
    if caption:
        fields["caption"] = caption
    return fields


# --------------------------------------------------------------------------- the server


@dataclass
class WebhookDelivery:
    update_id: int
    status: int | None  # HTTP status, None on a connection error
    ok: bool
    error: str | None = None


@dataclass
class _Pending:
    update: JSON
    chat_key: int
    duplicate: bool = False
    attempts: int = 0
    retry_at: float = 0.0
    inflight: bool = False


@dataclass
class _CallbackQuery:
    user_id: int
    created: float
    answered: bool = False


Handler = Callable[[JSON], Awaitable[Any]]


class BotApiEmulator:
    """A strict local Telegram Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        host: str = "127.0.0.1",
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        clock: Callable[[], float] = time.time,
        callback_answer_timeout: float | None = 15.0,
        webhook_retry_delay: float = 0.2,
        webhook_max_retry_delay: float = 1.0,
        webhook_max_attempts: int = 50,
        webhook_timeout: float = 10.0,
        chat_flood_limit: tuple[int, float] | None = None,
        shared_message_ids: bool = False,
        fault_rate: float = 0.0,
        fault_methods: tuple[str, ...] = ("sendMessage", "deleteMessages", "answerCallbackQuery"),
        fault_seed: int = 0,
        hang_seconds: float = 30.0,
    ) -> None:
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 1
        self.host = host
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.callback_answer_timeout = callback_answer_timeout
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_max_retry_delay = webhook_max_retry_delay
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout = webhook_timeout
        # Optional per-chat flood rule for sendMessage: (messages, per seconds). Off by default.
        self.chat_flood_limit = chat_flood_limit
        # Faults (see `fault_next`): a random share of calls to `fault_methods` fails in one
        # of FAULT_KINDS, chosen by a seeded generator so a failing run can be repeated.
        self.fault_rate = fault_rate
        self.fault_methods = frozenset(m.lower() for m in fault_methods)
        self.hang_seconds = hang_seconds
        self._faults_rng = random.Random(fault_seed)
        self._fault_queue: dict[str, list[str]] = {}
        self.faults_injected: list[tuple[str, str]] = []  # (method, kind)
        self._shared_ids = itertools.count(1) if shared_message_ids else None
        self._clock = clock
        self._time_offset = 0.0
        self.url = ""
        # Inspection state.
        self.calls: list[tuple[str, JSON]] = []
        self.errors: list[tuple[str, int, str]] = []  # (method, error_code, description)
        self.transport_log: list[tuple[str, str, str]] = []  # (HTTP verb, method, content type)
        self.updates: list[JSON] = []  # every update created, in order
        self.dropped_updates: list[JSON] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.answered_callbacks: dict[str, JSON] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}  # (scope key, language) -> list
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.menu_buttons: dict[int | None, JSON] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.rate_limited_count = 0  # 429s answered (injected or flood rule)
        # Webhook / polling state.
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.allowed_updates: list[str] = []
        self.webhook_last_error: tuple[int, str] | None = None
        self._pending: list[_Pending] = []
        self._update_ids = itertools.count(10_001)
        self._handed_out = 0  # highest update_id returned by getUpdates
        self._polled = False
        self._poll_generation = 0
        self._duplicate_next = False
        # Other internals.
        self._users: dict[int, EmulatedUser] = {}
        self._chats: dict[int, Chat] = {}
        self._callbacks: dict[str, _CallbackQuery] = {}
        self._callback_ids = itertools.count(4_000_000_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._failures: dict[str, list[int]] = {}
        self._flood: dict[int, list[float]] = {}
        self._seq = 0
        self._last_activity = 0.0
        self._event = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        methods: list[tuple[str, Handler]] = [
            ("getMe", self._get_me),
            ("getUpdates", self._get_updates),
            ("setWebhook", self._set_webhook),
            ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info),
            ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("editMessageReplyMarkup", self._edit_message_reply_markup),
            ("deleteMessage", self._delete_message),
            ("deleteMessages", self._delete_messages),
            ("answerCallbackQuery", self._answer_callback_query),
            ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("setMyDescription", self._text_setting("description", 512, self.descriptions)),
            ("getMyDescription", self._text_getter("description", self.descriptions)),
            (
                "setMyShortDescription",
                self._text_setting("short_description", 120, self.short_descriptions),
            ),
            (
                "getMyShortDescription",
                self._text_getter("short_description", self.short_descriptions),
            ),
            ("setMyName", self._text_setting("name", 64, self.names)),
            ("getMyName", self._text_getter("name", self.names)),
            ("setChatMenuButton", self._set_chat_menu_button),
            ("getChatMenuButton", self._get_chat_menu_button),
            ("getChat", self._get_chat),
            ("sendChatAction", self._send_chat_action),
        ]
        self._methods = {name.lower(): (name, handler) for name, handler in methods}

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL for PTB: ``ApplicationBuilder().base_url(emu.api_url)``."""
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        self._session = ClientSession()
        self._last_activity = asyncio.get_running_loop().time()

    async def close(self) -> None:
        self._closing = True
        self._notify()
        await self._stop_webhook_worker()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> BotApiEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- test-side API -------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "en",
        *,
        username: str | None = None,
        last_name: str | None = None,
    ) -> EmulatedUser:
        """The emulated user with this id (created on first use); chat id == user id."""
        if user_id in self._users:
            return self._users[user_id]
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = EmulatedUser(self, user_id, first_name, language_code, username, last_name)
        self._users[user_id] = user
        self._chats[user_id] = Chat(user, self._shared_ids)
        return user

    def chat(self, chat_id: int) -> Chat:
        return self._chats[chat_id]

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return self.chat(chat_id).bot_messages()

    def fault_next(self, method: str, kind: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail as ``kind`` (one of FAULT_KINDS):
        ``500``/``502`` (not done), ``drop`` (connection closed, not done), ``lost_answer``
        (done, then the connection is closed: the caller cannot know), ``hang`` (done, then no
        answer for ``hang_seconds``), ``429``."""
        if kind not in FAULT_KINDS:
            raise ValueError(kind)
        self._fault_queue.setdefault(method.lower(), []).extend([kind] * times)

    def _pick_fault(self, method: str) -> str | None:
        queued = self._fault_queue.get(method)
        if queued:
            return queued.pop(0)
        if self.fault_rate and method in self.fault_methods:
            if self._faults_rng.random() < self.fault_rate:
                return self._faults_rng.choice(FAULT_KINDS)
        return None

    def fail_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 Too Many Requests."""
        self._failures.setdefault(method.lower(), []).extend([retry_after] * times)

    def deliver_twice_next(self) -> None:
        """Deliver the next update created twice to the webhook (same update_id)."""
        self._duplicate_next = True

    @property
    def inject_duplicate_delivery(self) -> bool:
        return self._duplicate_next

    @inject_duplicate_delivery.setter
    def inject_duplicate_delivery(self, value: bool) -> None:
        self._duplicate_next = value

    def now(self) -> float:
        return self._clock() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (message dates, 48 h deletion rule, query expiry)."""
        self._time_offset += seconds

    def file(self, prefix: str, **fields: Any) -> JSON:
        number = next(self._file_ids)
        return {
            "file_id": f"{prefix}{number:08d}emu",
            "file_unique_id": f"AQAD{number:06d}",
            **fields,
        }

    def calls_to(self, method: str) -> list[JSON]:
        return [params for name, params in self.calls if name.lower() == method.lower()]

    def get_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return self.commands.get((_scope_key(scope), language_code), [])

    async def wait_idle(self, *, timeout: float = 5.0, quiet: float = 0.15) -> None:
        """Wait until every update was handed to the bot and no API call came for ``quiet``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._is_quiet(quiet):
            if loop.time() >= deadline:
                raise AssertionError(f"the bot did not go quiet within {timeout}s")
            await asyncio.sleep(0.01)

    def assert_no_errors(self) -> None:
        assert not self.errors, f"the emulator refused calls: {self.errors}"

    # -- internals shared with EmulatedUser ----------------------------------------------

    def _notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def _touch(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._last_activity = asyncio.get_running_loop().time()

    def _is_quiet(self, quiet: float) -> bool:
        if self.webhook_url is not None:
            undelivered = bool(self._pending)
        elif self._polled:
            undelivered = any(p.update["update_id"] > self._handed_out for p in self._pending)
        else:
            undelivered = False
        idle = asyncio.get_running_loop().time() - self._last_activity
        return not undelivered and idle >= quiet

    def _enqueue(self, kind: str, body: JSON, chat_key: int) -> JSON:
        # A deep copy: later edits of the message must not alter an undelivered update.
        update: JSON = {"update_id": next(self._update_ids), kind: copy.deepcopy(body)}
        self.updates.append(update)
        allowed = self.allowed_updates
        if (allowed and kind not in allowed) or (not allowed and kind in _NOT_DEFAULT_UPDATES):
            self.dropped_updates.append(update)
            return update
        self._pending.append(_Pending(update, chat_key, duplicate=self._duplicate_next))
        self._duplicate_next = False
        self._touch()
        self._notify()
        return update

    def _new_callback_query(self, user_id: int) -> str:
        query_id = str(next(self._callback_ids))
        self._callbacks[query_id] = _CallbackQuery(user_id, self.now())
        return query_id

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        name = request.match_info["method"]
        entry = self._methods.get(name.lower())
        canonical = entry[0] if entry else name
        try:
            params = _normalize(await _read_params(request))
        except ApiError as exc:
            self.errors.append((canonical, exc.code, exc.description))
            return web.json_response(exc.body(), status=exc.code)
        self.calls.append((canonical, params))
        self.transport_log.append((request.method, canonical, request.content_type))
        if entry is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        if canonical not in _PASSIVE_METHODS:
            self._touch()
        fault = self._pick_fault(canonical.lower())
        if fault is not None:
            self.faults_injected.append((canonical, fault))
        try:
            failures = self._failures.get(canonical.lower())
            if failures:
                raise self._too_many_requests(failures.pop(0))
            if fault == "429":
                raise self._too_many_requests(1)
            if fault in {"500", "502"}:
                code = int(fault)
                text = "Internal Server Error" if code == 500 else "Bad Gateway"
                return web.json_response(ApiError(code, text).body(), status=code)
            if fault == "drop":
                return self._drop(request)
            result = await entry[1](params)
            if fault == "lost_answer":
                return self._drop(request)
            if fault == "hang":
                await asyncio.sleep(self.hang_seconds)
        except ApiError as exc:
            self.errors.append((canonical, exc.code, exc.description))
            return web.json_response(exc.body(), status=exc.code)
        finally:
            if canonical not in _PASSIVE_METHODS:
                self._touch()
                self._notify()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection without an answer (the client sees a network error)."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _too_many_requests(self, retry_after: int) -> ApiError:
        self.rate_limited_count += 1
        return ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    # -- helpers for methods -------------------------------------------------------------

    def _bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _target_chat(self, params: JSON) -> Chat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None or not chat.started:
            raise _bad("chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _target_message(self, chat: Chat, params: JSON, missing: str) -> ChatMessage:
        if params.get("inline_message_id") is not None:
            raise _bad("inline messages are not supported by the emulator")
        message_id = params.get("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise _bad(missing)
        message = chat.get(message_id)
        if message is None or message.deleted:
            raise _bad(missing)
        return message

    def _check_flood(self, chat: Chat) -> None:
        if self.chat_flood_limit is None:
            return
        limit, window = self.chat_flood_limit
        now = asyncio.get_running_loop().time()
        times = [t for t in self._flood.get(chat.id, []) if now - t < window]
        if len(times) >= limit:
            self._flood[chat.id] = times
            raise self._too_many_requests(max(1, math.ceil(window - (now - times[0]))))
        times.append(now)
        self._flood[chat.id] = times

    def _reply_target(self, chat: Chat, params: JSON) -> ChatMessage | None:
        reply = params.get("reply_parameters")
        allow = params.get("allow_sending_without_reply") is True
        message_id = params.get("reply_to_message_id")
        if reply is not None:
            if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
                raise _bad("can't parse reply parameters JSON object")
            message_id = reply["message_id"]
            allow = reply.get("allow_sending_without_reply") is True
        if message_id is None:
            return None
        target = chat.get(message_id) if isinstance(message_id, int) else None
        if target is None or target.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return target

    # -- methods -------------------------------------------------------------------------

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        conflict = ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is "
            "active; use deleteWebhook to delete the webhook first",
        )
        if self.webhook_url is not None:
            raise conflict
        offset, limit, timeout = (params.get(k) for k in ("offset", "limit", "timeout"))
        for key, value in (("offset", offset), ("limit", limit), ("timeout", timeout)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _bad(f"invalid {key} specified")
        limit = min(max(limit or 100, 1), 100)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
                raise _bad("can't parse allowed updates")
            self.allowed_updates = list(allowed)
        self._polled = True
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # wakes (and so terminates) an earlier waiting getUpdates
        if offset is not None and offset < 0:
            self._pending = self._pending[offset:]
        elif offset is not None:
            self._pending = [p for p in self._pending if p.update["update_id"] >= offset]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout or 0, 0)
        while True:
            event = self._event
            batch = [p.update for p in self._pending[:limit]]
            if batch or self._closing:
                break
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                )
            if self.webhook_url is not None:
                raise conflict
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        if batch:
            self._handed_out = max(self._handed_out, batch[-1]["update_id"])
        return batch

    async def _set_webhook(self, params: JSON) -> bool:
        url = params.get("url") or ""
        if not isinstance(url, str):
            raise _bad("bad webhook: invalid URL")
        if not url:
            return await self._delete_webhook(params)
        # NOTE: Telegram requires HTTPS and ports 443, 80, 88 or 8443. The emulator accepts
        # plain http and any port, because tests serve their webhook on a random local port.
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _bad("bad webhook: invalid webhook URL specified")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_RE.fullmatch(secret)):
            raise _bad("secret token contains unallowed characters or has a wrong length")
        max_connections = params.get("max_connections", 40)
        if not isinstance(max_connections, int) or not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
                raise _bad("can't parse allowed updates")
            self.allowed_updates = list(allowed)
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self.webhook_url = url
        self.webhook_secret = secret
        self.webhook_max_connections = max_connections
        self.webhook_last_error = None
        self._poll_generation += 1  # terminates a waiting getUpdates
        self._notify()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_worker())
        return True

    async def _delete_webhook(self, params: JSON) -> bool:
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self.webhook_url = None
        self.webhook_secret = None
        await self._stop_webhook_worker()
        return True

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self.allowed_updates:
                info["allowed_updates"] = self.allowed_updates
        if self.webhook_last_error:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    async def _send_message(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        self._check_flood(chat)
        parse_mode = params.get("parse_mode")
        text, entities = format_text(params.get("text"), parse_mode, params.get("entities"))
        markup = validate_reply_markup(params.get("reply_markup"))
        preview = params.get("link_preview_options")
        if preview is not None and not isinstance(preview, dict):
            raise _bad("can't parse link preview options JSON object")
        reply_to = self._reply_target(chat, params)
        protect = params.get("protect_content") is True
        message_id = chat.next_message_id()
        payload: JSON = {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": chat.as_dict(),
            "date": int(self.now()),
            "text": text,
        }
        if entities:
            payload["entities"] = entities
        if markup is not None and "inline_keyboard" in markup:
            payload["reply_markup"] = markup
        if protect:
            payload["has_protected_content"] = True
        if reply_to is not None:
            payload["reply_to_message"] = {
                k: v for k, v in reply_to.payload.items() if k != "reply_to_message"
            }
        self._seq += 1
        chat.add(
            ChatMessage(
                message_id=message_id,
                chat_id=chat.id,
                from_bot=True,
                date=payload["date"],
                text=text,
                source_text=str(params.get("text")),
                parse_mode=parse_mode,
                entities=entities,
                reply_markup=markup,
                protect_content=protect,
                reply_to=reply_to.message_id if reply_to else None,
                payload=payload,
                seq=self._seq,
            )
        )
        return payload

    def _apply_edit(
        self,
        message: ChatMessage,
        text: str,
        entities: list[JSON],
        markup: JSON | None,
        params: JSON,
    ) -> JSON:
        old_inline = message.reply_markup if message.payload.get("reply_markup") else None
        if text == message.text and entities == message.entities and markup == old_inline:
            raise _bad(NOT_MODIFIED)
        message.edits.append(
            {
                "text": message.text,
                "entities": message.entities,
                "reply_markup": message.reply_markup,
                "parse_mode": message.parse_mode,
            }
        )
        if text != message.text or "text" in params:
            message.text = text
            message.entities = entities
            message.source_text = str(params.get("text", message.source_text))
            message.parse_mode = params.get("parse_mode")
        message.reply_markup = markup
        payload = message.payload
        payload["text"] = text
        payload.pop("entities", None)
        if entities:
            payload["entities"] = entities
        payload.pop("reply_markup", None)
        if markup is not None:
            payload["reply_markup"] = markup
        payload["edit_date"] = int(self.now())
        return payload

    async def _edit_message_text(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        message = self._target_message(chat, params, "message to edit not found")
        if not message.from_bot:
            raise _bad("message can't be edited")
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        text, entities = format_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        markup = validate_reply_markup(params.get("reply_markup"), inline_only=True)
        return self._apply_edit(message, text, entities, markup, params)

    async def _edit_message_reply_markup(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        message = self._target_message(chat, params, "message to edit not found")
        if not message.from_bot:
            raise _bad("message can't be edited")
        markup = validate_reply_markup(params.get("reply_markup"), inline_only=True)
        return self._apply_edit(message, message.text or "", message.entities, markup, {})

    def _deletable(self, message: ChatMessage | None) -> bool:
        return (
            message is not None
            and not message.deleted
            and self.now() - message.date <= DELETE_WINDOW_SECONDS
        )

    async def _delete_message(self, params: JSON) -> bool:
        chat = self._target_chat(params)
        message = self._target_message(chat, params, "message to delete not found")
        if not self._deletable(message):
            raise _bad("message can't be deleted for everyone")
        message.deleted = True
        return True

    async def _delete_messages(self, params: JSON) -> bool:
        chat = self._target_chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise _bad("message identifiers are not specified")
        if len(ids) > MAX_DELETE_IDS:
            raise _bad("too many message identifiers specified")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise _bad("can't parse message identifiers")
        for message_id in ids:
            message = chat.get(message_id)
            if message is not None and self._deletable(message):
                message.deleted = True
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = params.get("callback_query_id")
        query = self._callbacks.get(str(query_id)) if query_id is not None else None
        expired = (
            query is not None
            and self.callback_answer_timeout is not None
            and self.now() - query.created > self.callback_answer_timeout
        )
        if query is None or query.answered or expired:
            raise _bad(QUERY_INVALID)
        text = params.get("text") or ""
        if not isinstance(text, str) or utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        query.answered = True
        self.answered_callbacks[str(query_id)] = {
            "text": text,
            "show_alert": params.get("show_alert") is True,
            "url": params.get("url"),
            "cache_time": params.get("cache_time"),
        }
        return True

    def _commands_key(self, params: JSON) -> tuple[str, str]:
        scope = params.get("scope")
        if scope is not None and not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        key = _scope_key(scope)
        if scope is not None and scope.get("type") in (
            "chat",
            "chat_administrators",
            "chat_member",
        ):
            chat_id = scope.get("chat_id")
            chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
            if chat is None or not chat.started:
                raise _bad("chat not found")
        return key, _language(params)

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("too many commands specified")
        stored: list[JSON] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("can't parse BotCommand JSON object")
            command, description = item.get("command"), item.get("description")
            if not isinstance(command, str) or not _COMMAND_RE.fullmatch(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not description.strip():
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID: description is empty")
            if utf16_len(description) > 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID: description is too long")
            stored.append({"command": command, "description": description})
        key = self._commands_key(params)
        if stored:
            self.commands[key] = stored
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: JSON) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _text_setting(self, name: str, limit: int, store: dict[str, str]) -> Handler:
        async def handler(params: JSON) -> bool:
            value = params.get(name) or ""
            if not isinstance(value, str):
                raise _bad(f"can't parse {name}")
            if utf16_len(value) > limit:
                raise _bad(f"{name} is too long (at most {limit} characters)")
            language = _language(params)
            if value:
                store[language] = value
            else:
                store.pop(language, None)
            return True

        return handler

    def _text_getter(self, name: str, store: dict[str, str]) -> Handler:
        async def handler(params: JSON) -> JSON:
            return {name: store.get(_language(params), "")}

        return handler

    async def _set_chat_menu_button(self, params: JSON) -> bool:
        chat_id = self._target_chat(params).id if params.get("chat_id") is not None else None
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in (
            "commands",
            "web_app",
            "default",
        ):
            raise _bad("can't parse menu button JSON object")
        if button["type"] == "web_app" and not (
            isinstance(button.get("text"), str)
            and button["text"]
            and isinstance(button.get("web_app"), dict)
            and _valid_url(button["web_app"].get("url"), ("https",))
        ):
            raise _bad("can't parse menu button JSON object")
        self.menu_buttons[chat_id] = button
        return True

    async def _get_chat_menu_button(self, params: JSON) -> JSON:
        chat_id = self._target_chat(params).id if params.get("chat_id") is not None else None
        return self.menu_buttons.get(chat_id) or self.menu_buttons.get(None) or {"type": "default"}

    async def _get_chat(self, params: JSON) -> JSON:
        chat = self._target_chat(params)
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {
            **chat.as_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }

    async def _send_chat_action(self, params: JSON) -> bool:
        chat = self._target_chat(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat.id, str(action)))
        return True

    # -- webhook delivery ----------------------------------------------------------------

    async def _stop_webhook_worker(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _webhook_worker(self) -> None:
        inflight: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        try:
            while not self._closing and self.webhook_url is not None:
                event = self._event
                now = loop.time()
                wake = 0.5
                busy: set[int] = set()
                for pending in list(self._pending):
                    if pending.chat_key in busy:  # keep the order of updates of one chat
                        continue
                    busy.add(pending.chat_key)
                    if pending.inflight:
                        continue
                    if pending.retry_at > now:
                        wake = min(wake, pending.retry_at - now)
                        continue
                    if len(inflight) >= self.webhook_max_connections:
                        break
                    pending.inflight = True
                    task = asyncio.create_task(self._deliver(pending))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), wake)
        finally:
            for task in list(inflight):
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)

    async def _deliver(self, pending: _Pending) -> None:
        assert self._session is not None and self.webhook_url is not None
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[SECRET_HEADER] = self.webhook_secret
        status: int | None = None
        error: str | None = None
        try:
            async with self._session.post(
                self.webhook_url,
                data=json.dumps(pending.update),
                headers=headers,
                timeout=ClientTimeout(total=self.webhook_timeout),
            ) as response:
                status = response.status
                await response.read()
                if not 200 <= status < 300:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
        except (ClientError, TimeoutError) as exc:
            error = f"Connection error: {exc!r}"
        finally:
            pending.inflight = False
        self.webhook_deliveries.append(
            WebhookDelivery(pending.update["update_id"], status, error is None, error)
        )
        if error is None:
            if pending.duplicate:
                pending.duplicate = False  # stays queued: delivered once more, same update_id
            elif pending in self._pending:
                self._pending.remove(pending)
        else:
            pending.attempts += 1
            self.webhook_last_error = (int(self.now()), error)
            if pending.attempts >= self.webhook_max_attempts:
                if pending in self._pending:
                    self._pending.remove(pending)
                self.dropped_updates.append(pending.update)
            else:
                delay = min(
                    self.webhook_retry_delay * pending.attempts, self.webhook_max_retry_delay
                )
                pending.retry_at = asyncio.get_running_loop().time() + delay
        self._touch()
        self._notify()


# --------------------------------------------------------------------------- request parsing


async def _read_params(request: web.Request) -> JSON:
    """Collect parameters from the query string and a JSON, urlencoded or multipart body."""
    params: JSON = dict(request.query)
    if not request.body_exists:
        return params
    content_type = request.content_type
    if content_type == "application/json":
        raw = await request.text()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise _bad("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise _bad("JSON request body must be an object")
            params.update(body)
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = {"uploaded_file": value.filename, "content_type": value.content_type}
            else:
                params[key] = value
    return params


def _normalize(raw: JSON) -> JSON:
    """Decode PTB's JSON-encoded form values: ints, bools and JSON objects/arrays."""
    params: JSON = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            elif key in _INT_FIELDS and _INT_RE.fullmatch(value.strip()):
                value = int(value)
            elif key in _BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
        params[key] = value
    return params


def _scope_key(scope: JSON | None) -> str:
    """A readable key for a BotCommandScope: ``default``, ``chat:123``, ..."""
    if scope is None:
        return "default"
    kind = scope.get("type")
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return str(kind)
    if kind in ("chat", "chat_administrators"):
        return f"{kind}:{scope.get('chat_id')}"
    if kind == "chat_member":
        return f"{kind}:{scope.get('chat_id')}:{scope.get('user_id')}"
    raise _bad("can't parse BotCommandScope: unsupported type specified")


def _language(params: JSON) -> str:
    language = params.get("language_code") or ""
    if not isinstance(language, str) or (language and not _LANGUAGE_RE.fullmatch(language)):
        # Telegram accepts only two-letter ISO 639-1 codes here, not IETF tags like "pt-br".
        raise _bad("invalid language code specified")
    return language
