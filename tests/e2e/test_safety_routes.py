"""Issue 12's promises through the real Telegram path (PTB over HTTP against the Bot API
emulator), in every shipped language: the emergency route answers typed text on any screen and
a "danger" answer in the form; the form keeps her answers when she changes language, opens the
menu or sends /start, and "Continue my request" takes her back; safe times take several
choices and words of her own."""

from __future__ import annotations

import pytest

from bot.app import RunningServer
from flows.i18n import native_name
from flows.render import NOT_PICKED, PICKED
from tests.e2e.conftest import FSI, PDI, fill_request, flow_string, tr
from tests.e2e.emulator import BotApiEmulator, ChatMessage, EmulatedUser

LANGUAGES = ["en", "pl", "ar"]
PHONE = "07911 123456"
HELP_NOW = "🆘 I need help now"


def plain(message: ChatMessage) -> str:
    return (message.text or "").replace(FSI, "").replace(PDI, "")


def emergency_route_in(message: ChatMessage, lang: str) -> None:
    text = plain(message)
    assert "999" in text and "55" in text, text
    assert flow_string(lang, "buttons_only") in text
    assert message.button_texts()[0] == tr(lang, HELP_NOW), message.button_texts()


async def one(user: EmulatedUser) -> ChatMessage:
    (reply,) = await user.next_replies(1)
    return reply


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_typed_text_on_the_welcome_screen_gets_the_emergency_route(
    emulator: BotApiEmulator, polling_bot: RunningServer, lang: str
) -> None:
    user = emulator.user(7101, language_code=lang)
    await user.send_command("/start")
    welcome = await one(user)
    assert tr(lang, HELP_NOW) not in welcome.button_texts()
    await user.send_text("please help me he is here")
    answer = await one(user)
    emergency_route_in(answer, lang)
    assert tr(lang, "Welcome") in plain(answer)  # the screen again, in the same message
    await user.press(tr(lang, HELP_NOW))
    help_now = await one(user)
    assert tr(lang, "If you are in danger now, call 999.") in plain(help_now)
    assert not emulator.errors, emulator.errors


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_typed_text_on_a_choice_question_and_the_summary_gets_the_emergency_route(
    emulator: BotApiEmulator, polling_bot: RunningServer, lang: str
) -> None:
    user = emulator.user(7102, language_code=lang)
    await fill_request(user, lang, {"method": "call", "phone": PHONE}, until="contact.times")
    await user.press(tr(lang, "Weekday mornings").join([NOT_PICKED, ""]))
    await one(user)
    await user.send_text("?")  # own words are an answer here: shown, not refused
    kept = await one(user)
    assert "?" in plain(kept) and tr(lang, HELP_NOW) not in kept.button_texts()
    await user.press(flow_string(lang, "done"))
    await one(user)  # contact.voicemail: a choice question
    await user.send_text("hello")
    answer = await one(user)
    emergency_route_in(answer, lang)
    question = "If the support worker cannot reach you, is it safe to leave a message?"
    assert tr(lang, question) in plain(answer)  # the question again, still answerable
    assert not emulator.errors, emulator.errors


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_danger_now_shows_the_emergency_route_and_the_form_goes_on(
    emulator: BotApiEmulator, polling_bot: RunningServer, lang: str
) -> None:
    user = emulator.user(7103, language_code=lang)
    await fill_request(
        user,
        lang,
        {
            "method": "call",
            "phone": PHONE,
            "times": "evenings",
            "leave_message": "no",
            "someone_else": "hang_up",
            "language": lang,
        },
        until="risk.urgent",
    )
    await user.press(tr(lang, "Yes"))
    help_now = await one(user)
    assert tr(lang, "If you are in danger now, call 999.") in plain(help_now)
    assert "0808 2000 247" in plain(help_now)  # the national helpline, at once
    await user.press(flow_string(lang, "resume"))
    threats = await one(user)
    assert tr(
        lang,
        "Has anyone threatened to report you to the Home Office, or to have you sent out of the"
        " country?",
    ) in plain(threats)
    summary = await _to_the_summary(user, lang)
    text = plain(summary)
    assert tr(lang, "Check your answers") in text
    assert "07911 123456" in text
    assert tr(lang, "In danger now or soon") in text
    assert not emulator.errors, emulator.errors


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("leave", ["language", "menu", "/start"])
async def test_leaving_the_form_keeps_the_draft_and_continue_resumes(
    emulator: BotApiEmulator, polling_bot: RunningServer, lang: str, leave: str
) -> None:
    user = emulator.user(7104 + len(leave), language_code=lang)
    await fill_request(user, lang, {"method": "call", "phone": PHONE}, until="contact.times")
    shown_in = lang
    if leave == "language":
        other = "pl" if lang != "pl" else "ar"
        await user.press(flow_string(lang, "language"))
        await one(user)
        await user.press(native_name(other))
        shown_in = other
    elif leave == "menu":
        await user.press(flow_string(lang, "menu"))
    else:
        await user.send_command("/start")
    away = await one(user)
    assert away.button_texts()[0] == flow_string(shown_in, "resume"), away.button_texts()
    await user.press(flow_string(shown_in, "resume"))
    back = await one(user)
    assert tr(
        shown_in, "When is it safe to contact you? Choose all that fit, then press Done."
    ) in (plain(back))
    # Every answer is still there: the summary shows the phone number typed before leaving.
    await user.press(NOT_PICKED + tr(shown_in, "Evenings"))
    await one(user)
    await user.press(flow_string(shown_in, "done"))
    await one(user)
    screen = await _to_the_summary(user, shown_in)
    assert "07911 123456" in plain(screen)
    assert not emulator.errors, emulator.errors


async def _to_the_summary(user: EmulatedUser, lang: str) -> ChatMessage:
    for _ in range(12):
        screen = await _skip_or_answer(user, lang)
        if tr(lang, "Check your answers") in plain(screen):
            return screen
    raise AssertionError("the summary was not reached")


async def _skip_or_answer(user: EmulatedUser, lang: str) -> ChatMessage:
    """Answer the current question with its first offered answer: Skip, else the first
    option (the required choice questions left after the safe times)."""
    latest = user.chat.bot_messages()[-1]
    skip = flow_string(lang, "skip")
    if skip in latest.button_texts():
        await user.press(skip)
    else:
        await user.press(str(latest.buttons()[0]["callback_data"]))
    return await one(user)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_safe_times_take_several_choices_and_her_own_words(
    emulator: BotApiEmulator, polling_bot: RunningServer, lang: str
) -> None:
    user = emulator.user(7120, language_code=lang)
    summary = await fill_request(
        user,
        lang,
        {
            "method": "call",
            "phone": PHONE,
            "times": "mornings+weekends",
            "leave_message": "no",
            "someone_else": "hang_up",
            "language": lang,
            "organisation": "none",
        },
    )
    text = plain(summary)
    assert tr(lang, "Weekday mornings") in text and tr(lang, "Weekends") in text
    assert tr(lang, "Evenings") not in text
    # Change the safe times: unpick one, type words of her own.
    await user.press(flow_string(lang, "change"))
    await one(user)
    await user.press(tr(lang, "Safe times"))
    times = await one(user)
    assert PICKED + tr(lang, "Weekday mornings") in times.button_texts()
    await user.press(PICKED + tr(lang, "Weekends"))
    await one(user)
    await user.send_text("Tuesdays after 10")
    await one(user)
    await user.press(flow_string(lang, "done"))
    changed = plain(await one(user))
    assert tr(lang, "Weekday mornings") in changed and "Tuesdays after 10" in changed
    assert tr(lang, "Weekends") not in changed
    assert not emulator.errors, emulator.errors
