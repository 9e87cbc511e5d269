"""Portal accounts and web security, against a real server: set-up links, passphrase
strength, TOTP and recovery codes, throttling, sessions and their keys, CSRF, headers."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.portal import accounts
from bot.portal.guard import HEADERS
from tests.integration.portal_support import (
    PortalHarness,
    csrf_of,
    get_csrf,
    harness,
    log_in,
    post_form,
    set_up,
    unlock,
)

__all__ = ["harness"]
Client = TestClient[web.Request, web.Application]


async def test_a_set_up_link_works_once(harness: PortalHarness) -> None:
    _, token = await harness.invite("Bea")
    async with harness.client() as client:
        await set_up(harness, client, token, login="bea")
        again = await client.get(f"/portal/setup/{token}")
        assert again.status == 404
        assert "cannot be used" in await again.text()
        csrf = await get_csrf(client, "/portal/login")
        post = await client.post(
            f"/portal/setup/{token}",
            data={"csrf": csrf, "login": "bea2", "passphrase": "x", "again": "x", "code": "1"},
        )
        assert post.status == 404


async def test_a_set_up_link_expires(harness: PortalHarness) -> None:
    _, token = await harness.invite("Cai")
    harness.clock.advance(hours=72, seconds=1)
    async with harness.client() as client:
        assert (await client.get(f"/portal/setup/{token}")).status == 404


async def test_a_weak_passphrase_is_refused_with_the_reason(harness: PortalHarness) -> None:
    _, token = await harness.invite("Dee")
    async with harness.client() as client:
        page = await (await client.get(f"/portal/setup/{token}")).text()
        refused = await client.post(
            f"/portal/setup/{token}",
            data={
                "csrf": csrf_of(page),
                "login": "dee",
                "passphrase": "password1234",
                "again": "password1234",
                "code": "000000",
            },
        )
        body = await refused.text()
        assert refused.status == 400
        assert "too easy to guess" in body and "common password" in body
        short = await client.post(
            f"/portal/setup/{token}",
            data={"csrf": csrf_of(body), "login": "dee", "passphrase": "a", "again": "a"},
        )
        assert "shorter than 12 characters" in await short.text()
        # Refused set-ups do not use the link up.
        await set_up(harness, client, token, login="dee")


async def test_no_login_without_the_second_factor(harness: PortalHarness) -> None:
    _, token = await harness.invite("Eve")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="eve")
        assert await log_in(harness, client, account, code="") == 401
        assert await log_in(harness, client, account, code="123456") == 401
        assert await log_in(harness, client, account, passphrase="wrong-but-long-1") == 401
        inbox = await client.get("/portal/inbox", allow_redirects=False)
        assert inbox.status == 303 and inbox.headers["Location"] == "/portal/login"


async def test_a_totp_code_is_accepted_once(harness: PortalHarness) -> None:
    _, token = await harness.invite("Fay")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="fay")
        code = account.code(harness.clock())
        assert await log_in(harness, client, account, code=code) == 303
        assert await post_form(client, "/portal/inbox", "/portal/logout") == 303
        assert await log_in(harness, client, account, code=code) == 401  # replayed
        harness.clock.advance(seconds=30)
        assert await log_in(harness, client, account) == 303


async def test_the_set_up_code_cannot_log_in(harness: PortalHarness) -> None:
    _, token = await harness.invite("Gus")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="gus")
        harness.clock.advance(seconds=-30)  # back to the time-step set-up used
        assert await log_in(harness, client, account) == 401


async def test_a_recovery_code_works_once_instead_of_totp(harness: PortalHarness) -> None:
    _, token = await harness.invite("Hal")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="hal")
        code = account.recovery_codes[0]
        assert await log_in(harness, client, account, code=code.upper()) == 303
        assert await post_form(client, "/portal/inbox", "/portal/logout") == 303
        assert await log_in(harness, client, account, code=code) == 401
        assert await log_in(harness, client, account, code=account.recovery_codes[1]) == 303


async def test_failed_logins_are_throttled_per_account(harness: PortalHarness) -> None:
    _, token = await harness.invite("Ida")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="ida")
        for _ in range(5):
            assert await log_in(harness, client, account, code="000000") == 401
        assert await log_in(harness, client, account) == 429  # right credentials, still locked
        harness.clock.advance(minutes=15, seconds=1)
        assert await log_in(harness, client, account) == 303


async def test_failed_logins_are_throttled_per_address(harness: PortalHarness) -> None:
    _, token = await harness.invite("Jo")
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="jon")
        for n in range(5):
            csrf = await get_csrf(client, "/portal/login")
            await client.post(
                "/portal/login",
                data={"csrf": csrf, "login": f"nobody{n}", "passphrase": "x", "code": "1"},
            )
        assert await log_in(harness, client, account) == 429


def _key_sessions(harness: PortalHarness) -> int:
    return len(harness.portal.keys)


async def test_idle_and_absolute_expiry_drop_the_key(harness: PortalHarness) -> None:
    _, token = await harness.invite("Kit", admin=True)
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="kit")
        assert await log_in(harness, client, account) == 303
        assert await unlock(harness, client) == 303
        assert _key_sessions(harness) == 1
        harness.clock.advance(minutes=15)
        gone = await client.get("/portal/inbox", allow_redirects=False)
        assert gone.status == 303 and gone.headers["Location"] == "/portal/login"
        assert _key_sessions(harness) == 0

        harness.clock.advance(seconds=30)
        assert await log_in(harness, client, account) == 303
        assert _key_sessions(harness) == 1  # the grant made by unlocking opens at login
        for _ in range(8 * 6 - 1):  # busy all day: idle never runs out
            harness.clock.advance(minutes=10)
            assert (await client.get("/portal/inbox", allow_redirects=False)).status == 200
        harness.clock.advance(minutes=10)
        assert (await client.get("/portal/inbox", allow_redirects=False)).status == 303
        assert _key_sessions(harness) == 0


async def test_the_sweep_drops_keys_of_sessions_that_expired_unseen(
    harness: PortalHarness,
) -> None:
    from bot.portal.work import sweep

    _, token = await harness.invite("Lou", admin=True)
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="lou")
        assert await log_in(harness, client, account) == 303
        assert await unlock(harness, client) == 303
    harness.clock.advance(minutes=16)
    await sweep(harness.portal)
    assert _key_sessions(harness) == 0


async def test_a_removed_advocates_session_dies_at_once(harness: PortalHarness) -> None:
    from bot.portal.work import sweep

    advocate_id, token = await harness.invite("Max", admin=True)
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="max")
        assert await log_in(harness, client, account) == 303
        assert await unlock(harness, client) == 303
        # `safebot advocates remove`, from another process: only the database changes.
        await accounts.remove(
            harness.portal.sessions, harness.portal.secrets, advocate_id, harness.clock()
        )
        await sweep(harness.portal)
        assert _key_sessions(harness) == 0
        gone = await client.get("/portal/inbox", allow_redirects=False)
        assert gone.status == 303
        harness.clock.advance(seconds=30)
        assert await log_in(harness, client, account) == 401


async def test_no_session_no_data(harness: PortalHarness) -> None:
    stored = await harness.submit({"message": "CANARY-NO-SESSION"})
    async with harness.client() as client:
        for path in ("/portal/inbox", f"/portal/requests/{stored.request_id}", "/portal/team"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 303, path
            assert response.headers["Location"] == "/portal/login"
            body = await response.text()
            assert stored.request_id not in body and "CANARY" not in body


async def test_a_post_without_the_csrf_token_is_refused(harness: PortalHarness) -> None:
    _, token = await harness.invite("Ned", admin=True)
    stored = await harness.submit({"message": "x"})
    async with harness.client() as client:
        account = await set_up(harness, client, token, login="ned")
        assert await log_in(harness, client, account) == 303
        claim = f"/portal/requests/{stored.request_id}/claim"
        for data in ({}, {"csrf": "forged"}, {"csrf": csrf_of(await _login_page(client))}):
            response = await client.post(claim, data=data, allow_redirects=False)
            assert response.status == 403, data
        inbox = await (await client.get("/portal/inbox?view=mine")).text()
        assert "No requests here." in inbox
        # A login form without its token is refused too.
        bare = await client.post("/portal/login", data={"login": "ned"}, allow_redirects=False)
        assert bare.status == 403


async def _login_page(client: Client) -> str:
    """A token from another session basis (a fresh client): not valid for this session."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other,
        other.get(client.make_url("/portal/login")) as response,
    ):
        return await response.text()


async def test_security_headers_and_cookies(harness: PortalHarness) -> None:
    _, token = await harness.invite("Oli")
    async with harness.client() as client:
        for path in (
            "/portal/login",
            "/portal/nothing",
            "/portal/inbox",
            "/portal/static/portal.css",
        ):
            response = await client.get(path, allow_redirects=False)
            for name, value in HEADERS.items():
                assert response.headers.get(name) == value, (path, name)
        csp = HEADERS["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp and "unsafe-inline" not in csp
        account = await set_up(harness, client, token, login="oli")
        csrf = await get_csrf(client, "/portal/login")
        response = await client.post(
            "/portal/login",
            data={
                "csrf": csrf,
                "login": account.login,
                "passphrase": account.passphrase,
                "code": account.code(harness.clock()),
            },
            allow_redirects=False,
        )
        cookie = response.headers["Set-Cookie"]
        assert "sb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # served over plain http here
        assert "Path=/portal" in cookie


async def test_cookies_are_secure_over_https(harness: PortalHarness) -> None:
    from dataclasses import replace

    from aiohttp import web as aioweb

    from bot.portal.guard import set_cookie

    portal = replace(
        harness.portal, settings=replace(harness.portal.settings, public_url="https://p.example")
    )
    response = aioweb.Response()
    set_cookie(response, portal, "sb_session", "x" * 43)
    assert "Secure" in response.cookies["sb_session"].output()


async def test_the_setup_page_shows_a_qr_code_and_the_secret(harness: PortalHarness) -> None:
    _, token = await harness.invite("Pat")
    async with harness.client() as client:
        page = await (await client.get(f"/portal/setup/{token}")).text()
    assert "<svg" in page and 'class="secret"' in page
    assert "<script" not in page and "style=" not in page


async def test_the_code_typed_at_setup_is_checked(harness: PortalHarness) -> None:
    _, token = await harness.invite("Quin")
    async with harness.client() as client:
        page = await (await client.get(f"/portal/setup/{token}")).text()
        refused = await client.post(
            f"/portal/setup/{token}",
            data={
                "csrf": csrf_of(page),
                "login": "quin",
                "passphrase": "quiet-harbour-lantern-47",
                "again": "quiet-harbour-lantern-47",
                "code": "000000",
            },
        )
        assert refused.status == 400
        assert "authenticator app is wrong" in await refused.text()
