"""`GET /health`: 200 `{"status": "ok"}` only when the bot can take requests; otherwise 503
with the reasons, which name no person and no id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from bot.keyring import register_public_key
from bot.web.server import build_web_app
from storage.db import create_engine, session_factory, sqlite_url
from storage.migrate import upgrade_async
from storage.sealing import generate_keypair
from tests.e2e.conftest import bot_env, free_port, start_bot
from tests.e2e.emulator import BotApiEmulator
from tests.integration.test_cli_errors import DEPLOYMENT


async def get_health(port: int) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/health") as resp,
    ):
        return resp.status, await resp.json()


async def test_not_ready_when_a_receiving_organisation_loses_its_key(
    emulator: BotApiEmulator, data_dir: Path, tmp_path: Path
) -> None:
    public = generate_keypair()[1]
    # A real (not fictional) deployment, which seals only to the key it pins.
    pinned = DEPLOYMENT.replace(
        "keeps = ", f'key_fingerprints = ["{public.fingerprint}"]\nkeeps = '
    )
    config = tmp_path / "deployment.toml"
    config.write_text(pinned, encoding="utf-8")
    data_dir.mkdir()
    url = sqlite_url(str(data_dir / "safebot.db"))
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        await register_public_key(session_factory(engine), "test-hub", public)
    finally:
        await engine.dispose()

    port = free_port()
    server = await start_bot(
        bot_env(emulator, data_dir, SAFEBOT_CONFIG=str(config), SAFEBOT_PORT=str(port))
    )
    try:
        assert await get_health(port) == (200, {"status": "ok"})
        with sqlite3.connect(data_dir / "safebot.db") as db:
            db.execute("UPDATE organisation_keys SET active = 0")
        assert await get_health(port) == (
            503,
            {"status": "not ready", "reasons": ["organisation 'test-hub' has no active key"]},
        )
    finally:
        await server.stop()


async def test_not_ready_when_the_database_is_unreachable() -> None:
    engine = create_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    client = TestClient(TestServer(build_web_app(engine)))
    await client.start_server()
    try:
        resp = await client.get("/health")
        assert resp.status == 503
        assert await resp.json() == {"status": "not ready", "reasons": ["database unreachable"]}
    finally:
        await client.close()
        await engine.dispose()
