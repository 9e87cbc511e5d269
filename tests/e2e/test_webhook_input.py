"""Whatever is posted to the webhook gets one clear answer (403, 400, 413 or 200), never a 500
or a traceback, loses nothing, and leaves the bot working."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bot.app import RunningServer
from tests.e2e.conftest import bot_env, free_port, start_bot
from tests.e2e.emulator import BotApiEmulator

SECRET = "input-test-secret"


@pytest.fixture
async def hook(emulator: BotApiEmulator, tmp_path: Path) -> tuple[RunningServer, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/in"
    env = bot_env(
        emulator,
        tmp_path / "data",
        SAFEBOT_PORT=str(port),
        SAFEBOT_WEBHOOK_URL=url,
        SAFEBOT_WEBHOOK_SECRET=SECRET,
    )
    server = await start_bot(env)
    yield server, url  # type: ignore[misc]
    await server.stop()


def message(update_id: object, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "message_id": 5,
        "date": 1,
        "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242, "is_bot": False, "first_name": "T"},
        "text": "hello",
    }
    body.update(fields)
    return {"update_id": update_id, "message": body}


def nested(depth: int) -> str:
    return '{"update_id": 1, "message": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("empty", b"", 400),
    ("not json", b"{nope", 400),
    ("not utf-8", b"\xff\xfe\x00", 400),
    ("a list", b"[1, 2]", 400),
    ("a string", b'"update"', 400),
    ("no update id", b'{"message": {}}', 400),
    ("update id as text", json.dumps(message("12")).encode(), 400),
    ("update id as bool", json.dumps(message(True)).encode(), 400),
    ("message as text", b'{"update_id": 7, "message": "hi"}', 400),
    ("chat as a number", json.dumps(message(8, chat=5)).encode(), 400),
    ("deep nesting", nested(100_000).encode(), 400),
    ("too large", b'{"update_id": 9, "x": "' + b"a" * (2 * 1024 * 1024) + b'"}', 413),
    # Readable as an update, but not as one Telegram sends: refused before the engine, and
    # answered 200 so Telegram would not send it again.
    ("text as a number", json.dumps(message(10, text=5)).encode(), 200),
    ("huge update id", json.dumps(message(2**70)).encode(), 200),
    ("huge chat id", json.dumps(message(11, chat={"id": 2**70, "type": "private"})).encode(), 200),
    ("a known kind, malformed", b'{"update_id": 12, "poll_answer": {"x": 1}}', 400),
    ("a kind added after this PTB", b'{"update_id": 14, "something_new": {"x": 1}}', 200),
    ("a group message", json.dumps(message(13, chat={"id": -5, "type": "group"})).encode(), 200),
]


@pytest.mark.parametrize(("name", "body", "status"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_a_bad_body_gets_a_clear_answer(
    hook: tuple[RunningServer, str], name: str, body: bytes, status: int
) -> None:
    server, url = hook
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp,
    ):
        assert resp.status == status, name
        text = await resp.text()
    assert "Traceback" not in text
    async with server.core.sessions() as session:
        from sqlalchemy import text as sql

        stored = (await session.execute(sql("SELECT count(*) FROM inbox"))).scalar()
    assert stored == 0  # nothing of it reached the engine


async def raw_post(url: str, secret_header: bytes) -> int:
    """A request whose secret header is not plain text (aiohttp would refuse to send it)."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps(message(20)).encode()
    writer.write(
        b"POST /" + parts[3].encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"X-Telegram-Bot-Api-Secret-Token: " + secret_header + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def test_a_secret_that_is_not_text_gets_403_and_the_bot_still_works(
    emulator: BotApiEmulator, hook: tuple[RunningServer, str]
) -> None:
    _server, url = hook
    assert await raw_post(url, "sécret".encode()) == 403
    assert await raw_post(url, b"\xff\xfe") == 403
    assert await raw_post(url, b"") == 403
    user = emulator.user(4243, language_code="en")
    await user.send_command("/start")
    (welcome,) = await user.next_replies(1)
    assert "Welcome" in (welcome.text or "")
