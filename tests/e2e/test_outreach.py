"""Outreach links through the Telegram path: a payload printed by `safebot outreach link`
opens the bot in its language and is counted; malformed, over-long, unknown and retired ones
start normally in the phone's language and count for no campaign (only as conversations with
none, "-"); a request after a campaign start counts `requested`; and the payload is found in
no file the program wrote."""

from __future__ import annotations

from pathlib import Path

from bot.app import RunningServer
from tests.e2e.conftest import (
    BotProcess,
    db_query,
    fill_request,
    run_cli,
    send_request,
    stop_bot_process,
)
from tests.e2e.emulator import BotApiEmulator, EmulatedUser
from tests.e2e.test_canary import answers, scan

USERNAME = "eastshire_test_bot"


async def campaign(data_dir: Path) -> str:
    made = await run_cli(data_dir, "outreach", "campaign", "add")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


async def link_payload(data_dir: Path, code: str, lang: str) -> str:
    printed = await run_cli(
        data_dir,
        "outreach",
        "link",
        "--campaign",
        code,
        "--lang",
        lang,
        SAFEBOT_BOT_USERNAME=USERNAME,
    )
    assert printed.returncode == 0, printed.stderr
    prefix = f"https://t.me/{USERNAME}?start="
    assert printed.stdout.startswith(prefix), printed.stdout
    return printed.stdout.strip().removeprefix(prefix)


def counts(data_dir: Path) -> list[tuple[str, str, int, int]]:
    rows = db_query(
        data_dir,
        "SELECT campaign, language, started, requested FROM outreach_counts"
        " ORDER BY campaign, language",
    )
    return [(r["campaign"], r["language"], r["started"], r["requested"]) for r in rows]


async def first_screen(user: EmulatedUser, payload: str | None) -> str:
    await user.send_command("/start", payload)
    (reply,) = await user.next_replies(1)
    return reply.text or ""


async def test_a_link_opens_its_language_and_is_counted(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    code = await campaign(data_dir)
    for n, lang in enumerate(("pl", "ur")):
        payload = await link_payload(data_dir, code, lang)
        # The same screen as the bare-language start, though her phone says English.
        expected = await first_screen(emulator.user(4100 + n), lang)
        assert await first_screen(emulator.user(4200 + n, language_code="en"), payload) == expected
    # The bare-language starts are conversations by no campaign; the links count for theirs.
    assert counts(data_dir) == [
        ("-", "pl", 1, 0),
        ("-", "ur", 1, 0),
        (code, "pl", 1, 0),
        (code, "ur", 1, 0),
    ]


async def test_malformed_over_long_unknown_and_retired_start_normally_uncounted(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    code, retired = await campaign(data_dir), await campaign(data_dir)
    good = await link_payload(data_dir, code, "pl")
    stale = await link_payload(data_dir, retired, "pl")
    assert (await run_cli(data_dir, "outreach", "campaign", "retire", retired)).returncode == 0
    phone = await first_screen(emulator.user(4300, language_code="ar"), None)
    bad = [
        good[:-1] + "!",  # outside Telegram's alphabet
        good + "-x",  # malformed
        good + "_" * 64,  # over 64 characters
        f"c-{code[:7]}-pl",  # not a code
        "c-Zz9Zz9Zz-pl",  # no such campaign
        f"c-{code}-xx",  # not an enabled language
        stale,  # retired
    ]
    for n, payload in enumerate(bad):
        user = emulator.user(4310 + n, language_code="ar")
        assert await first_screen(user, payload) == phone, payload
    # Eight new conversations, none for a campaign.
    assert counts(data_dir) == [("-", "ar", 1 + len(bad), 0)]


async def test_a_request_after_a_campaign_start_counts_requested(
    emulator: BotApiEmulator, polling_bot: RunningServer, data_dir: Path
) -> None:
    code = await campaign(data_dir)
    user = emulator.user(4400, language_code="en")
    await first_screen(user, await link_payload(data_dir, code, "pl"))
    await fill_request(user, "pl", answers("07911 123456", "cw-4400", "outreach request"))
    await send_request(user, "pl")
    assert counts(data_dir) == [(code, "pl", 1, 1)]
    shown = await run_cli(data_dir, "outreach", "counts")
    assert shown.returncode == 0 and "fewer than 10" in shown.stdout
    assert " 1 " not in f" {shown.stdout} "


async def test_the_payload_is_in_no_file_the_program_wrote(
    emulator: BotApiEmulator, bot_process: BotProcess, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    await bot_process.start()
    try:
        await bot_process.wait_healthy()
        code = await campaign(data_dir)
        payload = await link_payload(data_dir, code, "pl")
        user = emulator.user(4500, language_code="en")
        await first_screen(user, payload)
        await fill_request(user, "pl", answers("07911 123456", "cw-4500", "canary outreach"))
    finally:
        assert await stop_bot_process(bot_process) == 0
    assert counts(data_dir) == [(code, "pl", 1, 0)]  # the start did reach the program
    assert scan([data_dir, tmp_path / "logs"], [payload]) == []
