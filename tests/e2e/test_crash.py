"""`kill -9` at random moments while a crowd is talking to the bot, in polling and webhook mode,
on SQLite and on PostgreSQL (`safebot run` as a child process; PostgreSQL is skipped, with the
reason, when no server answers). After each kill the bot restarts; at the end every
update Telegram handed over was handled, every committed reply was delivered, and every
person's last message got its answer. The seed is printed so a failing run can be repeated.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.conftest import BotProcess, bot_env, db_query, free_port, stop_bot_process
from tests.e2e.emulator import BotApiEmulator, EmulatedUser

SECRET = "crash-test-secret"
PEOPLE = 12
KILLS = 4


def answered_after(user: EmulatedUser, message_id: int) -> bool:
    return any(m.from_bot and m.message_id > message_id for m in user.chat.messages)


async def talk(user: EmulatedUser, rng: random.Random, stop: asyncio.Event) -> list[int]:
    """Keep sending texts and presses until told to stop; returns the ids of what was sent."""
    sent = []
    while not stop.is_set():
        if rng.random() < 0.5 or not user.chat.bot_messages():
            sent.append(await user.send_text(f"words {rng.randrange(1000)}"))
        else:
            message = user.chat.bot_messages()[-1]
            buttons = [b for b in message.buttons() if b.get("callback_data") not in {"x"}]
            if buttons:
                await user.press_data(message.message_id, str(rng.choice(buttons)["callback_data"]))
        await asyncio.sleep(rng.uniform(0.005, 0.05))
    return sent


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str | None:
    """None for the default SQLite file, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


class Rows:
    """Counts and ids read straight from the bot's database, whichever it is."""

    def __init__(self, data_dir: Path, url: str | None) -> None:
        self.data_dir, self.url = data_dir, url

    async def scalar_list(self, sql: str) -> list[int]:
        if self.url is None:
            return [int(next(iter(r.values()))) for r in db_query(self.data_dir, sql)]
        conn = await asyncpg.connect(self.url)
        try:
            return [int(r[0]) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def count(self, table: str) -> int:
        return (await self.scalar_list(f"SELECT count(*) FROM {table}"))[0]


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_kill_9_at_random_moments_loses_nothing(
    emulator: BotApiEmulator, tmp_path: Path, mode: str, database: str | None
) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    rows = Rows(data_dir, database)
    extra: dict[str, str] = {} if database is None else {"DATABASE_URL": database}
    if mode == "webhook":
        port = free_port()
        extra |= {
            "SAFEBOT_PORT": str(port),
            "SAFEBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/tg/hook",
            "SAFEBOT_WEBHOOK_SECRET": SECRET,
        }
    process = BotProcess(bot_env(emulator, data_dir, **extra), tmp_path / "logs")
    users = [emulator.user(9000 + i, language_code="en") for i in range(PEOPLE)]
    await process.start()
    try:
        for user in users:
            await user.send_command("/start")
        for _kill in range(KILLS):
            stop = asyncio.Event()
            talkers = [asyncio.create_task(talk(u, rng, stop)) for u in users]
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            process.kill()
            stop.set()
            await asyncio.gather(*talkers)
            await process.start()
        # Everyone sends one last message and must be answered.
        last = {u.id: await u.send_text("are you there?") for u in users}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not all(answered_after(u, last[u.id]) for u in users):
            assert loop.time() < deadline, "some people got no answer to their last message"
            await asyncio.sleep(0.1)
        # Every reply goes out at Telegram's 30 a second: a few hundred take a while.
        deadline = loop.time() + 120
        while await rows.count("inbox") or await rows.count("outbox"):
            assert loop.time() < deadline, f"seed {seed}: inbox or outbox never drained"
            await asyncio.sleep(0.2)
        handled = set(await rows.scalar_list("SELECT update_id FROM processed_updates"))
        inbox, outbox = await rows.count("inbox"), await rows.count("outbox")
        stderr = process.stderr()
    finally:
        code = await stop_bot_process(process)
    created = [u["update_id"] for u in emulator.updates]
    lost = [uid for uid in created if uid not in handled]
    unanswered = [
        u.id
        for u in users
        for m in u.chat.messages
        if not m.from_bot and m.kind == "text"
        if not answered_after(u, m.message_id)
    ]
    kind = "sqlite" if database is None else "postgresql"
    print(
        f"{mode} {kind} seed {seed}: {len(created)} updates, {len(lost)} lost, "
        f"inbox {inbox}, outbox {outbox}, {process.runs} runs"
    )
    assert lost == [], f"seed {seed}: updates handed over but never handled: {lost[:10]}"
    assert inbox == 0 and outbox == 0, f"seed {seed}"
    assert unanswered == [], f"seed {seed}"
    assert "given up" not in stderr, f"seed {seed}"
    assert "Traceback" not in stderr, f"seed {seed}: {stderr[-3000:]}"
    assert code == 0
