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


PG_ADMIN_DSN = os.environ.get("SAFEBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test; skipped, with the reason, without a server."""
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN.split('@')[-1]}: {exc!r}")
    name = f"safebot_e2e_{os.getpid()}_{os.urandom(3).hex()}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


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
    await stop_bot_process(process)


# ---- sealed contact requests: helpers for test_requests_e2e.py and test_canary.py -------------

import base64 as _base64  # noqa: E402
import functools as _functools  # noqa: E402
import json as _json  # noqa: E402
import re as _re  # noqa: E402
import sqlite3 as _sqlite3  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402
from typing import Any as _Any  # noqa: E402

from tests.e2e.emulator import ChatMessage, EmulatedUser  # noqa: E402
from tests.walker import Press, option_label, walk  # noqa: E402

FSI, PDI = "\u2068", "\u2069"
_REFERENCE_RE = _re.compile(r"(?<!\d)(\d{4}) (\d{4}) (\d{4}) (\d{4})(?!\d)")


@_functools.cache
def _form_context() -> _Any:
    from bot.config import bundled_deployment_path, load_deployment
    from flows.definition import load_flow
    from flows.i18n import load_catalogs

    return load_flow(), load_catalogs(), load_deployment(bundled_deployment_path())


def tr(lang: str, english: str) -> str:
    """An English source string (a button label, a title, a [strings] value) in `lang`."""
    return str(_form_context()[1].get(lang).gettext(english))


def flow_string(lang: str, key: str) -> str:
    """A [strings] entry of the victim flow, translated (placeholders left as they are)."""
    return tr(lang, _form_context()[0].string(key))


def step_lines(lang: str, step_id: str) -> list[str]:
    """The paragraphs of step `step_id`'s own text, translated (placeholders left as they
    are)."""
    return [tr(lang, line) for line in _form_context()[0].step(step_id).text]


def step_title(lang: str, step_id: str) -> str:
    return tr(lang, _form_context()[0].step(step_id).title)


def exit_line(lang: str) -> str:
    """The first line of what quick exit leaves in the chat (the exit step's text)."""
    from flows.kinds import StepKind

    return step_lines(lang, _form_context()[0].by_kind[StepKind.EXIT])[0]


def help_now_label(lang: str) -> str:
    """The "I need help now" button: the title of the flow's emergency screen."""
    return step_title(lang, _form_context()[0].help_step)


def calm_notice(lang: str, key: str = "buttons_only") -> str:
    """The ONE notice for unexpected input (`buttons_only`, `not_text`, `edited`): the string
    and the emergency line, one paragraph each, as the engine joins them."""
    return "\n\n".join(flow_string(lang, k) for k in (key, "emergency_line"))


def plain(message: ChatMessage | None) -> str:
    """A message's text without the invisible direction isolates around numbers."""
    return ((message.text if message else None) or "").replace(FSI, "").replace(PDI, "")


def notice_then_screen(
    replies: list[ChatMessage], notice: str, *, help_label: str | None = None
) -> ChatMessage:
    """A notice and the screen again after it: ONE message while the two stay within
    flows.replies.READABLE_CHARS visible characters together, else two (the notice alone, with
    no buttons, then the screen). With `help_label`, the screen's first row is that button
    ("I need help now"). Returns the message with the screen."""
    from flows.replies import READABLE_CHARS

    texts = [plain(r) for r in replies]
    assert 1 <= len(replies) <= 2, texts
    first, screen = replies[0], replies[-1]
    assert texts[0].startswith(notice), texts
    assert screen.buttons(), "the screen's buttons come with it"
    if len(replies) == 1:
        assert len(texts[0]) <= READABLE_CHARS, (len(texts[0]), texts)
        assert len(texts[0]) > len(notice), "the screen comes with the notice"
    else:
        assert texts[0] == notice and not first.buttons(), texts
        joined = len(notice) + 2 + len(texts[1])
        assert joined > READABLE_CHARS, f"{joined} characters could have been one message"
    if help_label is not None:
        assert screen.button_texts()[0] == help_label, screen.button_texts()
    return screen


def stored_choices(plan: str) -> str | None:
    """The stored form of a walker plan value for a `choices` question ("evenings",
    "mornings+weekends" in the options' order, "own:Tuesdays after 10")."""
    from flows.form import choices_answer
    from tests.walker import OWN

    if plan.startswith(OWN):
        return choices_answer([], plan[len(OWN) :])
    return choices_answer(plan.split("+"), "")


def contact_within(lang: str, org_id: str) -> str:
    """The done screen's "{org} will try to contact you within N working days" for `org_id`,
    in `lang` (as plain text)."""
    flow, catalogs, deployment = _form_context()
    org = next(o for o in deployment.receiving_organisations if o.id == org_id)
    assert org.contact_within_days, org
    singular, plural_form = flow.plurals["contact_within"]
    text = catalogs.get(lang).ngettext(singular, plural_form, org.contact_within_days)
    return str(text).format(org=org.name, n=org.contact_within_days)


def choice_label(lang: str, step_id: str, value: str) -> str:
    """The button text that answers question `step_id` with `value`, in `lang`."""
    flow, catalogs, deployment = _form_context()
    return option_label(flow, deployment, catalogs, lang, step_id, value)


async def fill_request(
    user: EmulatedUser,
    lang: str,
    answers: dict[str, str | None],
    *,
    until: str | None = None,
    quiet: float = 0.05,
    timeout: float = 10.0,
) -> ChatMessage:
    """Walk the contact form from /start in `lang`, answering with `answers` (field -> value as
    stored: option values, typed text; a `choices` question takes the walker's plan value,
    "evenings", "mornings+weekends" or "own:words"; None or absent = Skip). Buttons are pressed
    by their translated labels. Returns the summary screen, or the screen of question `until`
    (not answered) when given. The moves come from the shared flow-driven walker
    (tests/walker.py)."""
    await user.send_command("/start", lang)
    await user.next_replies(1, quiet=quiet, timeout=timeout)
    await user.press(tr(lang, "Continue"))
    await user.next_replies(1, quiet=quiet, timeout=timeout)
    return await continue_request(user, lang, answers, until=until, quiet=quiet, timeout=timeout)


async def continue_request(
    user: EmulatedUser,
    lang: str,
    answers: dict[str, str | None],
    *,
    from_step: str | None = None,
    until: str | None = None,
    quiet: float = 0.05,
    timeout: float = 10.0,
) -> ChatMessage:
    """As `fill_request`, from the screen the person is on: the menu, or (`from_step`) the
    question she has reached by the same `answers`. Returns the last screen."""
    flow, catalogs, deployment = _form_context()
    given = {"consent": "yes", **answers}
    moves = list(walk(flow, deployment, given, lang=lang, catalogs=catalogs, until=until))
    if from_step is not None:
        steps = [m.step for m in moves]
        assert from_step in steps, f"{from_step!r} is not on the way: {steps}"
        moves = moves[steps.index(from_step) :]
    last = user.last_bot_message()
    for move in moves:
        if isinstance(move.action, Press):
            await user.press(move.action.label)
        else:
            await user.send_text(move.action.text)
        (last,) = await user.next_replies(1, quiet=quiet, timeout=timeout)
    assert last is not None
    return last


def parse_reference(text: str | None) -> str:
    """The 16-digit reference shown on the done screen (bidi isolates stripped)."""
    plain = (text or "").replace(FSI, "").replace(PDI, "")
    found = _REFERENCE_RE.findall(plain)
    assert len(found) == 1, f"expected one 4-4-4-4 reference in {text!r}"
    return "".join(found[0])


async def send_request(
    user: EmulatedUser, lang: str, *, quiet: float = 0.05, timeout: float = 10.0
) -> tuple[ChatMessage, str]:
    """Press Send on the summary; returns the done screen and the reference it shows."""
    await user.press(flow_string(lang, "confirm"))
    (done,) = await user.next_replies(1, quiet=quiet, timeout=timeout)
    assert tr(lang, "Your request was sent") in (done.text or ""), done.text
    return done, parse_reference(done.text)


@_dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def records(self) -> list[dict[str, _Any]]:
        return [_json.loads(line) for line in self.stdout.splitlines() if line.strip()]


async def run_cli(data_dir: Path, *args: str, **extra_env: str) -> CliResult:
    """`safebot ARGS` as a child process on `data_dir`, without blocking the event loop (the
    emulator and an in-process bot keep running meanwhile)."""
    env = {**os.environ, "SAFEBOT_DATA_DIR": str(data_dir), **extra_env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


def demo_identity(data_dir: Path, org: str) -> Path:
    return data_dir / "demo-identities" / f"{org}.identity"


def demo_passphrase(data_dir: Path) -> Path:
    return data_dir / "demo-identities" / "passphrase.txt"


async def export_requests_cli(
    data_dir: Path, org: str, identities: list[Path] | None = None, **extra_env: str
) -> CliResult:
    """`safebot handoffs export` with the demo identity (or `identities`) of `org`."""
    args = ["handoffs", "export", "--org", org]
    for path in identities or [demo_identity(data_dir, org)]:
        args += ["--identity", str(path)]
    args += ["--passphrase-file", str(demo_passphrase(data_dir))]
    return await run_cli(data_dir, *args, **extra_env)


def db_path(data_dir: Path) -> Path:
    return data_dir / "safebot.db"


def db_query(data_dir: Path, sql: str, params: tuple[_Any, ...] = ()) -> list[dict[str, _Any]]:
    con = _sqlite3.connect(db_path(data_dir), timeout=10)
    try:
        con.row_factory = _sqlite3.Row
        return [dict(row) for row in con.execute(sql, params).fetchall()]
    finally:
        con.close()


def db_execute(data_dir: Path, sql: str, params: tuple[_Any, ...] = ()) -> int:
    con = _sqlite3.connect(db_path(data_dir), timeout=10)
    try:
        with con:
            return con.execute(sql, params).rowcount
    finally:
        con.close()


def owner_key(data_dir: Path, user_id: int, channel: str = "telegram") -> str:
    """The keyed hash under which a person's requests are stored (as bot/service.py makes it)."""
    from storage.identity import keyed_hash

    raw = (data_dir / "user-hash.key").read_text().strip()
    key = _base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    return keyed_hash(key, f"owner:{channel}", str(user_id))


async def stop_bot_process(process: BotProcess, timeout: float = 15.0) -> int | None:
    """SIGTERM and wait *without blocking the event loop*: the emulator runs on this loop and
    the bot still calls the Bot API while it shuts down (BotProcess.stop() waits blocking, so
    the bot hangs until its 15 s timeout and is then killed). Returns the exit code, or None if
    it had to be killed."""
    proc = process.proc
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    deadline = asyncio.get_running_loop().time() + timeout
    while proc.poll() is None:
        if asyncio.get_running_loop().time() > deadline:
            process.kill()
            return None
        await asyncio.sleep(0.05)
    return proc.returncode
