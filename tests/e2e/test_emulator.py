"""The Bot API emulator is strict where Telegram is: prove it with a raw HTTP client.

One smoke test at the end uses a real python-telegram-bot ``Bot`` to prove PTB can parse every
answer the emulator gives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

try:  # run as part of a package or as a rootdir-relative module
    from tests.e2e.emulator import SECRET_HEADER, BotApiEmulator, EmulatedUser
except ImportError:  # pragma: no cover - depends on how pytest imports this file
    from emulator import SECRET_HEADER, BotApiEmulator, EmulatedUser  # type: ignore[no-redef,unused-ignore]

TOKEN = "123:ABC"
JSONDict = dict[str, Any]


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def user(emu: BotApiEmulator) -> EmulatedUser:
    """A user who has written to the bot, so the bot may write to them."""
    person = emu.user(1001, "Ana", "pt-br")
    await person.send_command("/start")
    return person


async def call(
    http: aiohttp.ClientSession,
    emu: BotApiEmulator,
    method: str,
    *,
    form: bool = False,
    token: str = TOKEN,
    **params: Any,
) -> tuple[int, JSONDict]:
    """Call the emulator as a JSON body, or as PTB does (form data, JSON-encoded values)."""
    url = f"{emu.api_url}{token}/{method}"
    if form:
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        response = await http.post(url, data=data)
    else:
        response = await http.post(url, json=params)
    async with response:
        body: JSONDict = await response.json()
        return response.status, body


def keyboard(*buttons: JSONDict) -> JSONDict:
    return {"inline_keyboard": [list(buttons)]}


async def test_token_and_method_are_checked(
    emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emu, "getMe", token="999:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await call(http, emu, "sendSticker", chat_id=1)
    assert (status, body["description"]) == (404, "Not Found")
    async with http.get(f"{emu.api_url}{TOKEN}/getMe") as response:  # GET works too
        me = (await response.json())["result"]
    assert me["is_bot"] is True and me["id"] == 123 and me["username"] == "safebot_test_bot"


async def test_text_length_counted_in_utf16_units(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    for form in (False, True):
        status, body = await call(
            http, emu, "sendMessage", form=form, chat_id=user.id, text="a" * 4096
        )
        assert status == 200 and body["ok"], body
        status, body = await call(
            http, emu, "sendMessage", form=form, chat_id=user.id, text="a" * 4097
        )
        assert (status, body["description"]) == (400, "Bad Request: message is too long")
    # An emoji outside the BMP is two UTF-16 code units.
    status, _ = await call(http, emu, "sendMessage", chat_id=user.id, text="😀" * 2048)
    assert status == 200
    status, body = await call(http, emu, "sendMessage", chat_id=user.id, text="😀" * 2048 + "a")
    assert body["description"] == "Bad Request: message is too long"
    for empty in ("", "  \n "):
        status, body = await call(http, emu, "sendMessage", chat_id=user.id, text=empty)
        assert (status, body["description"]) == (400, "Bad Request: message text is empty")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo"'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag"),
        ("1 < 2", 'Unsupported start tag ""'),
        ("2 > 1", 'Character ">" must be escaped'),
        ("Tom & Jerry", 'Character "&" must be escaped'),
        ("&nbsp;", 'Character "&" must be escaped'),
        ('<span class="x">s</span>', 'must have class "tg-spoiler"'),
        ("<br/>", 'Unsupported start tag "br"'),
        ('<a href="https://x.org">x', "Can't find end tag"),
    ],
)
async def test_html_refused(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser, text: str, reason: str
) -> None:
    status, body = await call(
        http, emu, "sendMessage", form=True, chat_id=user.id, text=text, parse_mode="HTML"
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: can't parse entities: "), body
    assert reason in body["description"]


async def test_html_accepted_and_counted_after_parsing(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    source = (
        '<b>Bold <i>both <a href="https://example.org/?a=1&amp;b=2">link</a></i></b> '
        "&lt;3 &amp; &quot;q&quot; &#128512; <tg-spoiler>s</tg-spoiler> "
        '<pre><code class="language-python">x = 1</code></pre>'
    )
    status, body = await call(
        http, emu, "sendMessage", chat_id=user.id, text=source, parse_mode="html"
    )
    assert status == 200, body
    message = body["result"]
    assert message["text"] == 'Bold both link <3 & "q" 😀 s x = 1'
    types = [(e["type"], e["offset"], e["length"]) for e in message["entities"]]
    assert types == [
        ("bold", 0, 14),
        ("italic", 5, 9),
        ("text_link", 10, 4),
        ("spoiler", 27, 1),
        ("pre", 29, 5),
    ]
    assert message["entities"][2]["url"] == "https://example.org/?a=1&b=2"
    assert message["entities"][4]["language"] == "python"
    # Tags do not count towards the limit, entities count as one character each.
    status, _ = await call(
        http,
        emu,
        "sendMessage",
        chat_id=user.id,
        text="<b>" + "a" * 4095 + "</b>&amp;",
        parse_mode="HTML",
    )
    assert status == 200
    status, body = await call(
        http,
        emu,
        "sendMessage",
        chat_id=user.id,
        text="<b>" + "a" * 4096 + "</b>&amp;",
        parse_mode="HTML",
    )
    assert body["description"] == "Bad Request: message is too long"
    status, body = await call(
        http, emu, "sendMessage", chat_id=user.id, text="<b> </b>", parse_mode="HTML"
    )
    assert body["description"] == "Bad Request: message text is empty"
    # The chat records both the source and what the user sees.
    shown = user.bot_messages()[0]
    assert shown.text.startswith("Bold both") and shown.source_text == source
    assert shown.parse_mode == "html"


async def test_parse_modes(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    status, body = await call(
        http, emu, "sendMessage", chat_id=user.id, text="x", parse_mode="BBCode"
    )
    assert (status, body["description"]) == (400, "Bad Request: unsupported parse_mode")
    status, body = await call(
        http, emu, "sendMessage", chat_id=user.id, text="Done.", parse_mode="MarkdownV2"
    )
    assert status == 400 and "Character '.' is reserved" in body["description"]
    status, body = await call(
        http,
        emu,
        "sendMessage",
        chat_id=user.id,
        text="*Done*\\. _see_ [here](https://e.org/a\\)b)",
        parse_mode="MarkdownV2",
    )
    assert status == 200, body
    assert body["result"]["text"] == "Done. see here"
    assert body["result"]["entities"][2]["url"] == "https://e.org/a)b"
    status, body = await call(
        http, emu, "sendMessage", chat_id=user.id, text="*open", parse_mode="MarkdownV2"
    )
    assert "Can't find end of Bold entity" in body["description"]


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ("x" * 64, True),
        ("x" * 65, False),
        ("é" * 32, True),  # 32 characters, 64 bytes
        ("é" * 33, False),  # 33 characters, 66 bytes
        ("", False),
    ],
)
async def test_callback_data_is_limited_in_bytes(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser, data: str, ok: bool
) -> None:
    markup = keyboard({"text": "Go", "callback_data": data})
    status, body = await call(
        http, emu, "sendMessage", form=True, chat_id=user.id, text="t", reply_markup=markup
    )
    if ok:
        assert status == 200 and body["result"]["reply_markup"] == markup
    else:
        assert (status, body["description"]) == (400, "Bad Request: BUTTON_DATA_INVALID")


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ({"inline_keyboard": {"text": "x"}}, "must be an Array"),
        ({"inline_keyboard": [{"text": "x", "callback_data": "x"}]}, "Array of Arrays"),
        (keyboard({"text": "x"}), "text buttons are unallowed"),
        (keyboard({"text": "", "callback_data": "x"}), "BUTTON_TEXT_INVALID"),
        (keyboard({"text": "x", "callback_data": "x", "url": "https://e.org"}), "exactly one"),
        (keyboard({"text": "x", "url": "javascript:alert(1)"}), "BUTTON_URL_INVALID"),
        ("{not json", "can't parse reply keyboard markup"),
    ],
)
async def test_keyboard_structure(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser, markup: Any, reason: str
) -> None:
    status, body = await call(
        http, emu, "sendMessage", form=True, chat_id=user.id, text="t", reply_markup=markup
    )
    assert status == 400 and reason in body["description"], body


async def test_reply_keyboards_are_accepted_but_not_echoed(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    for markup in (
        {"keyboard": [["Yes", {"text": "No"}]], "resize_keyboard": True},
        {"remove_keyboard": True},
    ):
        status, body = await call(
            http, emu, "sendMessage", chat_id=user.id, text="t", reply_markup=markup
        )
        assert status == 200 and "reply_markup" not in body["result"]
    assert user.bot_messages()[-1].reply_markup == {"remove_keyboard": True}


async def test_chat_must_be_known_and_not_blocked(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    stranger = emu.user(2002)  # exists, but never wrote to the bot
    for chat_id in (stranger.id, 777, "@someone"):
        status, body = await call(http, emu, "sendMessage", chat_id=chat_id, text="hi")
        assert (status, body["description"]) == (400, "Bad Request: chat not found")
    user.block()
    status, body = await call(http, emu, "sendMessage", chat_id=user.id, text="hi")
    assert (status, body["description"]) == (403, "Forbidden: bot was blocked by the user")


async def test_delete_messages(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    ids = []
    for n in range(3):
        _, body = await call(http, emu, "sendMessage", chat_id=user.id, text=f"m{n}")
        ids.append(body["result"]["message_id"])
    status, body = await call(http, emu, "deleteMessage", chat_id=user.id, message_id=999)
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")
    status, _ = await call(
        http, emu, "deleteMessage", form=True, chat_id=user.id, message_id=ids[0]
    )
    assert status == 200 and ids[0] in user.chat.deleted_ids
    status, body = await call(http, emu, "deleteMessage", chat_id=user.id, message_id=ids[0])
    assert body["description"] == "Bad Request: message to delete not found"
    # deleteMessages skips what cannot be deleted; the user's own /start can be deleted.
    status, body = await call(
        http,
        emu,
        "deleteMessages",
        form=True,
        chat_id=user.id,
        message_ids=[ids[0], ids[1], 999, 1],
    )
    assert (status, body["result"]) == (200, True)
    assert [m.text for m in user.chat] == ["m2"]
    status, body = await call(
        http, emu, "deleteMessages", chat_id=user.id, message_ids=list(range(1, 102))
    )
    assert status == 400
    emu.advance_time(48 * 3600 + 1)
    status, body = await call(http, emu, "deleteMessage", chat_id=user.id, message_id=ids[2])
    assert body["description"] == "Bad Request: message can't be deleted for everyone"


async def test_edit_message_text(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    markup = keyboard({"text": "Next", "callback_data": "next"})
    _, body = await call(
        http,
        emu,
        "sendMessage",
        chat_id=user.id,
        text="<b>A</b>",
        parse_mode="HTML",
        reply_markup=markup,
    )
    message_id = body["result"]["message_id"]
    edit = {"chat_id": user.id, "message_id": message_id}
    status, body = await call(
        http,
        emu,
        "editMessageText",
        **edit,
        text="<b>A</b>",
        parse_mode="HTML",
        reply_markup=markup,
    )
    assert status == 400 and body["description"].startswith("Bad Request: message is not modified")
    status, body = await call(
        http, emu, "editMessageText", chat_id=user.id, message_id=999, text="x"
    )
    assert body["description"] == "Bad Request: message to edit not found"
    status, body = await call(
        http, emu, "editMessageText", chat_id=user.id, message_id=1, text="x"
    )  # the user's /start
    assert body["description"] == "Bad Request: message can't be edited"
    # Editing the text without reply_markup removes the keyboard, as on Telegram.
    status, body = await call(http, emu, "editMessageText", form=True, **edit, text="B")
    assert status == 200 and "reply_markup" not in body["result"]
    shown = user.chat.get(message_id)
    assert shown is not None and shown.text == "B" and shown.buttons() == []
    assert shown.edits[0]["text"] == "A" and "edit_date" in body["result"]
    status, body = await call(http, emu, "editMessageReplyMarkup", **edit, reply_markup=markup)
    assert status == 200 and shown.button_texts() == ["Next"]
    status, body = await call(http, emu, "editMessageReplyMarkup", **edit, reply_markup=markup)
    assert status == 400 and "not modified" in body["description"]


async def test_callback_query_answered_once(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    await call(
        http,
        emu,
        "sendMessage",
        chat_id=user.id,
        text="Sure?",
        reply_markup=keyboard({"text": "Yes", "callback_data": "confirm:yes"}),
    )
    query_id = await user.press("Yes")
    assert await user.press("confirm:yes") != query_id  # by data too; every press is new
    status, body = await call(
        http, emu, "answerCallbackQuery", callback_query_id=query_id, text="x" * 201
    )
    assert (status, body["description"]) == (400, "Bad Request: MESSAGE_TOO_LONG")
    status, _ = await call(
        http, emu, "answerCallbackQuery", form=True, callback_query_id=query_id, text="Saved"
    )
    assert status == 200 and emu.answered_callbacks[query_id]["text"] == "Saved"
    for qid in (query_id, "12345"):
        status, body = await call(http, emu, "answerCallbackQuery", callback_query_id=qid)
        assert status == 400 and "query is too old" in body["description"]
    update = emu.updates[-2]["callback_query"]
    assert update["data"] == "confirm:yes" and update["message"]["text"] == "Sure?"
    with pytest.raises(LookupError):
        await user.press("No")


async def test_injected_429(
    emu: BotApiEmulator, http: aiohttp.ClientSession, user: EmulatedUser
) -> None:
    emu.fail_next("sendMessage", retry_after=3, times=2)
    for _ in range(2):
        status, body = await call(http, emu, "sendMessage", chat_id=user.id, text="hi")
        assert status == 429
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        }
    status, _ = await call(http, emu, "sendMessage", chat_id=user.id, text="hi")
    assert status == 200 and emu.rate_limited_count == 2


async def test_get_updates_long_poll_and_offset(
    emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    person = emu.user(3003, "Bo", None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(call(http, emu, "getUpdates", form=True, timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()  # it is waiting
    message_id = await person.send_text("hello")
    status, body = await poll
    assert status == 200 and loop.time() - started < 2
    [update] = body["result"]
    assert update["message"]["text"] == "hello" and update["message"]["message_id"] == message_id
    assert "language_code" not in update["message"]["from"]
    # Without an offset the update is delivered again; with offset it is confirmed.
    _, body = await call(http, emu, "getUpdates", timeout=0)
    assert [u["update_id"] for u in body["result"]] == [update["update_id"]]
    _, body = await call(http, emu, "getUpdates", offset=update["update_id"] + 1, timeout=0)
    assert body["result"] == []
    # A second poller terminates the first one (two bot instances).
    first = asyncio.create_task(call(http, emu, "getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(call(http, emu, "getUpdates", timeout=1))
    status, body = await first
    assert status == 409 and "terminated by other getUpdates" in body["description"]
    await person.send_text("again")
    assert (await second)[1]["result"][0]["message"]["text"] == "again"


async def _webhook_receiver(
    fail_first: int,
) -> tuple[web.AppRunner, str, list[tuple[str | None, JSONDict]]]:
    received: list[tuple[str | None, JSONDict]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=500 if len(received) <= fail_first else 200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received


async def test_webhook_delivery_secret_and_retry(
    emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    runner, url, received = await _webhook_receiver(fail_first=1)
    try:
        for bad_secret in ("", "has space", "x" * 257):
            status, body = await call(http, emu, "setWebhook", url=url, secret_token=bad_secret)
            assert status == 400, body
        status, _ = await call(http, emu, "setWebhook", form=True, url=url, secret_token="s3cr-t_")
        assert status == 200
        status, body = await call(http, emu, "getUpdates")
        assert status == 409
        person = emu.user(4004)
        await person.send_text("via webhook")
        await emu.wait_idle(timeout=3)
        assert len(received) == 2  # 500 first, then retried
        assert all(secret == "s3cr-t_" for secret, _ in received)
        assert received[0][1] == received[1][1]  # same update, same update_id
        assert [d.ok for d in emu.webhook_deliveries] == [False, True]
        _, body = await call(http, emu, "getWebhookInfo")
        info = body["result"]
        assert info["url"] == url and info["pending_update_count"] == 0
        assert "500" in info["last_error_message"]
        # Duplicate delivery, to test idempotency.
        emu.deliver_twice_next()
        await person.send_text("twice")
        await emu.wait_idle(timeout=3)
        ids = [update["update_id"] for _, update in received[2:]]
        assert len(ids) == 2 and ids[0] == ids[1]
        status, _ = await call(http, emu, "deleteWebhook", drop_pending_updates=True)
        assert status == 200 and emu.webhook_url is None
    finally:
        await runner.cleanup()


async def test_bot_commands_and_profile_texts(
    emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    good = [{"command": "start", "description": "Start"}, {"command": "help_1", "description": "H"}]
    status, _ = await call(http, emu, "setMyCommands", form=True, commands=good, language_code="pt")
    assert status == 200 and emu.get_commands(language_code="pt") == good
    _, body = await call(http, emu, "getMyCommands", language_code="pt")
    assert body["result"] == good
    bad_cases: list[tuple[JSONDict, str]] = [
        ({"commands": [{"command": "Start", "description": "x"}]}, "BOT_COMMAND_INVALID"),
        ({"commands": [{"command": "/start", "description": "x"}]}, "BOT_COMMAND_INVALID"),
        ({"commands": [{"command": "a" * 33, "description": "x"}]}, "BOT_COMMAND_INVALID"),
        ({"commands": [{"command": "a", "description": ""}]}, "DESCRIPTION_INVALID"),
        ({"commands": [{"command": "a", "description": "d" * 257}]}, "DESCRIPTION_INVALID"),
        ({"commands": [{"command": f"c{n}", "description": "d"} for n in range(101)]}, "too many"),
        ({"commands": good, "language_code": "pt-br"}, "language code"),
    ]
    for params, reason in bad_cases:
        status, body = await call(http, emu, "setMyCommands", **params)
        assert status == 400 and reason in body["description"], (params, body)
    for method, field, limit in (
        ("setMyDescription", "description", 512),
        ("setMyShortDescription", "short_description", 120),
        ("setMyName", "name", 64),
    ):
        for length, expected in ((limit, 200), (limit + 1, 400)):
            setting: JSONDict = {field: "x" * length}
            status, _ = await call(http, emu, method, **setting)
            assert status == expected


async def test_next_replies_waits_for_quiet(
    emu: BotApiEmulator, http: aiohttp.ClientSession
) -> None:
    person = emu.user(5005)

    async def slow_bot() -> None:  # replies in two bursts, like a bot doing database work
        _, body = await call(http, emu, "getUpdates", timeout=5)
        chat_id = body["result"][0]["message"]["chat"]["id"]
        await call(http, emu, "sendMessage", chat_id=chat_id, text="one")
        await asyncio.sleep(0.05)
        await call(http, emu, "sendChatAction", chat_id=chat_id, action="typing")
        await asyncio.sleep(0.05)
        await call(
            http,
            emu,
            "sendMessage",
            chat_id=chat_id,
            text="two",
            reply_markup=keyboard({"text": "OK", "callback_data": "ok"}),
        )

    bot = asyncio.create_task(slow_bot())
    async with person.expect_replies(1) as replies:
        await person.send_text("hi")
    await bot
    assert [m.text for m in replies] == ["one", "two"]  # waited until the bot went quiet
    assert emu.chat_actions == [(person.id, "typing")]
    assert await person.settle() == []
    with pytest.raises(AssertionError, match="expected 1 new bot message"):
        await person.next_replies(1, timeout=0.3)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_ptb_bot_parses_emulator_answers(emu: BotApiEmulator) -> None:
    person = emu.user(6006, "Ana", "pt-br")
    await person.send_command("/start", args="ref_42")
    async with Bot(TOKEN, base_url=emu.api_url) as bot:
        me = await bot.get_me()
        assert me.username == "safebot_test_bot" and me.is_bot
        [update] = await bot.get_updates(timeout=0)
        assert update.message is not None and update.message.text == "/start ref_42"
        assert update.message.entities[0].type == "bot_command"
        assert update.effective_user is not None
        assert update.effective_user.language_code == "pt-br"
        sent = await bot.send_message(
            person.id,
            "<b>Olá</b> &amp; bem-vinda",
            parse_mode="HTML",
            protect_content=True,
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Sim", callback_data="y")]]),
        )
        assert sent.text == "Olá & bem-vinda" and sent.entities[0].type == "bold"
        assert sent.has_protected_content and sent.from_user is not None
        assert sent.from_user.is_bot
        assert sent.reply_markup is not None
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(person.id, "x" * 4097)
        emu.fail_next("sendMessage", retry_after=2)
        with pytest.raises(RetryAfter):
            await bot.send_message(person.id, "later")
        query_id = await person.press("Sim")
        [update] = await bot.get_updates(offset=update.update_id + 1, timeout=1)
        assert update.callback_query is not None and update.callback_query.id == query_id
        assert update.callback_query.message is not None
        assert await bot.answer_callback_query(query_id, text="ok")
        edited = await bot.edit_message_text("Feito", chat_id=person.id, message_id=sent.message_id)
        assert not isinstance(edited, bool) and edited.edit_date is not None
        assert await bot.delete_message(person.id, sent.message_id)
    # PTB (httpx transport) posts form-urlencoded data; getMe has an empty body.
    content_types = {ctype for _, method, ctype in emu.transport_log if method == "sendMessage"}
    assert content_types == {"application/x-www-form-urlencoded"}


async def test_user_updates_parse_in_ptb(emu: BotApiEmulator) -> None:
    person = emu.user(7007, "Bo", "fa", username="bo_7007")
    text_id = await person.send_text("see /help now")
    await person.send_photo(caption="me")
    await person.send_sticker()
    await person.send_voice()
    await person.send_location(1.5, 2.5)
    await person.send_document("a.pdf")
    await person.send_contact()
    await person.edit_message(text_id, "changed")
    async with Bot(TOKEN, base_url=emu.api_url) as bot:
        updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates if u.message is not None]
    assert messages[0].entities[0].type == "bot_command"
    assert messages[0].entities[0].offset == 4
    assert messages[1].photo[-1].width == 1280 and messages[1].caption == "me"
    assert messages[2].sticker is not None and messages[3].voice is not None
    assert messages[4].location is not None and messages[4].location.latitude == 1.5
    assert messages[5].document is not None and messages[5].document.file_name == "a.pdf"
    assert messages[6].contact is not None and messages[6].contact.user_id == person.id
    edited = updates[-1].edited_message
    assert edited is not None and edited.text == "changed" and edited.edit_date is not None
    ids = [u.update_id for u in updates]
    assert ids == sorted(set(ids))  # monotonically increasing
    assert [m.kind for m in person.chat] == [
        "text",
        "photo",
        "sticker",
        "voice",
        "location",
        "document",
        "contact",
    ]
