"""Two `safebot run` processes on one PostgreSQL behind a proxy that hands each webhook call to
the other process in turn, so one person's updates alternate between them. Per-person order
holds (no "That button is from an earlier message"), everyone reaches Send, and each request
is stored once. Skipped, with the reason, when no PostgreSQL server answers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from tests.e2e.conftest import (
    BotProcess,
    bot_env,
    fill_request,
    free_port,
    send_request,
    step_title,
    stop_bot_process,
)
from tests.e2e.emulator import BotApiEmulator

SECRET = "two-process-secret"
PEOPLE = 10
STALE = "That button is from an earlier message"
ANSWERS: dict[str, str | None] = {
    "method": "call",
    "phone": "07911 123456",
    "times": "evenings",
    "leave_message": "no",
    "someone_else": "hang_up",
    "language": "en",
    "urgent": "no",
    "organisation": "none",
}


class Alternating:
    """A reverse proxy that forwards each webhook call to the next backend in turn."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = itertools.cycle(backends)
        self.forwarded = 0

    async def handle(self, request: web.Request) -> web.Response:
        target = next(self.backends)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-telegram")}
        headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as http,
            http.post(target, data=body, headers=headers) as resp,
        ):
            self.forwarded += 1
            return web.Response(status=resp.status)


def shared_keys() -> dict[str, str]:
    """The three server secrets, the same for every process (as a deployment must set them)."""
    return {
        name: base64.b64encode(os.urandom(32)).decode()
        for name in ("SAFEBOT_USER_HASH_KEY", "SAFEBOT_DRAFT_KEY", "SAFEBOT_LOOKUP_KEY")
    }


@contextlib.asynccontextmanager
async def behind_alternating_proxy(
    emulator: BotApiEmulator, tmp_path: Path, pg_url: str, **extra: str
) -> AsyncIterator[tuple[Alternating, list[BotProcess]]]:
    """Two `safebot run` processes in webhook mode on one database, behind one proxy."""
    proxy_port = free_port()
    hook = f"http://127.0.0.1:{proxy_port}/hook"
    keys = shared_keys()
    processes: list[tuple[BotProcess, int]] = []
    for n in range(2):
        port = free_port()
        env = bot_env(
            emulator,
            tmp_path / "data",  # one data dir: the demo keys are made by the first
            DATABASE_URL=pg_url,
            SAFEBOT_PORT=str(port),
            SAFEBOT_WEBHOOK_URL=hook,
            SAFEBOT_WEBHOOK_SECRET=SECRET,
            **keys,
            **extra,
        )
        processes.append((BotProcess(env, tmp_path / f"logs-{n}"), port))
    proxy = Alternating([f"http://127.0.0.1:{port}/hook" for _p, port in processes])
    app = web.Application()
    app.router.add_post("/hook", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", proxy_port).start()
    try:
        for process, _port in processes:
            await process.start()
        yield proxy, [p for p, _ in processes]
    finally:
        for process, _port in processes:
            await stop_bot_process(process)
        await runner.cleanup()


async def test_one_persons_updates_alternating_between_processes_keep_order(
    emulator: BotApiEmulator, tmp_path: Path, pg_url: str
) -> None:
    async with behind_alternating_proxy(emulator, tmp_path, pg_url) as (proxy, _processes):
        users = [emulator.user(9500 + i, language_code="en") for i in range(PEOPLE)]

        async def through(user_index: int) -> str:
            user = users[user_index]
            await fill_request(user, "en", ANSWERS, timeout=20)
            _done, reference = await send_request(user, "en", timeout=20)
            return reference

        references = await asyncio.gather(*(through(i) for i in range(PEOPLE)))
        stale = sum(STALE in (m.text or "") for u in users for m in u.chat.messages if m.from_bot)
        conn = await asyncpg.connect(pg_url)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM contact_requests")
        finally:
            await conn.close()
    print(f"{proxy.forwarded} webhook calls alternated; stale presses {stale}")
    assert proxy.forwarded > PEOPLE * 10
    assert stale == 0
    assert len(set(references)) == PEOPLE
    assert stored == PEOPLE


# Each command and the title of the screen it answers with.
BURST = [("menu", "menu"), ("language", "language"), ("status", "status"), ("start", "welcome")]


async def test_a_burst_sent_without_waiting_is_answered_in_order_across_processes(
    emulator: BotApiEmulator, tmp_path: Path, pg_url: str
) -> None:
    # Unlike the walk above, nobody waits for a reply: a person's next update reaches the
    # other process while the first is still being handled or its reply is still queued, so
    # only the shared per-person order (inbox turns under the chat's lock, and each send
    # checked to be the chat's first waiting reply) keeps her screens in the order she asked.
    rounds = 3
    async with behind_alternating_proxy(emulator, tmp_path, pg_url) as (proxy, _processes):
        users = [emulator.user(9600 + i, language_code="en") for i in range(PEOPLE)]
        for user in users:
            await user.send_command("start")
        await asyncio.gather(*(u.wait_for_bot_messages(1, timeout=20) for u in users))

        async def burst(user_index: int) -> list[str]:
            user = users[user_index]
            before = len(user.bot_messages())
            for _ in range(rounds):
                for command, _step in BURST:
                    await user.send_command(command)
            await user.wait_for_bot_messages(rounds * len(BURST), timeout=30)
            await user.settle(timeout=10)
            return [m.text or "" for m in user.bot_messages()[before:]]

        answers = await asyncio.gather(*(burst(i) for i in range(PEOPLE)))
    expected = [step_title("en", step) for _ in range(rounds) for _c, step in BURST]
    out_of_order = 0
    for texts in answers:
        assert len(texts) == len(expected), texts
        out_of_order += sum(title not in text for title, text in zip(expected, texts, strict=True))
    print(f"{proxy.forwarded} webhook calls alternated; screens out of order {out_of_order}")
    assert out_of_order == 0


async def test_polling_elects_one_poller_and_another_takes_over_after_kill_9(
    emulator: BotApiEmulator, tmp_path: Path, pg_url: str
) -> None:
    keys = shared_keys()
    processes = [
        BotProcess(
            bot_env(emulator, tmp_path / "data", DATABASE_URL=pg_url, **keys), tmp_path / f"l{n}"
        )
        for n in range(2)
    ]
    try:
        for process in processes:
            await process.start()
        user = emulator.user(9600, language_code="en")
        await user.send_command("/start")
        (welcome,) = await user.next_replies(1, timeout=20)
        assert "Welcome" in (welcome.text or "")
        conflicts = [e for e in emulator.errors if e[0] == "getUpdates" and e[1] == 409]
        assert conflicts == [], "both processes polled at once"
        leader = next(p for p in processes if "this process polls" in p.stderr())
        leader.kill()
        await user.press("Continue")
        (menu,) = await user.next_replies(1, timeout=30)
        assert "How can I help?" in (menu.text or "")
        survivor = next(p for p in processes if p is not leader)
        assert "this process polls" in survivor.stderr()
    finally:
        for process in processes:
            await stop_bot_process(process)


async def test_two_processes_share_one_send_budget(
    emulator: BotApiEmulator, tmp_path: Path, pg_url: str
) -> None:
    """Telegram's limit is per bot: two processes together must not send faster than it. With
    the overall rate set to 10 a second, the run averages at most 10 a second and no second
    sees much more (a late wake-up can bring two sends closer), where two unshared budgets
    would allow 20."""
    rate = 10
    sent_at: list[float] = []
    name, handler = emulator._methods["sendmessage"]

    async def timed(params: dict[str, object]) -> object:
        result = await handler(params)
        sent_at.append(asyncio.get_running_loop().time())
        return result

    emulator._methods["sendmessage"] = (name, timed)
    async with behind_alternating_proxy(emulator, tmp_path, pg_url, SAFEBOT_SEND_RATE=str(rate)):
        crowd = [emulator.user(9700 + i, language_code="en") for i in range(40)]
        for user in crowd:
            await user.send_command("/start")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not all(u.chat.bot_messages() for u in crowd):
            assert loop.time() < deadline, "not everyone got a first reply"
            await asyncio.sleep(0.05)
    busiest = max(sum(1 for t in sent_at if s <= t < s + 1.0) for s in sent_at)
    print(f"{len(sent_at)} sends from two processes; busiest second {busiest} (limit {rate})")
    print(f"average {(len(sent_at) - 1) / (max(sent_at) - min(sent_at)):.1f} a second")
    average = (len(sent_at) - 1) / (max(sent_at) - min(sent_at))
    assert len(sent_at) >= 40
    assert average <= rate * 1.1, average
    assert busiest <= rate + 3
