"""AiohttpRequest against a tiny local Bot API server, driven through a real telegram.Bot."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.ratelimit import retry_after_seconds
from bot.transport import AiohttpRequest, _describe

TOKEN = "123456:SECRET-token_value"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Safe", "username": "safe_test_bot"}


@dataclass
class Seen:
    """What the fake Bot API server received."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


def _ok(result: object) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, **parameters: int) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _message(chat_id: str, **extra: object) -> dict[str, object]:
    return {"message_id": 1, "date": 0, "chat": {"id": int(chat_id), "type": "private"}, **extra}


def _make_app(seen: Seen) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        seen.user_agents.append(request.headers.get("User-Agent", ""))
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                fields[name] = (value.filename, value.file.read(), value.content_type)
            else:
                fields[name] = value
        seen.calls.append((method, request.content_type, fields))

        seen.in_flight += 1
        seen.max_in_flight = max(seen.max_in_flight, seen.in_flight)
        try:
            return await _answer(method, fields)
        finally:
            seen.in_flight -= 1

    async def _answer(method: str, fields: dict[str, Any]) -> web.StreamResponse:
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "getUpdates":
            await asyncio.sleep(float(fields.get("timeout", 0)))
            return _ok([])
        if method == "sendMessage":
            text = fields["text"]
            if text == "bad":
                return _error(400, "Bad Request: chat not found")
            if text == "flood":
                return _error(429, "Too Many Requests: retry after 7", retry_after=7)
            if text == "garbage":
                return web.Response(status=502, text="<html>proxy error</html>")
            if text.startswith("sleep "):
                await asyncio.sleep(float(text.split()[1]))
            return _ok(_message(fields["chat_id"], text=text))
        if method == "sendDocument":
            return _ok(
                _message(fields["chat_id"], document={"file_id": "F1", "file_unique_id": "U1"})
            )
        return _error(404, "Not Found")

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handle)
    return app


@dataclass
class Server:
    url: str
    seen: Seen


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    seen = Seen()
    # Cancel handlers whose client went away, so a timed-out "sleep" does not delay teardown.
    runner = web.AppRunner(_make_app(seen), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Server(f"http://{host}:{port}/bot", seen)
    finally:
        await runner.cleanup()


def _bot(base_url: str, request: AiohttpRequest | None = None) -> Bot:
    return Bot(
        TOKEN,
        base_url=base_url,
        request=request or AiohttpRequest(),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )


async def test_get_me_and_send_message_as_form_fields(server: Server) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Leave now", callback_data="exit")]])
    async with _bot(server.url) as bot:
        me = await bot.get_me()
        sent = await bot.send_message(chat_id=42, text="héllo ✓", reply_markup=markup)

    assert me.username == "safe_test_bot"
    assert sent.text == "héllo ✓"
    assert sent.chat.id == 42
    method, content_type, fields = server.seen.calls[-1]
    assert method == "sendMessage"
    # The same encoding PTB's default httpx transport uses, so any server that takes stock PTB
    # takes this transport.
    assert content_type == "application/x-www-form-urlencoded"
    assert fields["chat_id"] == "42"
    assert json.loads(fields["reply_markup"]) == {
        "inline_keyboard": [[{"text": "Leave now", "callback_data": "exit"}]]
    }
    assert all(ua.startswith("python-telegram-bot") for ua in server.seen.user_agents)


async def test_multipart_upload_of_in_memory_document(server: Server) -> None:
    async with _bot(server.url) as bot:
        sent = await bot.send_document(
            chat_id=7,
            document=io.BytesIO(b"small file \x00\x01"),
            filename="note.txt",
            caption="your reference",
        )

    assert sent.document is not None and sent.document.file_id == "F1"
    method, content_type, fields = server.seen.calls[-1]
    assert (method, content_type) == ("sendDocument", "multipart/form-data")
    assert fields["chat_id"] == "7"
    assert fields["caption"] == "your reference"
    assert fields["document"] == ("note.txt", b"small file \x00\x01", "text/plain")


async def test_read_timeout_raises_timed_out(server: Server) -> None:
    async with _bot(server.url) as bot:
        started = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(chat_id=1, text="sleep 3", read_timeout=0.2)
        assert time.monotonic() - started < 2


async def test_default_read_timeout_applies(server: Server) -> None:
    request = AiohttpRequest(read_timeout=0.2)
    assert request.read_timeout == 0.2
    async with _bot(server.url, request) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(chat_id=1, text="sleep 3")
        # An explicit None means "no limit" and must override the default.
        sent = await bot.send_message(chat_id=1, text="sleep 0.4", read_timeout=None)
    assert sent.text == "sleep 0.4"


async def test_long_poll_outlives_default_read_timeout(server: Server) -> None:
    # PTB passes read_timeout = default + poll timeout for getUpdates; the transport must honour
    # it, or every quiet long poll would end in TimedOut.
    async with Bot(
        TOKEN,
        base_url=server.url,
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(connection_pool_size=1, read_timeout=0.3),
    ) as bot:
        started = time.monotonic()
        updates = await bot.get_updates(timeout=1)
    assert updates == ()
    assert time.monotonic() - started >= 1
    assert server.seen.calls[-1][2]["timeout"] == "1"


async def test_closed_port_raises_network_error_without_token() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    request = AiohttpRequest()
    async with request:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
        with pytest.raises(NetworkError) as raised:
            await bot.get_me()
    assert not isinstance(raised.value, TimedOut)
    assert "SECRET" not in str(raised.value)
    assert raised.value.__cause__ is None


# PTB itself warns when it builds RetryAfter unless PTB_TIMEDELTA is set.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_bad_request_and_retry_after_are_mapped_by_ptb(server: Server) -> None:
    async with _bot(server.url) as bot:
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(chat_id=1, text="bad")
        with pytest.raises(RetryAfter) as flood:
            await bot.send_message(chat_id=1, text="flood")
        with pytest.raises(NetworkError):
            await bot.send_message(chat_id=1, text="garbage")
    assert retry_after_seconds(flood.value) == 7


async def test_pool_size_bounds_open_connections(server: Server) -> None:
    request = AiohttpRequest(connection_pool_size=2, pool_timeout=5)
    async with _bot(server.url, request) as bot:
        await asyncio.gather(*(bot.send_message(chat_id=1, text="sleep 0.1") for _ in range(8)))
    assert server.seen.max_in_flight == 2


async def test_pool_timeout_raises_timed_out(server: Server) -> None:
    request = AiohttpRequest(connection_pool_size=1, pool_timeout=0.1, connect_timeout=0.1)
    async with _bot(server.url, request) as bot:
        holder = asyncio.create_task(bot.send_message(chat_id=1, text="sleep 0.5"))
        await asyncio.sleep(0.1)
        with pytest.raises(TimedOut):
            await bot.send_message(chat_id=1, text="quick")
        await holder


async def test_lifecycle_is_idempotent_and_required(server: Server) -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(server.url + TOKEN + "/getMe", "POST")
    await request.initialize()
    await request.initialize()
    status, payload = await request.do_request(server.url + TOKEN + "/getMe", "POST")
    assert status == 200 and json.loads(payload)["result"]["id"] == BOT_USER["id"]
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request(server.url + TOKEN + "/getMe", "POST")


def test_invalid_json_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TelegramError):
        AiohttpRequest.parse_json_payload(b"<html>hello from a victim</html>")
    assert "victim" not in caplog.text
    assert "not JSON" in caplog.text


def test_error_descriptions_redact_the_token_url() -> None:
    url = f"http://127.0.0.1:1/bot{TOKEN}/sendMessage"
    exc = aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}")
    text = _describe(exc, url)
    assert "SECRET" not in text
    assert text.startswith("aiohttp.ConnectionTimeoutError")


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        AiohttpRequest(connection_pool_size=0)
