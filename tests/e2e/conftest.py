"""End-to-end fixtures: the real safebot (python-telegram-bot over HTTP) against the local
Bot API emulator, in-process or as a `safebot run` subprocess (for kill -9 and for scanning
everything the program wrote)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from bot.app import RunningServer, start_server
from bot.config import load_settings
from tests.e2e.emulator import BotApiEmulator

TOKEN = "123456:TEST-token_for-safebot"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_env(emu: BotApiEmulator, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "TELEGRAM_BOT_TOKEN": emu.token,
        "TELEGRAM_API_BASE_URL": emu.api_url,
        "SAFEBOT_DATA_DIR": str(data_dir),
        "SAFEBOT_PORT": str(free_port()),
        "SAFEBOT_RETENTION_INTERVAL_SECONDS": "3600",
        "SAFEBOT_LOG_LEVEL": "DEBUG",
        "PTB_TIMEDELTA": "true",
        # The emulator has no per-chat pace; keep the suite quick.
        "SAFEBOT_CHAT_SEND_RATE": "100",
    }
    env.update(extra)
    return env


@pytest.fixture
async def emulator() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator(token=TOKEN) as emu:
        yield emu


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


async def start_bot(env: Mapping[str, str]) -> RunningServer:
    return await start_server(load_settings(env))


@pytest.fixture
async def polling_bot(emulator: BotApiEmulator, data_dir: Path) -> AsyncIterator[RunningServer]:
    server = await start_bot(bot_env(emulator, data_dir))
    yield server
    await server.stop()


class BotProcess:
    """`safebot run` as a child process; its stdout and stderr go to files in `log_dir`."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.port = int(env["SAFEBOT_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.runs += 1
        out = open(self.log_dir / f"stdout-{self.runs}.log", "wb")
        err = open(self.log_dir / f"stderr-{self.runs}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], env=self.env, cwd=REPO, stdout=out, stderr=err
        )
        out.close()
        err.close()
        await self.wait_healthy()

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise AssertionError(f"safebot exited with {code}: {self.stderr()}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError("safebot did not become healthy: " + self.stderr())
                await asyncio.sleep(0.1)

    def stderr(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("stderr-*")))

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
async def bot_process(emulator: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotProcess]:
    process = BotProcess(bot_env(emulator, tmp_path / "data"), tmp_path / "logs")
    yield process
    process.stop()
