"""safebot against the project's Bot API emulator, beside a bare python-telegram-bot echo bot.

Figures, not assertions. Everything runs on this machine: the emulator in this process, each
bot as a child process started the way `safebot run` is. Run it with `bench/run` (see the
README's table); `--quick` shrinks every load for a smoke run. `--only throughput` (or
`paced`) and `--db sqlite|pg` run a part; `--sample DIR` profiles each safebot over the
measured window with bench/sampler.py (`--profile DIR`: cProfile over the whole run). The
throughput line also says how busy the bot's process was: near 100% of a core, its event
loop is the limit; well below, it waits (on the database or the emulator).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.emulator import BotApiEmulator  # noqa: E402

TOKEN = "123456:BENCH-token_for-safebot"
PROFILE: Path | None = None  # --profile/--sample: profile each safebot, files here
SAMPLE = False  # --sample: bench/sampler.py instead of cProfile
PG_ADMIN = os.environ.get("SAFEBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Arrivals:
    """When each bot message reached each chat (the emulator's clock of this process)."""

    times: dict[int, list[float]] = field(default_factory=dict)
    deletes: dict[int, list[float]] = field(default_factory=dict)

    def hook(self, emu: BotApiEmulator) -> None:
        for method in ("sendmessage", "deletemessages"):
            name, handler = emu._methods[method]

            async def wrapped(
                params: dict[str, Any], handler: Any = handler, m: str = method
            ) -> Any:
                result = await handler(params)
                if m == "sendmessage":
                    chat = int(params["chat_id"])
                    self.times.setdefault(chat, []).append(time.monotonic())
                else:
                    self.deletes.setdefault(int(params["chat_id"]), []).append(time.monotonic())
                return result

            emu._methods[method] = (name, wrapped)

    def count(self, chat: int) -> int:
        return len(self.times.get(chat, ()))


class Bot:
    """A bot as a child process."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int | None) -> None:
        self.argv, self.env, self.port = argv, env, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="safebot-bench-", suffix=".log", delete=False)

    async def start(self, emu: BotApiEmulator) -> float:
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, cwd=ROOT, stdout=self.log, stderr=self.log
        )
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"bot exited; see {self.log.name}")
                if self.port is None:
                    if emu.calls_to("getUpdates"):
                        break
                else:
                    try:
                        async with http.get(f"http://127.0.0.1:{self.port}/health") as r:
                            if r.status == 200 and emu.calls_to("getUpdates"):
                                break
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.02)
        return time.monotonic() - began

    def mark(self, signum: int) -> None:
        """Tell bench/sampler.py where the measured window starts and ends."""
        if SAMPLE and self.proc is not None and self.argv[1].endswith("sampler.py"):
            self.proc.send_signal(signum)

    def cpu_seconds(self) -> float:
        """User + system CPU time the bot process (all its threads) has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            for _ in range(200):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()


def safebot(emu: BotApiEmulator, data: Path, db_url: str | None, **extra: str) -> Bot:
    port = free_port()
    env = {
        "TELEGRAM_BOT_TOKEN": emu.token,
        "TELEGRAM_API_BASE_URL": emu.api_url,
        "SAFEBOT_DATA_DIR": str(data),
        "SAFEBOT_PORT": str(port),
        "SAFEBOT_LOG_LEVEL": "WARNING",
        "SAFEBOT_RETENTION_INTERVAL_SECONDS": "3600",
        "PTB_TIMEDELTA": "true",
        **extra,
    }
    if db_url:
        env["DATABASE_URL"] = db_url
    argv = [sys.executable, "-m", "bot.cli", "run"]
    if PROFILE is not None:
        # Both write their file when the bot exits cleanly (it stops on SIGTERM).
        out = PROFILE / f"safebot-{secrets.token_hex(3)}"
        if SAMPLE:
            argv[1:1] = [str(ROOT / "bench" / "sampler.py"), str(out) + ".txt"]
        else:
            argv[1:1] = ["-m", "cProfile", "-o", str(out) + ".prof"]
    return Bot(argv, env, port)


def echo_bot(emu: BotApiEmulator) -> Bot:
    env = {"TELEGRAM_BOT_TOKEN": emu.token, "TELEGRAM_API_BASE_URL": emu.api_url}
    return Bot([sys.executable, str(ROOT / "bench" / "echo_bot.py")], env, None)


LIFTED = {"SAFEBOT_SEND_RATE": "1000000", "SAFEBOT_CHAT_SEND_RATE": "1000000"}


async def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def throughput(
    make: Callable[[BotApiEmulator], Bot], users: int, each: int, warm: bool
) -> float:
    """Turns a second with pacing lifted: `users` people each send `each` texts at once."""
    async with BotApiEmulator(token=TOKEN, callback_answer_timeout=None) as emu:
        arrivals = Arrivals()
        arrivals.hook(emu)
        bot = make(emu)
        await bot.start(emu)
        try:
            people = [emu.user(100_000 + i, language_code="en") for i in range(users)]
            if warm:  # safebot: /start first, so each text meets a screen with buttons
                for p in people:
                    await p.send_command("/start")
                await wait_for(lambda: all(arrivals.count(p.id) >= 1 for p in people), 120)
            base = {p.id: arrivals.count(p.id) for p in people}
            began = time.monotonic()
            cpu_began, own_began = bot.cpu_seconds(), time.process_time()
            bot.mark(signal.SIGUSR1)
            for n in range(each):
                for p in people:
                    await p.send_text(f"message {n}")
            done = await wait_for(
                lambda: all(arrivals.count(p.id) >= base[p.id] + each for p in people), 600
            )
            elapsed = time.monotonic() - began
            bot.mark(signal.SIGUSR2)
            # Whether the bot was short of CPU (near 100% of a core: its event loop is the
            # limit) or waiting (on the database, the emulator in this process, the network).
            print(
                f"  {users * each} updates in {elapsed:.1f} s; CPU: bot"
                f" {100 * (bot.cpu_seconds() - cpu_began) / elapsed:.0f}%, emulator"
                f" {100 * (time.process_time() - own_began) / elapsed:.0f}%"
            )
        finally:
            await bot.stop()
    if not done:
        return float("nan")
    return users * each / elapsed


async def paced_figures(db_url: str | None, data: Path, burst: int, quick: bool) -> dict[str, Any]:
    """With Telegram's limits on: a burst of first replies, latency at a paced load, quick exit
    and emergency behind a backlog, start-up time."""
    out: dict[str, Any] = {}
    async with BotApiEmulator(token=TOKEN, callback_answer_timeout=None) as emu:
        arrivals = Arrivals()
        arrivals.hook(emu)
        bot = safebot(emu, data, db_url)
        out["startup_s"] = await bot.start(emu)
        try:
            # 1. A burst of N people at once.
            crowd = [emu.user(200_000 + i, language_code="en") for i in range(burst)]
            began = time.monotonic()
            for p in crowd:
                await p.send_command("/start")
            await wait_for(lambda: all(arrivals.count(p.id) for p in crowd), burst / 30 + 120)
            firsts = [arrivals.times[p.id][0] - began for p in crowd if arrivals.count(p.id)]
            out["burst_n"] = burst
            out["burst_last_s"] = max(firsts) if len(firsts) == burst else float("nan")
            out["burst_limit_s"] = burst / 30
            await asyncio.sleep(2)

            # 2. Update-to-reply latency at 20 updates a second for a while.
            rate, seconds = 20, (5 if quick else 15)
            paced = [emu.user(300_000 + i, language_code="en") for i in range(rate * seconds)]
            sent_at: dict[int, float] = {}
            for p in paced:
                sent_at[p.id] = time.monotonic()
                await p.send_command("/start")
                await asyncio.sleep(1 / rate)
            await wait_for(lambda: all(arrivals.count(p.id) for p in paced), 60)
            lat = sorted(
                arrivals.times[p.id][0] - sent_at[p.id] for p in paced if arrivals.count(p.id)
            )
            out["p50_ms"], out["p95_ms"], out["p99_ms"] = (
                1000 * lat[int(q * (len(lat) - 1))] for q in (0.5, 0.95, 0.99)
            )

            # 3. Quick exit and "I need help now" behind a backlog of first replies.
            a, b = emu.user(400_001, language_code="en"), emu.user(400_002, language_code="en")
            for p in (a, b):
                await p.send_command("/start")
            await wait_for(lambda: arrivals.count(a.id) and arrivals.count(b.id), 30)
            await a.press("Continue")
            await wait_for(lambda: arrivals.count(a.id) >= 2, 30)
            backlog = [
                emu.user(500_000 + i, language_code="en") for i in range(300 if quick else 900)
            ]
            for p in backlog:
                await p.send_command("/start")
            await asyncio.sleep(1.0)
            n_before = arrivals.count(a.id)
            began = time.monotonic()
            await a.press("🆘 I need help now")
            await wait_for(lambda: arrivals.count(a.id) > n_before, 60)
            out["emergency_ms"] = 1000 * (arrivals.times[a.id][-1] - began)
            began = time.monotonic()
            await b.send_command("/exit")
            await wait_for(lambda: b.id in arrivals.deletes, 60)
            out["quick_exit_ms"] = 1000 * (arrivals.deletes[b.id][0] - began)
            out["backlog_waiting"] = sum(1 for p in backlog if not arrivals.count(p.id))
            out["peak_rss_mb"] = bot.peak_rss_mb()
        finally:
            await bot.stop()
    return out


def seed_conversations(db_file: Path, n: int) -> None:
    """`n` idle conversations (as many people part-way through), for the memory figure."""
    now = dt.datetime.now(dt.UTC)
    with sqlite3.connect(db_file) as db:
        db.executemany(
            "INSERT INTO conversations (chat_key, step, language, seq, editing, flow_version,"
            " draft, draft_expires_at, updated_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    secrets.token_hex(32),
                    "menu",
                    "en",
                    3,
                    False,
                    1,
                    None,
                    None,
                    now,
                    now + dt.timedelta(hours=6),
                )
                for _ in range(n)
            ),
        )


async def memory_with(data: Path, conversations: int) -> float:
    async with BotApiEmulator(token=TOKEN) as emu:
        bot = safebot(emu, data, None)
        await bot.start(emu)  # migrates
        await bot.stop()
        seed_conversations(data / "safebot.db", conversations)
        bot = safebot(emu, data, None)
        await bot.start(emu)
        try:
            people = [emu.user(600_000 + i, language_code="en") for i in range(200)]
            for p in people:
                await p.send_command("/start")
            await asyncio.sleep(10)
            return bot.peak_rss_mb()
        finally:
            await bot.stop()


async def pg_database() -> str | None:
    try:
        import asyncpg

        admin = await asyncpg.connect(PG_ADMIN, timeout=2)
    except Exception as exc:
        print(f"PostgreSQL not reachable ({type(exc).__name__}): skipped")
        return None
    name = f"safebot_bench_{secrets.token_hex(3)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small loads, for a smoke run")
    parser.add_argument("--burst", type=int, default=None, help="people in the burst (2000)")
    parser.add_argument(
        "--only", choices=("all", "throughput", "paced"), default="all", help="only these figures"
    )
    parser.add_argument("--db", choices=("both", "sqlite", "pg"), default="both")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile output directory")
    parser.add_argument("--sample", type=Path, default=None, help="bench/sampler.py output dir")
    args = parser.parse_args()
    global PROFILE, SAMPLE
    for where, sample in ((args.profile, False), (args.sample, True)):
        if where is not None:
            where.mkdir(parents=True, exist_ok=True)
            PROFILE, SAMPLE = where.resolve(), sample
    users, each = (50, 4) if args.quick else (200, 10)
    burst = args.burst or (150 if args.quick else 2000)
    pg = await pg_database() if args.db != "sqlite" else None
    rows = []
    echo = float("nan")
    if args.only != "paced":
        echo = await throughput(echo_bot, users, each, warm=False)
        print(f"echo bot: {echo:.0f} updates/s")
    for label, url in (("SQLite", None), ("PostgreSQL", pg)):
        if label == "PostgreSQL" and url is None:
            continue
        if label == "SQLite" and args.db == "pg":
            continue
        with tempfile.TemporaryDirectory() as tmp:
            turns = float("nan")
            if args.only != "paced":
                turns = await throughput(
                    lambda e, u=url, t=tmp: safebot(e, Path(t) / "a", u, **LIFTED),
                    users,
                    each,
                    True,
                )
            if args.only == "throughput":
                print(f"{label}: {turns:.0f} turns/s ({turns / echo:.2f}x echo)")
                continue
            if url:  # a fresh database for the paced run
                url2 = await pg_database()
            else:
                url2 = None
            paced = await paced_figures(url2, Path(tmp) / "b", burst, args.quick)
        rows.append((label, turns, paced))
        print(f"{label}: {turns:.0f} turns/s ({turns / echo:.2f}x echo); {paced}")
    if args.only != "all":
        return
    with tempfile.TemporaryDirectory() as tmp:
        rss = await memory_with(Path(tmp), 10_000 if args.quick else 100_000)
    conversations = 10_000 if args.quick else 100_000
    print()
    print("| figure | SQLite | PostgreSQL | target |")
    print("|---|---|---|---|")

    def cell(i: int, f: Callable[[Any], str]) -> str:
        return f(rows[i]) if i < len(rows) else "skipped"

    print(
        f"| turns/s, pacing lifted (echo bot {echo:.0f}/s) | "
        + " | ".join(cell(i, lambda r: f"{r[1]:.0f} ({r[1] / echo:.2f}x)") for i in range(2))
        + " | >= 0.3x |"
    )
    print(
        f"| last first reply, burst of {burst} (limit {burst / 30:.1f} s) | "
        + " | ".join(cell(i, lambda r: f"{r[2]['burst_last_s']:.1f} s") for i in range(2))
        + f" | <= {burst / 30 + 2:.1f} s |"
    )
    print(
        "| update to reply p50 / p95 / p99 at 20/s | "
        + " | ".join(
            cell(
                i,
                lambda r: f"{r[2]['p50_ms']:.0f} / {r[2]['p95_ms']:.0f} / {r[2]['p99_ms']:.0f} ms",
            )
            for i in range(2)
        )
        + " | |"
    )
    print(
        "| quick exit behind a backlog | "
        + " | ".join(cell(i, lambda r: f"{r[2]['quick_exit_ms']:.0f} ms") for i in range(2))
        + " | < 1 s |"
    )
    print(
        "| emergency screen behind a backlog | "
        + " | ".join(cell(i, lambda r: f"{r[2]['emergency_ms']:.0f} ms") for i in range(2))
        + " | < 1 s |"
    )
    print(
        "| start-up | "
        + " | ".join(cell(i, lambda r: f"{r[2]['startup_s']:.1f} s") for i in range(2))
        + " | |"
    )
    print(f"| peak RSS, {conversations:,} stored conversations | {rss:.0f} MB | | < 150 MB |")


if __name__ == "__main__":
    asyncio.run(main())
