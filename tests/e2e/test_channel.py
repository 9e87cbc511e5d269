"""The Telegram channel end to end: languages, the command menu, formatting and protection,
quick exit, odd input, flood control and ordering (real PTB over HTTP, polling, nothing mocked).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import RunningServer
from bot.config import bundled_deployment_path, load_deployment
from bot.telegram import profile_languages
from flows.context import Context
from flows.definition import load_flow
from flows.i18n import load_catalogs, native_name
from tests.e2e.conftest import (
    bot_env,
    calm_notice,
    continue_request,
    exit_line,
    fill_request,
    flow_string,
    help_now_label,
    notice_then_screen,
    plain,
    start_bot,
    step_lines,
    step_title,
    tr,
)
from tests.e2e.emulator import BotApiEmulator, ChatMessage, EmulatedUser

PHONE = "07911 123456"
EMAIL = "someone@example.org"
CODEWORD_LIMIT = load_flow().step("contact.codeword").max_length

# What the person reads, from the catalogues (flows/content/victim.toml and its translations).
STALE = flow_string("en", "stale_button")
TOO_LONG = flow_string("en", "too_long").format(limit=CODEWORD_LIMIT)
NEUTRAL = exit_line("en")
FORGOTTEN = flow_string("en", "forgotten")
WELCOME_EN = step_title("en", "welcome")
MENU_EN = step_title("en", "menu")
WELCOME_PL = step_title("pl", "welcome")
WELCOME_AR = step_title("ar", "welcome")
MENU_PL = step_title("pl", "menu")
MENU_AR = step_title("ar", "menu")
METHOD_Q = tr("en", "How is it safe to contact you?")
TIMES_Q = step_lines("en", "contact.times")[0]
LANGUAGE_Q = tr("en", "Which language do you want to speak?")
# The short way to the code word: contact by email, at any time.
BY_EMAIL: dict[str, str | None] = {"method": "email", "email": EMAIL, "times": "any"}


async def start(user: EmulatedUser) -> ChatMessage:
    await user.send_command("/start")
    (welcome,) = await user.next_replies(1)
    return welcome


async def press(user: EmulatedUser, label: str, count: int = 1) -> list[ChatMessage]:
    await user.press(label)
    return await user.next_replies(count)


async def text(user: EmulatedUser, value: str, count: int = 1) -> list[ChatMessage]:
    await user.send_text(value)
    return await user.next_replies(count)


async def to_menu(user: EmulatedUser) -> ChatMessage:
    await start(user)
    (menu,) = await press(user, "Continue")
    assert MENU_EN in (menu.text or "")
    return menu


async def to_codeword(user: EmulatedUser) -> ChatMessage:
    """From nothing to the (text) code word question, the short way (contact by email)."""
    codeword = await fill_request(user, "en", BY_EMAIL, until="contact.codeword")
    assert step_lines("en", "contact.codeword")[0] in (codeword.text or "")
    return codeword


# --------------------------------------------------------------------------- languages


async def test_language_is_suggested_from_the_client_language(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    # Translated, not the English source.
    assert WELCOME_PL != WELCOME_EN and WELCOME_AR != WELCOME_EN
    assert tr("pl", "Continue") != "Continue" and tr("ar", "Continue") != "Continue"
    polish = await start(emulator.user(2001, language_code="pl"))
    assert WELCOME_PL in (polish.text or "")
    assert tr("pl", "Continue") in polish.button_texts()
    assert flow_string("pl", "quick_exit") in polish.button_texts()

    arabic = await start(emulator.user(2002, language_code="ar"))
    assert WELCOME_AR in (arabic.text or "")
    assert tr("ar", "Continue") in arabic.button_texts()

    # A language that is not shipped: the person chooses first.
    other = await start(emulator.user(2003, language_code="de-at"))
    assert step_title("en", "language") in (other.text or "")
    assert {"English", "Polski", "العربية"} <= set(other.button_texts())
    # One message per turn: the notice and the screen arrive together.
    (menu,) = await press(emulator.user(2003), native_name("pl"))
    assert (menu.text or "").startswith(flow_string("pl", "language_changed"))
    assert MENU_PL in (menu.text or "")
    assert not emulator.errors, emulator.errors


async def test_language_button_switches_the_next_replies(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2010, language_code="en")
    await to_menu(user)
    (screen,) = await press(user, flow_string("en", "language"))
    assert step_title("en", "language") in (screen.text or "")
    (menu,) = await press(user, native_name("pl"))
    assert (menu.text or "").startswith(flow_string("pl", "language_changed"))
    assert MENU_PL in (menu.text or "")
    assert flow_string("pl", "language") in menu.button_texts()
    talk = tr("pl", "Talk to a support worker")
    (consent,) = await press(user, talk)
    assert talk in (consent.text or "")
    await user.send_text("hello")
    # The calm notice in Polish, and the consent question again (a long screen: the notice
    # may come as a message of its own).
    again = notice_then_screen(
        await user.next_replies(1), calm_notice("pl"), help_label=help_now_label("pl")
    )
    assert talk in (again.text or "")

    await press(user, flow_string("pl", "language"))
    (menu,) = await press(user, native_name("ar"))
    assert (menu.text or "").startswith(flow_string("ar", "language_changed"))
    assert MENU_AR in (menu.text or "")
    assert not emulator.errors, emulator.errors


async def test_command_menu_is_set_in_every_shipped_language(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    private = {"type": "all_private_chats"}
    source = load_flow().commands  # [commands] of the flow: name -> English description
    assert list(source) == ["start", "menu", "language", "status", "forget", "exit"]
    for language in ["", "pl", "ar"]:
        lang = language or "en"
        commands = emulator.get_commands(private, language)
        names = [c["command"] for c in commands]
        assert names == list(source), (language, commands)
        by_name = {c["command"]: c["description"] for c in commands}
        for name, english in source.items():
            assert by_name[name] == tr(lang, english), (language, name, by_name[name])
            if lang != "en":
                assert by_name[name] != english, (language, name, "not translated")
    # English is the default set, not a second copy of it.
    assert emulator.get_commands(private, "en") == []
    assert ("all_private_chats", "") in emulator.commands
    assert not emulator.errors, emulator.errors


async def test_name_and_descriptions_are_set_in_every_language_and_only_once(
    emulator: BotApiEmulator, tmp_path: Path
) -> None:
    """What Telegram shows before the chat starts: neutral, in every enabled language; read
    back at the next start and not written again (Telegram allows few name changes a day)."""
    flow, deployment = load_flow(), load_deployment(bundled_deployment_path())
    stores = {
        "name": emulator.names,
        "description": emulator.descriptions,
        "short_description": emulator.short_descriptions,
    }
    assert set(flow.profile) == set(stores)
    for _run in range(2):
        server = await start_bot(bot_env(emulator, tmp_path / "data"))
        await server.stop()
    # Telegram's language codes are two letters: Dari shares "fa" with Persian (listed first).
    targets = profile_languages(Context(flow, deployment, load_catalogs()))
    assert {code for code, _lang in targets} >= {None, "pl", "ar", "zh"}
    for field, english in flow.profile.items():
        store = stores[field]
        assert store[""] == english
        for code, lang in targets:
            if code is not None:
                assert store[code] == tr(lang, english) != english, (field, lang)
    writes = sum(len(emulator.calls_to(m)) for m in ("setMyName", "setMyDescription",
                                                     "setMyShortDescription"))  # fmt: skip
    assert writes == len(stores) * len(targets)  # the second start wrote none
    for text in emulator.names.values():  # nothing on the chat list says what this is about
        assert not any(word in text.lower() for word in ("abuse", "police", "violence"))
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- formatting


async def test_sensitive_screens_are_protected_and_sent_as_html(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2020, language_code="en")
    await start(user)
    await press(user, "Continue")
    (safe,) = await press(user, "Is it safe to report to the police?")
    assert "Eastshire Police" in (safe.text or "")
    await press(user, flow_string("en", "menu"))
    # Dynamic text with HTML's special characters must be escaped, or Telegram refuses it.
    message = 'Call <after> 6 & ask for "Ann" </b>'
    answers = {**BY_EMAIL, "language": "en", "organisation": "none", "message": message}
    summary = await continue_request(user, "en", answers)
    assert step_title("en", "contact.summary") in (summary.text or "")
    assert message in (summary.text or "")
    assert EMAIL in (summary.text or "")
    assert any(e["type"] == "bold" for e in summary.entities)
    (done,) = await press(user, flow_string("en", "confirm"))
    assert step_title("en", "contact.done") in (done.text or "")
    assert any(e["type"] == "code" for e in done.entities)

    screens = user.chat.bot_messages()  # every screen of the walk, the done screen last
    assert len(screens) >= 18 and screens[-1].message_id == done.message_id
    for screen in screens:
        assert screen.protect_content, screen.text
        assert screen.parse_mode == "HTML", screen.text
    sends = emulator.calls_to("sendMessage")
    assert len(sends) == len(screens)
    assert all(call.get("parse_mode") == "HTML" for call in sends)
    assert all(call.get("protect_content") is True for call in sends)
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- quick exit


def all_ids(user: EmulatedUser) -> set[int]:
    return {m.message_id for m in user.chat.messages}


async def test_quick_exit_deletes_everything_and_then_starts_again(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2030, language_code="en")
    await fill_request(user, "en", {"method": "call"}, until="contact.phone")
    await text(user, "not a number")  # a typed answer the bot refuses
    await user.send_sticker()
    await user.next_replies(1)
    await text(user, PHONE)
    earlier = all_ids(user)
    assert len(earlier) >= 10
    assert any(not m.from_bot for m in user.chat.messages if m.kind == "text")

    (neutral,) = await press(user, flow_string("en", "quick_exit"))
    assert NEUTRAL in (neutral.text or "")
    assert user.chat.deleted_ids >= earlier, earlier - user.chat.deleted_ids
    visible = user.chat.visible()
    assert [m.message_id for m in visible] == [neutral.message_id]
    assert neutral.reply_markup is None and not neutral.buttons()
    assert not neutral.protect_content

    # Typing after the exit: the welcome again.
    (welcome,) = await text(user, "hi")
    assert WELCOME_EN in (welcome.text or "")

    # /exit does the same, and deletes the /exit message itself too.
    await press(user, "Continue")
    await text(user, "some words")
    earlier = all_ids(user) - user.chat.deleted_ids
    exit_id = await user.send_command("/exit")
    (neutral,) = await user.next_replies(1)
    assert NEUTRAL in (neutral.text or "")
    assert user.chat.deleted_ids >= earlier | {exit_id}
    assert [m.message_id for m in user.chat.visible()] == [neutral.message_id]
    assert not neutral.buttons()
    assert not emulator.errors, emulator.errors


async def test_quick_exit_deletes_a_long_chat_in_batches(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    """No cap on the ids kept (only Telegram's 48 hours): more than deleteMessages takes in
    one call (100) are all deleted, in several calls."""
    user = emulator.user(2032, language_code="en")
    await to_menu(user)
    for n in range(60):  # each: the text, and the calm notice with the menu again
        await user.send_text(f"hello {n}")
        await user.next_replies(1, quiet=0.05)
    earlier = all_ids(user)
    assert len(earlier) > 120

    (neutral,) = await press(user, flow_string("en", "quick_exit"))
    assert NEUTRAL in (neutral.text or "")
    assert user.chat.deleted_ids >= earlier, sorted(earlier - user.chat.deleted_ids)
    assert [m.message_id for m in user.chat.visible()] == [neutral.message_id]
    batches = [call["message_ids"] for call in emulator.calls_to("deleteMessages")]
    assert all(isinstance(b, list) and 1 <= len(b) <= 100 for b in batches), batches
    assert len(batches) >= 2 and {i for b in batches for i in b} >= earlier
    assert not emulator.errors, emulator.errors


async def test_forget_clears_the_chat_then_shows_the_menu(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2031, language_code="en")
    await to_codeword(user)
    await text(user, "heron")  # an answer the person would not want left on screen
    forget_id = await user.send_command("/forget")
    (screen,) = await user.next_replies(1)
    assert step_title("en", "forget") in (screen.text or "")
    earlier = all_ids(user) | {forget_id}

    (menu,) = await press(user, flow_string("en", "yes"))
    assert (menu.text or "").startswith(FORGOTTEN)
    assert MENU_EN in (menu.text or "")
    assert user.chat.deleted_ids >= earlier, earlier - user.chat.deleted_ids
    assert [m.message_id for m in user.chat.visible()] == [menu.message_id]

    # The conversation is gone, but quick exit still clears what /forget left on screen.
    (neutral,) = await press(user, flow_string("en", "quick_exit"))
    assert NEUTRAL in (neutral.text or "")
    assert [m.message_id for m in user.chat.visible()] == [neutral.message_id]
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- odd input


async def test_odd_input_gets_calm_replies_and_the_conversation_stays_usable(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2040, language_code="en")
    queries: list[str] = []
    await to_menu(user)

    async def expect(notice: str, *, help_now: bool = True) -> ChatMessage:
        """The notice and the screen again, as one message (one message per turn); after
        unexpected input the screen offers "I need help now" first."""
        replies = await user.next_replies(1)
        assert len(replies) == 1, [r.text for r in replies]
        return notice_then_screen(
            replies, notice, help_label=help_now_label("en") if help_now else None
        )

    for send in (
        user.send_photo,
        user.send_voice,
        user.send_sticker,
        user.send_location,
        user.send_document,
        user.send_contact,
    ):
        await send()
        screen = await expect(calm_notice("en", "not_text"))
        assert MENU_EN in (screen.text or "")
    await user.send_photo(caption="a caption is not text either")
    await expect(calm_notice("en", "not_text"))

    typed = await user.send_text("hello")
    await expect(calm_notice("en"))
    await user.send_text("x" * 10_000)  # on an information screen: buttons only
    await expect(calm_notice("en"))
    await user.edit_message(typed, "hello again")
    screen = await expect(calm_notice("en", "edited"))
    assert MENU_EN in (screen.text or "")
    await user.send_command("/foo")
    await expect(calm_notice("en"))

    # Into the form, then a press on an earlier question's message.
    (consent,) = await press(user, "Talk to a support worker")
    await press(user, "Yes, go on")
    queries.append(await user.press("Yes, go on", message_id=consent.message_id))
    screen = await expect(STALE, help_now=False)
    assert METHOD_Q in (screen.text or "")
    assert help_now_label("en") not in screen.button_texts()
    for forged in ["a:zz:x", "g:nope", "é" * 32, "\x00" * 64, "a:" + "9" * 62]:
        assert len(forged.encode()) <= 64
        queries.append(await user.press_data(screen.message_id, forged))
        screen = await expect(STALE, help_now=False)
        assert METHOD_Q in (screen.text or "")

    # The conversation is still usable: menu, then into the contact form.
    queries.append(await user.press(flow_string("en", "menu")))
    (menu,) = await user.next_replies(1)
    assert MENU_EN in (menu.text or "")
    await continue_request(user, "en", BY_EMAIL, until="contact.codeword")
    # A text question refuses a long text with its limit.
    await user.send_text("y" * 10_000)
    screen = await expect(TOO_LONG, help_now=False)
    assert step_lines("en", "contact.codeword")[0] in (screen.text or "")
    (language,) = await text(user, "Bluebird")
    assert LANGUAGE_Q in (language.text or "")

    # Every press was answered (its spinner stopped): the stale and forged ones too.
    pressed = {u["callback_query"]["id"] for u in emulator.updates if "callback_query" in u}
    assert set(queries) <= pressed
    assert pressed <= set(emulator.answered_callbacks), pressed - set(emulator.answered_callbacks)
    assert not emulator.errors, emulator.errors


# --------------------------------------------------------------------------- flood control


async def test_a_429_is_waited_out_and_no_reply_is_dropped(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2050, language_code="en")
    await start(user)
    loop = asyncio.get_running_loop()

    emulator.fail_next("sendMessage", retry_after=1)
    began = loop.time()
    await user.press("Continue")
    (menu,) = await user.next_replies(1, timeout=10)
    assert loop.time() - began >= 1.0
    assert MENU_EN in (menu.text or "")
    assert emulator.rate_limited_count == 1

    emulator.fail_next("sendMessage", retry_after=1, times=2)
    began = loop.time()
    await user.press("Talk to a support worker")
    (consent,) = await user.next_replies(1, timeout=10)
    assert loop.time() - began >= 2.0
    assert "Do you want to go on?" in (consent.text or "")
    assert emulator.rate_limited_count == 3
    # Each reply was sent exactly once: nothing dropped, nothing doubled.
    texts = [m.text for m in user.chat.messages if m.from_bot]
    assert len(texts) == 3
    refused = [e for e in emulator.errors if e[1] != 429]
    assert not refused, refused


# --------------------------------------------------------------------------- ordering


async def test_quick_texts_of_one_person_are_handled_in_order(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    user = emulator.user(2060, language_code="en")
    await to_codeword(user)
    for n in range(5):
        await user.send_text(f"word{n}")
    replies = await user.next_replies(5)
    assert len(replies) == 5, [r.text for r in replies]
    # The first text answers the code word; the other four meet the language question
    # (the notice and the screen again as one message).
    assert LANGUAGE_Q in (replies[0].text or "")
    for screen in replies[1:]:
        notice_then_screen([screen], calm_notice("en"), help_label=help_now_label("en"))
        assert LANGUAGE_Q in (screen.text or "")
    assert [r.message_id for r in replies] == sorted(r.message_id for r in replies)

    # The state is consistent: the newest screen's buttons are current, and the code word
    # is the first text.
    answers = {**BY_EMAIL, "codeword": "word0", "language": "en", "organisation": "none"}
    summary = await continue_request(user, "en", answers, from_step="contact.language")
    assert step_title("en", "contact.summary") in (summary.text or "")
    assert "word0" in (summary.text or "")
    assert "word1" not in (summary.text or "")
    assert not emulator.errors, emulator.errors


async def test_two_people_interleaved_keep_their_own_state(
    emulator: BotApiEmulator, polling_bot: RunningServer
) -> None:
    ann = emulator.user(2070, language_code="en")
    bob = emulator.user(2071, language_code="pl")
    await ann.send_command("/start")
    await bob.send_command("/start")
    (a,) = await ann.next_replies(1)
    (b,) = await bob.next_replies(1)
    assert WELCOME_EN in (a.text or "") and WELCOME_PL in (b.text or "")

    steps_ann = ["Continue", "Talk to a support worker", "Yes, go on", "Phone call"]
    steps_bob = [tr("pl", "Continue"), tr("pl", "Talk to a support worker")]
    for label_a, label_b in zip(steps_ann, [*steps_bob, None, None], strict=True):
        await ann.press(label_a)
        if label_b is not None:
            await bob.press(label_b)
        await ann.next_replies(1)
        if label_b is not None:
            await bob.next_replies(1)
    # Ann is at the phone question, Bob at the consent question (in Polish).
    await ann.send_text(PHONE)
    await bob.send_text("07911 654321")  # on a choice question: buttons only
    (a,) = await ann.next_replies(1)
    b = notice_then_screen(
        await bob.next_replies(1), calm_notice("pl"), help_label=help_now_label("pl")
    )
    assert TIMES_Q in (a.text or "")
    assert tr("pl", "Talk to a support worker") in (b.text or "")
    # Ann's buttons do not work on Bob's state and vice versa (each chat has its own).
    times_pl = step_lines("pl", "contact.times")[0]
    assert times_pl != TIMES_Q
    assert all(times_pl not in plain(m) for m in ann.chat.messages)
    assert all(TIMES_Q not in plain(m) for m in bob.chat.messages)
    assert not emulator.errors, emulator.errors
