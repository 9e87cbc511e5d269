"""The language list: one screen while the languages fit a phone, pages with ◀ ▶ beyond."""

from __future__ import annotations

import dataclasses

from flows.callbacks import OpenLanguages, SetLanguage, decode, encode
from flows.context import Context
from flows.engine import step
from flows.events import ButtonPressed
from flows.i18n import native_name
from flows.render import LANGUAGES_ON_ONE_SCREEN, LANGUAGES_PER_PAGE, language_pages
from flows.state import ConversationState

MANY = ("en", "pl", "ar", "ro", "ur", "pa", "pt", "zh_Hant", "bn", "es", "fa", "ti", "so",
        "tr", "uk", "ru", "cy")  # fmt: skip


def test_a_short_list_is_one_screen_and_a_long_one_pages_of_eight() -> None:
    few = MANY[:LANGUAGES_ON_ONE_SCREEN]
    assert language_pages(few) == [list(few)]
    pages = language_pages(MANY)
    assert [len(p) for p in pages] == [8, 8, 1]
    assert [code for page in pages for code in page] == list(MANY)  # every one, in order


def test_page_presses_round_trip_and_refuse_forgeries() -> None:
    for page in (0, 1, 2, 42):
        assert decode(encode(OpenLanguages(page))) == OpenLanguages(page)
    assert encode(OpenLanguages()) == "l"
    for forged in ("l:0", "l:01", "l:-1", "l:100", "l:x", "l:"):
        assert decode(forged) is None, forged


def pages_shown(ctx: Context) -> list[list[str]]:
    """Walk the list from its first page with ▶, collecting each page's languages."""
    state = ConversationState(step="menu", language="en")
    out = step(ctx, state, ButtonPressed(encode(OpenLanguages())))
    seen: list[list[str]] = []
    for _ in range(len(language_pages(ctx.deployment.languages)) + 1):
        screen = out.replies[-1]
        codes = [
            press.code
            for row in screen.buttons
            for b in row
            if isinstance(press := decode(b.data), SetLanguage)
        ]
        seen.append(codes)
        for row in screen.buttons:
            for b in row:
                if isinstance(press := decode(b.data), SetLanguage):
                    assert b.label == native_name(press.code)  # each in its own name
        (forward,) = [b for row in screen.buttons for b in row if b.label == "▶"]
        out = step(ctx, out.state, ButtonPressed(forward.data))
    return seen


def test_the_engine_pages_through_every_language_and_wraps_round(ctx: Context) -> None:
    many = dataclasses.replace(ctx, deployment=dataclasses.replace(ctx.deployment, languages=MANY))
    seen = pages_shown(many)
    pages = language_pages(MANY)
    assert seen[: len(pages)] == pages
    assert seen[len(pages)] == pages[0]  # ▶ on the last page goes back to the first
    assert len(pages) * LANGUAGES_PER_PAGE >= len(MANY)


def test_a_short_list_has_no_paging_buttons(ctx: Context) -> None:
    few = MANY[:LANGUAGES_ON_ONE_SCREEN]
    ctx = dataclasses.replace(ctx, deployment=dataclasses.replace(ctx.deployment, languages=few))
    state = ConversationState(step="menu", language="en")
    out = step(ctx, state, ButtonPressed(encode(OpenLanguages())))
    labels = [b.label for row in out.replies[-1].buttons for b in row]
    assert "▶" not in labels and "◀" not in labels
    for code in few:
        assert native_name(code) in labels
