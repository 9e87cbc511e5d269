"""The advocates' portal in a real headless Chromium, as a person uses it: a set-up link from
`safebot advocates add`, the passphrase and an authenticator code, the organisation's identity
file; a victim's request typed in Telegram (the Bot API emulator) and worked to closed while
her /status follows; a colleague and the claim's lease; what she typed shown as text and never
run; no JavaScript at all; a phone-sized screen.

The whole stack runs in this test's event loop: the real safebot (start_bot) on the emulator,
serving the portal at http://127.0.0.1:PORT/portal/, and Chromium through Playwright's async
API. Time is real: TOTP codes are made for the real clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re

import pytest
from playwright.async_api import Locator, Page, expect

from bot.portal.work import short_ref
from tests.browser.conftest import (
    NO_KEY,
    ORG,
    Stack,
    VisitorFactory,
    log_in,
    page_widths,
    ready_admin,
    require_chromium,
    set_up_account,
    unlock,
)
from tests.e2e.conftest import fill_request, flow_string, plain, run_cli, send_request
from tests.e2e.emulator import EmulatedUser

require_chromium()

pytestmark = pytest.mark.timeout(120)

PHONE = "07911 123456"
BOT_TIMEOUT = 20.0  # seconds for the bot's replies: other suites may load the machine meanwhile
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=2">'  # 36 characters: fits the code word (40)


def victim_answers(**overrides: str | None) -> dict[str, str | None]:
    answers: dict[str, str | None] = {
        "method": "call",
        "phone": PHONE,
        "times": "evenings+weekends",
        "leave_message": "no",
        "someone_else": "wrong_number",
        "codeword": "heron",
        "language": "en",
        "interpreter": None,
        "urgent": "no",
        "threats": None,
        "documents": None,
        "children": None,
        "organisation": ORG,
        "message": None,
    }
    answers.update(overrides)
    return answers


async def submit(user: EmulatedUser, lang: str, answers: dict[str, str | None]) -> str:
    """The victim fills the contact form in Telegram and presses Send; her reference."""
    await fill_request(user, lang, answers, timeout=BOT_TIMEOUT)
    _, reference = await send_request(user, lang, timeout=BOT_TIMEOUT)
    return reference


async def status(user: EmulatedUser, reference: str) -> str:
    """What the bot answers her `/status REFERENCE` (one message: the answer, then the
    screen)."""
    await user.send_command("/status", reference)
    replies = await user.next_replies(1, quiet=0.05, timeout=BOT_TIMEOUT)
    return "\n".join(plain(m) for m in replies)


def inbox_row(page: Page, ref: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=ref, exact=True))


def cell(row: Locator, label: str) -> Locator:
    return row.locator(f'td[data-label="{label}"]')


def answer(page: Page, label: str) -> Locator:
    """The words under `label` on the opened request (its <dd>)."""
    term = page.locator("section.sheet dt").filter(has_text=re.compile(f"^{re.escape(label)}$"))
    return term.locator("xpath=following-sibling::dd[1]")


async def open_inbox(stack: Stack, page: Page, view: str = "unassigned") -> None:
    await page.goto(stack.url(f"inbox?view={view}"))
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


async def claim_and_open(stack: Stack, page: Page, ref: str) -> None:
    """From the inbox: the request's link, then "Claim and open"."""
    await open_inbox(stack, page)
    await page.get_by_role("link", name=ref, exact=True).click()
    await expect(page.get_by_role("heading", name=f"Request {ref}")).to_be_visible()
    await page.get_by_role("button", name="Claim and open").click()
    await expect(page.get_by_text("Genuine: written by the bot, unchanged.")).to_be_visible()


# ---- 1. set-up link, enrolment, log in, first admin unlocks ------------------------------------


async def test_first_admin_sets_up_from_the_cli_link_logs_in_and_unlocks(
    stack: Stack, visitor: VisitorFactory
) -> None:
    added = await run_cli(
        stack.data_dir,
        *("advocates", "add", "--org", ORG, "--name", "Ada Admin", "--admin"),
        SAFEBOT_PORT=str(stack.port),
    )
    assert added.returncode == 0, added.stderr
    assert f"added to {ORG}" in added.stdout
    link = added.stdout.strip().splitlines()[-1]
    # The link's origin is this server (http://SAFEBOT_HOST:SAFEBOT_PORT without
    # SAFEBOT_PUBLIC_URL), so it opens as printed.
    assert link.startswith(stack.url("setup/")), (
        "a set-up link of this server (the token is not printed)"
    )

    ada = await visitor()
    page = ada.page
    response = await page.goto(link)
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'none'" in csp, csp
    account = await set_up_account(page, link, name="Ada Admin", login="ada")
    # Over plain http on 127.0.0.1 the cookies are not Secure (else the browser would drop
    # them and nothing would work), but HttpOnly and SameSite=Strict, for /portal only.
    cookies = await ada.context.cookies()
    assert cookies, "the portal set its pre-session cookie"
    for cookie in cookies:
        assert cookie["secure"] is False and cookie["httpOnly"] is True, cookie
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/portal", cookie

    # The link works once.
    await page.goto(link)
    await expect(
        page.get_by_role("heading", name="This set-up link cannot be used")
    ).to_be_visible()

    # A wrong code does not log in.
    await page.goto(stack.url("login"))
    await page.get_by_label("Login name").fill("ada")
    await page.get_by_label("Passphrase").fill(account.passphrase)
    await page.get_by_label("Code from your authenticator app").fill("000000")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "The login name, passphrase or code is wrong."
    )
    await expect(page).to_have_url(stack.url("login"))

    await log_in(stack, page, account)
    await expect(page.get_by_role("button", name="Log out (Ada Admin)")).to_be_visible()
    await expect(page.get_by_role("link", name="Team")).to_be_visible()
    session_cookie = [c for c in await ada.context.cookies() if c["name"] == "sb_session"]
    assert len(session_cookie) == 1 and session_cookie[0]["secure"] is False
    # No organisation key in this session yet; the first admin unlocks with the identity file.
    await unlock(stack, page)
    await expect(page.get_by_text("No requests here.")).to_be_visible()

    # A wrong identity passphrase is refused, and says so.
    await page.goto(stack.url("unlock"))
    await page.get_by_label("Identity file").set_input_files(stack.identity_file())
    await page.get_by_label("Its passphrase").fill("not the passphrase")
    await page.get_by_role("button", name="Unlock").click()
    await expect(page.get_by_role("alert")).to_contain_text("The identity file was refused")

    # Logging out ends the session: the inbox sends her to the login page.
    await page.get_by_role("button", name="Log out (Ada Admin)").click()
    await expect(page).to_have_url(stack.url("login"))
    await page.goto(stack.url("inbox"))
    await expect(page).to_have_url(stack.url("login"))
    assert not ada.csp_violations()


# ---- 2. a request from Telegram, worked to closed; her /status follows ---------------------------


async def test_a_request_from_telegram_is_claimed_opened_and_closed_while_status_follows(
    stack: Stack, visitor: VisitorFactory
) -> None:
    lang = "pl"  # she talks to the bot in Polish, and chooses the Eastshire hub
    victim = stack.emulator.user(4101, language_code=lang)
    reference = await submit(
        victim, lang, victim_answers(urgent="yes", language="pl", codeword="czapla")
    )
    (request_id,) = stack.request_ids()
    ref = short_ref(request_id)
    assert (await status(victim, reference)).startswith(flow_string(lang, "status_waiting"))

    page = (await visitor()).page
    await ready_admin(stack, page)
    await open_inbox(stack, page)
    await expect(page.get_by_role("link", name="Unassigned")).to_have_attribute(
        "aria-current", "page"
    )
    row = inbox_row(page, ref)
    await expect(row).to_have_count(1)
    await expect(row).to_have_class("urgent")
    await expect(cell(row, "Urgent")).to_have_text("Urgent")
    await expect(cell(row, "Language")).to_have_text(lang)
    await expect(cell(row, "Status")).to_have_text("New")
    await expect(cell(row, "Held by")).to_have_text("–")

    await claim_and_open(stack, page, ref)
    await expect(page.locator(".tag.urgent")).to_have_text("Urgent")
    await expect(page.locator("p.meta")).to_contain_text("held by Ada Admin")
    # Laid out in words, not codes.
    await expect(answer(page, "How to make contact")).to_have_text("Phone call")
    await expect(answer(page, "Safe phone number")).to_have_text(PHONE)
    await expect(answer(page, "Safe times")).to_contain_text("Evenings")
    await expect(answer(page, "Safe times")).to_contain_text("Weekends")
    await expect(answer(page, "May a message be left?")).to_have_text("No, do not leave one")
    await expect(answer(page, "If someone else answers")).to_have_text("Say it is a wrong number")
    await expect(answer(page, "Language to speak")).to_have_text("Polish (Polski)")
    await expect(answer(page, "In danger now or soon")).to_have_text("Yes")
    await expect(page.locator("p.codeword")).to_have_text("czapla")
    await expect(page.get_by_text("Say the code word first, before anything else")).to_be_visible()
    await expect(page.locator("main")).not_to_contain_text("wrong_number")
    # Opened: she is told a support worker has it.
    assert (await status(victim, reference)).startswith(flow_string(lang, "status_picked_up"))
    await open_inbox(stack, page)
    await expect(inbox_row(page, ref)).to_have_count(0)
    await open_inbox(stack, page, "mine")
    await expect(cell(inbox_row(page, ref), "Status")).to_have_text("Picked up")
    await expect(cell(inbox_row(page, ref), "Held by")).to_have_text("Ada Admin")

    await page.get_by_role("link", name=ref, exact=True).click()
    await page.get_by_role("button", name="Contacted").click()
    await expect(page.get_by_text("Recorded.")).to_be_visible()
    assert (await status(victim, reference)).startswith(flow_string(lang, "status_picked_up"))

    # Closing needs a reason: the browser will not send the form without one.
    await page.get_by_role("button", name="Close the request").click()
    await expect(page.get_by_label("Close, because")).to_be_visible()
    assert await page.get_by_label("Close, because").evaluate("s => !s.validity.valid")
    assert (await status(victim, reference)).startswith(flow_string(lang, "status_picked_up"))
    await page.get_by_label("Close, because").select_option(label="Contacted and supported")
    await page.get_by_role("button", name="Close the request").click()
    await expect(page.get_by_text("Recorded.")).to_be_visible()
    await expect(page.locator("p.meta")).to_contain_text("Closed")
    await expect(page.get_by_text("Genuine")).to_have_count(0)  # nothing more to read
    assert (await status(victim, reference)).startswith(flow_string(lang, "status_closed"))

    await open_inbox(stack, page)
    await expect(page.get_by_text("No requests here.")).to_be_visible()
    await open_inbox(stack, page, "all")
    await expect(cell(inbox_row(page, ref), "Status")).to_have_text("Closed")
    stack.emulator.assert_no_errors()


# ---- 3. a colleague, one holder at a time, the lease --------------------------------------------

# While the colleague looks, the lease is long enough for a loaded machine; then it is made
# short, and applies from the holder's next recorded action (opening the request again).
HELD = dt.timedelta(minutes=5)
SHORT_LEASE = dt.timedelta(seconds=2)


def set_lease(stack: Stack, lease: dt.timedelta) -> None:
    """SAFEBOT_PORTAL_LEASE_MINUTES counts whole minutes (1 at least), and the in-process
    server reads it from os.environ, not from the env given to start_bot: a lease of seconds
    can only be set on the running portal's settings (what the env variable would set)."""
    portal = stack.portal
    portal.settings = dataclasses.replace(portal.settings, lease=lease)


async def test_a_colleague_cannot_take_a_held_request_until_its_lease_lapses(
    stack: Stack, visitor: VisitorFactory
) -> None:
    set_lease(stack, HELD)
    victim = stack.emulator.user(4201)
    await submit(victim, "en", victim_answers(message="Please call after six"))
    (request_id,) = stack.request_ids()
    ref = short_ref(request_id)

    ada = (await visitor()).page
    await ready_admin(stack, ada)
    # The admin invites a colleague on the team page and gives her the link.
    await ada.get_by_role("link", name="Team").click()
    await ada.get_by_label("Name").fill("Bea Colleague")
    await ada.get_by_role("button", name="Make a set-up link").click()
    await expect(ada.get_by_text("Give this one-time set-up link to Bea Colleague")).to_be_visible()
    link = (await ada.locator("p.ok code.secret").inner_text()).strip()
    assert link.startswith(stack.url("setup/")), (
        "a set-up link of this server (the token is not printed)"
    )

    bea_visitor = await visitor()
    bea = bea_visitor.page
    account = await set_up_account(bea, link, name="Bea Colleague", login="bea")
    await expect(
        bea.get_by_text("An admin of your organisation must now grant you")
    ).to_be_visible()

    await ada.goto(stack.url("team"))  # not reload: that would send the invitation again
    bea_row = ada.get_by_role("row").filter(has_text="Bea Colleague")
    await expect(bea_row).to_contain_text("Set up")
    await bea_row.get_by_role("button", name="Grant access").click()
    await expect(bea_row).to_contain_text("Has access")

    await log_in(stack, bea, account)
    await expect(bea.get_by_text(NO_KEY)).to_have_count(0)  # the grant reached her session
    # Bea opens the request while it is free ...
    await bea.get_by_role("link", name=ref, exact=True).click()
    stale_claim = bea.get_by_role("button", name="Claim and open")
    await expect(stale_claim).to_be_visible()
    # ... Ada claims it first ...
    await claim_and_open(stack, ada, ref)
    # ... and Bea's claim is refused.
    await stale_claim.click()
    await expect(bea.get_by_text("A colleague holds this request.", exact=True)).to_be_visible()
    await expect(bea.get_by_text("only they can open it")).to_be_visible()
    await expect(bea.get_by_role("button", name="Claim and open")).to_have_count(0)
    await expect(bea.locator("main")).not_to_contain_text("Please call after six")
    await expect(bea.locator("p.meta")).to_contain_text("held by Ada Admin")
    await open_inbox(stack, bea, "all")
    await expect(cell(inbox_row(bea, ref), "Held by")).to_have_text("Ada Admin")
    await open_inbox(stack, bea)
    await expect(inbox_row(bea, ref)).to_have_count(0)

    # Ada opens it once more (a recorded action: the lease runs from here), then does nothing
    # for the lease time: it is free again (no sweep needed to see it).
    set_lease(stack, SHORT_LEASE)
    await ada.reload()
    await expect(answer(ada, "Their message")).to_have_text("Please call after six")
    deadline = asyncio.get_running_loop().time() + SHORT_LEASE.total_seconds() + 15
    while not await inbox_row(bea, ref).count():
        assert asyncio.get_running_loop().time() < deadline, "the lease never lapsed"
        await asyncio.sleep(0.5)
        await bea.reload()
    await expect(cell(inbox_row(bea, ref), "Held by")).to_have_text("–")
    await claim_and_open(stack, bea, ref)
    await expect(answer(bea, "Their message")).to_have_text("Please call after six")
    await expect(bea.locator("p.meta")).to_contain_text("held by Bea Colleague")
    # Now Ada is the one who cannot open it.
    await ada.reload()
    await expect(ada.get_by_text("A colleague holds this request, so only they")).to_be_visible()
    await expect(ada.locator("main")).not_to_contain_text("Please call after six")
    stack.emulator.assert_no_errors()


# ---- 4. what she typed is text, never script ----------------------------------------------------


async def test_what_the_victim_typed_is_shown_as_text_and_never_runs(
    stack: Stack, visitor: VisitorFactory
) -> None:
    victim = stack.emulator.user(4301)
    message = f"{SCRIPT} call after 6"
    await submit(victim, "en", victim_answers(codeword=IMG, message=message))
    (request_id,) = stack.request_ids()

    person = await visitor()
    page = person.page
    await ready_admin(stack, page)
    await claim_and_open(stack, page, short_ref(request_id))

    await expect(answer(page, "Their message")).to_have_text(message)
    await expect(page.locator("p.codeword")).to_have_text(IMG)
    shown = await page.locator("main").inner_text()
    assert SCRIPT in shown and IMG in shown
    assert await page.evaluate("window.__xss") is None
    # Nothing she typed became an element (the CSP would stop it running, but it must not
    # even be there).
    await expect(page.locator("main script")).to_have_count(0)
    await expect(page.locator("main img")).to_have_count(0)
    await expect(page.locator("[onerror]")).to_have_count(0)
    # The portal's own pages need no inline script or style: nothing violated the CSP.
    assert person.csp_violations() == []
    assert person.page_errors == []
    stack.emulator.assert_no_errors()


# ---- 5. without JavaScript -------------------------------------------------------------------


async def test_the_portal_works_without_javascript(stack: Stack, visitor: VisitorFactory) -> None:
    victim = stack.emulator.user(4401)
    await submit(victim, "en", victim_answers(message="No script needed"))
    (request_id,) = stack.request_ids()
    ref = short_ref(request_id)

    person = await visitor(java_script_enabled=False)
    page = person.page
    link = await stack.invite("Noor Nojs", admin=True)
    account = await set_up_account(page, link, name="Noor Nojs", login="noor")
    # A recovery code instead of the app's code works once.
    await log_in(stack, page, account, code=account.recovery_codes[0])
    await unlock(stack, page)
    row = inbox_row(page, ref)
    await expect(cell(row, "Status")).to_have_text("New")
    await claim_and_open(stack, page, ref)
    await expect(answer(page, "Their message")).to_have_text("No script needed")
    await page.get_by_role("button", name="Could not reach").click()
    await expect(page.get_by_text("Recorded.")).to_be_visible()
    await expect(page.locator("p.meta")).to_contain_text("1 attempt to reach")
    # Scripts really are off in this context.
    assert await page.evaluate("1 + 1") == 2  # Playwright's own evaluation still works ...
    await page.goto("data:text/html,<p id=p>off</p><script>p.textContent='on'</script>")
    await expect(page.locator("#p")).to_have_text("off")  # ... but no page script runs
    stack.emulator.assert_no_errors()


# ---- 6. a phone-sized screen -------------------------------------------------------------------

PHONE_SCREEN = {"width": 390, "height": 844}
LONG_MESSAGE = "Please call after six. " * 12 + "x" * 120  # a long unbroken word too


async def assert_fits_the_phone(page: Page, what: str) -> None:
    """Nothing scrolls sideways. On a phone (is_mobile) Chromium widens the layout viewport to
    fit content that overflows and zooms out, so innerWidth must stay the screen's too."""
    scroll, viewport = await page_widths(page)
    assert viewport == PHONE_SCREEN["width"], f"{what}: zoomed out to {viewport} px"
    assert scroll <= viewport, f"{what}: {scroll} px wide on a {viewport} px screen"


async def on_a_phone(stack: Stack, visitor: VisitorFactory) -> tuple[Page, str]:
    """An urgent request with a long message; an admin on a phone, unlocked, in the inbox.
    Returns her page and the request's short reference."""
    victim = stack.emulator.user(4501)
    await submit(victim, "en", victim_answers(urgent="yes", message=LONG_MESSAGE))
    (request_id,) = stack.request_ids()
    person = await visitor(
        viewport=PHONE_SCREEN, is_mobile=True, has_touch=True, device_scale_factor=3
    )
    page = person.page
    link = await stack.invite("Ada Admin", admin=True)
    await page.goto(link)
    await assert_fits_the_phone(page, "set-up page")
    account = await set_up_account(page, link, name="Ada Admin", login="ada")
    await assert_fits_the_phone(page, "recovery codes")
    await log_in(stack, page, account)
    await unlock(stack, page)
    return page, short_ref(request_id)


async def test_a_phone_sized_screen_shows_the_inbox_without_sideways_scrolling(
    stack: Stack, visitor: VisitorFactory
) -> None:
    page, ref = await on_a_phone(stack, visitor)
    await open_inbox(stack, page)
    row = inbox_row(page, ref)
    await expect(row).to_be_visible()
    # The table becomes one card per request, each value under its label.
    await expect(page.locator("table.inbox thead")).to_be_hidden()
    await expect(cell(row, "Urgent")).to_have_text("Urgent")
    await assert_fits_the_phone(page, "inbox")
    await page.get_by_role("link", name="Team").click()
    await page.get_by_label("Name").fill("Bea Colleague")
    await page.get_by_role("button", name="Make a set-up link").click()
    await expect(page.locator("p.ok code.secret")).to_be_visible()  # a long link, wrapped
    await assert_fits_the_phone(page, "team page")
    stack.emulator.assert_no_errors()


async def test_a_phone_sized_screen_shows_a_request_without_sideways_scrolling(
    stack: Stack, visitor: VisitorFactory
) -> None:
    page, ref = await on_a_phone(stack, visitor)
    await claim_and_open(stack, page, ref)
    await expect(answer(page, "Their message")).to_contain_text("x" * 120)
    await assert_fits_the_phone(page, "request page")
    stack.emulator.assert_no_errors()
