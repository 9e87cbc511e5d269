"""The outreach role in a real headless Chromium: an admin invites an outreach worker from the
team page; she sets up her account from the link (passphrase and authenticator), logs in and
lands on the campaigns; makes a campaign, sees its link in every enabled language and
downloads a QR code that reads back as the link; the inbox is closed to her. No page logs a
CSP violation, a console error or a script error (the `visitor` fixture checks).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect

from flows.i18n import native_name
from tests.browser.conftest import (
    Account,
    Stack,
    VisitorFactory,
    require_chromium,
    set_up_account,
)
from tests.browser.conftest import (
    log_in as log_in_advocate,
)
from tests.e2e.conftest import bot_env, start_bot
from tests.e2e.emulator import BOT_USERNAME, BotApiEmulator

require_chromium()

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def named_stack(
    emulator: BotApiEmulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    """The browser tests' stack (tests/browser/conftest.py `stack`), with the bot's username
    set, as a deployment that prints campaign links sets it."""
    for name in list(os.environ):
        if name == "SAFEBOT_PUBLIC_URL" or name.startswith("SAFEBOT_PORTAL_"):
            monkeypatch.delenv(name)
    env = bot_env(emulator, data_dir, SAFEBOT_BOT_USERNAME=BOT_USERNAME)
    server = await start_bot(env)
    try:
        yield Stack(server, emulator, data_dir, int(env["SAFEBOT_PORT"]))
    finally:
        await server.stop()


async def log_in_outreach(stack: Stack, page: Page, account: Account) -> None:
    await page.goto(stack.url("login"))
    await page.get_by_label("Login name").fill(account.login)
    await page.get_by_label("Passphrase").fill(account.passphrase)
    await page.get_by_label("Code from your authenticator app").fill(await account.app.code())
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(stack.url("campaigns"))
    await expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()


async def test_an_admin_invites_an_outreach_worker_who_makes_a_campaign_and_downloads_its_qr(
    named_stack: Stack, visitor: VisitorFactory, tmp_path: Path
) -> None:
    stack = named_stack
    # The admin: set up from a link, logged in (no need to unlock: she only invites).
    ada = await visitor()
    admin = await set_up_account(
        ada.page, await stack.invite("Ada Admin", admin=True), name="Ada Admin", login="ada"
    )
    await log_in_advocate(stack, ada.page, admin)
    await ada.page.get_by_role("link", name="Team").click()
    await ada.page.get_by_label("Name").fill("Olu Outreach")
    await ada.page.get_by_role("radio", name=re.compile("Outreach worker")).check()
    await ada.page.get_by_role("button", name="Make a set-up link").click()
    link = (await ada.page.locator("code.secret").inner_text()).strip()
    assert link.startswith(stack.url("setup/"))
    row = ada.page.get_by_role("row").filter(has_text="Olu Outreach")
    await expect(row).to_contain_text("Outreach worker")
    await expect(row.get_by_role("button", name="Grant access")).to_have_count(0)

    # The outreach worker, in her own browser.
    olu = await visitor(accept_downloads=True)
    page = olu.page
    account = await set_up_account(page, link, name="Olu Outreach", login="olu")
    await log_in_outreach(stack, page, account)
    await expect(page.get_by_role("link", name="Inbox")).to_have_count(0)
    await expect(page.get_by_text("A campaign has no name or label here")).to_be_visible()
    await page.get_by_role("button", name="Make a new campaign").click()
    await expect(page.get_by_role("heading", name=re.compile("^Campaign "))).to_be_visible()
    code = (await page.locator("h1 code").inner_text()).strip()
    assert re.fullmatch(r"[A-Za-z0-9]{8}", code)
    await expect(page).to_have_url(stack.url(f"campaigns/{code}?said=made"))

    languages = stack.portal.deployment.languages
    shown = [t.strip() for t in await page.locator("code.link").all_inner_texts()]
    assert shown == [f"https://t.me/{BOT_USERNAME}?start=c-{code}-{lang}" for lang in languages]
    for lang in ("en", "pl", "ar"):
        await expect(
            page.locator(f"#lang-{lang} h3").filter(has_text=native_name(lang))
        ).to_be_visible()

    english = page.locator("#lang-en")
    async with page.expect_download() as download_info:
        await english.get_by_role("link", name="PNG", exact=True).click()
    download = await download_info.value
    assert download.suggested_filename == f"qr-{code}-en.png"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    with Image.open(saved) as image:
        found = [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]
    assert found == [f"https://t.me/{BOT_USERNAME}?start=c-{code}-en"]

    # The list shows it; the inbox is not hers.
    await page.get_by_role("link", name="Campaigns", exact=True).click()
    await expect(page.get_by_role("row").filter(has_text=code)).to_contain_text("Active")
    await page.goto(stack.url("inbox"))
    await expect(
        page.get_by_text("This page is for advocates. An outreach account sees the campaigns only.")
    ).to_be_visible()
    assert not olu.csp_violations() and not ada.csp_violations()
