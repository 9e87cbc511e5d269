"""A turn that fails before it commits is not met with silence."""

from __future__ import annotations

import pytest

from bot.app import RunningServer
from flows.i18n import load_catalogs
from tests.e2e.emulator import BotApiEmulator


@pytest.mark.parametrize("language", ["en", "pl", "ar"])
async def test_a_failed_turn_gets_an_apology_in_the_persons_language(
    emulator: BotApiEmulator,
    polling_bot: RunningServer,
    language: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = polling_bot.core.service
    user = emulator.user(5100, language_code=language)
    await user.send_command("/start")
    await user.next_replies(1)

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("database unavailable")

    # Every turn fails (say the database is gone for reads): after a few retries the update
    # is dropped with an apology, so the person's next message can run.
    monkeypatch.setattr(service, "run_next", broken)
    await user.press("l")
    (reply,) = await user.next_replies(1, timeout=10)
    english = service.ctx.flow.string("turn_failed")
    assert reply.text == load_catalogs().get(language).gettext(english)
    assert "999" in reply.text
    assert not emulator.errors
