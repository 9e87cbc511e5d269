"""Browser fixtures: the whole stack in-process (the real safebot on the Bot API emulator,
serving the portal at http://127.0.0.1:PORT/portal/), and Debian's headless Chromium driven by
Playwright's async API on the same event loop.

Playwright never downloads a browser here (`playwright install` is not used): it launches
/usr/bin/chromium, which `./dev setup` installs with apt-get. Without it the browser test
modules skip themselves (`require_chromium`), except under CI, where they must run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
    expect,
)

from bot.app import RunningServer
from bot.portal import accounts
from bot.portal.state import PORTAL, Portal
from tests.e2e.conftest import (
    bot_env,
    data_dir,
    db_query,
    demo_identity,
    demo_passphrase,
    emulator,
    start_bot,
)
from tests.e2e.emulator import BotApiEmulator

__all__ = ["data_dir", "emulator"]

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: without the background-networking switches Chromium keeps
# retrying refused connections (component updates, sync, QUIC probes) and can hang.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ORG = "eastshire-hub"
PASSPHRASE = "quiet-harbour-lantern-47"
UI_TIMEOUT_MS = 15_000  # generous: other suites may load the machine's 2 cores meanwhile
expect.set_options(timeout=UI_TIMEOUT_MS)


def require_chromium() -> None:
    """Skip the calling test module without Chromium (under CI: fail, it must be there)."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"{CHROMIUM} is missing: `./dev setup` installs it (apt-get install chromium)"
    if os.environ.get("CI"):
        raise RuntimeError(f"browser tests cannot run under CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


# ---- the stack --------------------------------------------------------------------------------


def portal_of(server: RunningServer) -> Portal:
    """The portal state of the running server (the sub-application mounted at /portal/)."""
    for resource in server.runner.app.router.resources():
        sub = resource.get_info().get("app")
        if isinstance(sub, web.Application) and PORTAL in sub:
            return sub[PORTAL]
    raise LookupError("no portal mounted on the server")


@dataclass
class Stack:
    server: RunningServer
    emulator: BotApiEmulator
    data_dir: Path
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """`path` under /portal/ ("inbox", "requests/ID")."""
        return f"{self.origin}/portal/{path.lstrip('/')}"

    @property
    def portal(self) -> Portal:
        return portal_of(self.server)

    async def invite(self, name: str, *, admin: bool = False, org: str = ORG) -> str:
        """A one-time set-up link, made as `safebot advocates add` makes it (same function)."""
        portal = self.portal
        _, link = await accounts.invite(
            portal.sessions,
            portal.settings,
            portal.secrets,
            organisation=org,
            name=name,
            is_admin=admin,
            now=portal.clock(),
        )
        return link

    def request_ids(self) -> list[str]:
        rows = db_query(self.data_dir, "SELECT id FROM contact_requests ORDER BY created_at")
        return [str(r["id"]) for r in rows]

    def identity_file(self, org: str = ORG) -> Path:
        return demo_identity(self.data_dir, org)

    def identity_passphrase(self) -> str:
        return demo_passphrase(self.data_dir).read_text().strip()


@pytest.fixture
async def stack(
    emulator: BotApiEmulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    # The in-process portal reads its settings from os.environ (bot/app.py build_portal_state
    # calls load_portal_settings without the env given to start_server): keep a developer's
    # own SAFEBOT_PUBLIC_URL / portal settings out of the test, so links are this server's.
    for name in list(os.environ):
        if name == "SAFEBOT_PUBLIC_URL" or name.startswith("SAFEBOT_PORTAL_"):
            monkeypatch.delenv(name)
    env = bot_env(emulator, data_dir)
    server = await start_bot(env)
    try:
        yield Stack(server, emulator, data_dir, int(env["SAFEBOT_PORT"]))
    finally:
        await server.stop()


# ---- the browser ------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium per test (Playwright's objects belong to the event loop that
    made them, and every test has its own loop; a launch takes well under a second)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Visitor:
    """One person's browser (a context: its own cookies) and the page she works in, with
    everything the pages said on the console and every uncaught script error."""

    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def problems(self) -> list[str]:
        """Console errors and warnings, and script errors: a portal page should cause none.
        (Chromium also logs every response of status 400 or more, "Failed to load resource":
        a wrong code's 401 or a used link's 404 is what a test asks for, not a problem.)"""
        said = [m for m in self.console if m.startswith(("error:", "warning:"))]
        return [m for m in said if "Failed to load resource" not in m] + [
            f"pageerror: {e}" for e in self.page_errors
        ]


VisitorFactory = Callable[..., Awaitable[Visitor]]


@pytest.fixture
async def visitor(browser: Browser) -> AsyncIterator[VisitorFactory]:
    """`await visitor(**context_options)`: a new browser context and page. At the end of the
    test, no portal page may have logged a CSP violation, a console error or a script error."""
    made: list[Visitor] = []

    async def make(**options: Any) -> Visitor:
        context = await browser.new_context(**options)
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = await context.new_page()
        person = Visitor(context, page)

        def on_console(message: ConsoleMessage) -> None:
            person.console.append(f"{message.type}: {message.text}")

        def on_error(error: Error) -> None:
            person.page_errors.append(str(error))

        context.on("console", on_console)
        page.on("pageerror", on_error)
        made.append(person)
        return person

    yield make
    problems = [p for person in made for p in person.problems()]
    for person in made:
        await person.context.close()
    assert not problems, f"the portal's pages logged problems: {problems}"


# ---- a person's path through the portal ---------------------------------------------------------

SECRET_RE = re.compile(r"[A-Z2-7]{16,}")


# A code typed this many seconds before the portal stops taking it is not typed: it could
# expire between the browser and the server on a loaded machine.
CODE_MARGIN_SECONDS = 8.0


@dataclass
class Authenticator:
    """Her authenticator app, on the real clock. The portal takes the code of the current
    30-second step or of one step either side (clock drift), and never a step at or before
    one used already; each code given here is of the earliest step still good for at least
    CODE_MARGIN_SECONDS, so the next login has a later step left."""

    secret: str
    last_step: int = -1

    async def code(self) -> str:
        totp = pyotp.TOTP(self.secret)
        while True:
            now = dt.datetime.now(dt.UTC).timestamp()
            current = int(now // totp.interval)
            for step in range(max(self.last_step + 1, current - 1), current + 2):
                taken_until = (step + 2) * totp.interval  # the end of step + 1
                if taken_until - now >= CODE_MARGIN_SECONDS:
                    self.last_step = step
                    return str(totp.generate_otp(step))
            await asyncio.sleep(1)  # every good step is used: wait for the clock


@dataclass
class Account:
    login: str
    passphrase: str
    app: Authenticator
    recovery_codes: list[str]


async def set_up_account(page: Page, link: str, *, name: str, login: str) -> Account:
    """Open a set-up link and do what it asks: login name, passphrase twice, the TOTP key
    shown on the page entered in an authenticator (pyotp); see the recovery codes."""
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Set up your account")).to_be_visible()
    await expect(page.get_by_text(f"Welcome, {name}.")).to_be_visible()
    secret = (await page.locator("code.secret").inner_text()).strip()
    assert SECRET_RE.fullmatch(secret), "the page shows a base32 TOTP key"
    await expect(page.locator("figure.qr svg")).to_be_visible()
    app = Authenticator(secret)
    await page.get_by_label("Login name").fill(login)
    await page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    await page.get_by_label("Passphrase again").fill(PASSPHRASE)
    await page.get_by_label("The 6-digit code the app shows now").fill(await app.code())
    await page.get_by_role("button", name="Set up my account").click()
    await expect(page.get_by_role("heading", name="Your account is ready")).to_be_visible()
    codes = [c.strip() for c in await page.locator("ol.codes code").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10, "ten different recovery codes"
    return Account(login, PASSPHRASE, app, codes)


async def log_in(stack: Stack, page: Page, account: Account, *, code: str | None = None) -> None:
    await page.goto(stack.url("login"))
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.get_by_label("Login name").fill(account.login)
    await page.get_by_label("Passphrase").fill(account.passphrase)
    await page.get_by_label("Code from your authenticator app").fill(
        code if code is not None else await account.app.code()
    )
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(stack.url("inbox"))
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


NO_KEY = "This session cannot open requests: it holds no organisation key."


async def unlock(stack: Stack, page: Page, org: str = ORG) -> None:
    """As the organisation's first admin: follow the notice's link, upload the identity file
    and type its passphrase."""
    await expect(page.get_by_text(NO_KEY)).to_be_visible()
    await page.get_by_role("link", name="Unlock with the organisation's identity file").click()
    await expect(page).to_have_url(stack.url("unlock"))
    await page.get_by_label("Identity file").set_input_files(stack.identity_file(org))
    await page.get_by_label("Its passphrase").fill(stack.identity_passphrase())
    await page.get_by_role("button", name="Unlock").click()
    await expect(page).to_have_url(stack.url("inbox"))
    await expect(page.get_by_text(NO_KEY)).to_have_count(0)


async def ready_admin(stack: Stack, page: Page, name: str = "Ada Admin") -> Account:
    """An admin set up by link, logged in, with the organisation key unlocked."""
    link = await stack.invite(name, admin=True)
    account = await set_up_account(page, link, name=name, login="ada")
    await log_in(stack, page, account)
    await unlock(stack, page)
    return account


async def page_widths(page: Page) -> tuple[int, int]:
    """(document scroll width, viewport width): equal when nothing scrolls sideways."""
    widths: list[int] = await page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    return widths[0], widths[1]
