"""The national domestic abuse helpline is the first helpline on the specialist screen, in
every language (content brief): the one number to remember comes first."""

from __future__ import annotations

import html

import pytest

from bot.config import bundled_deployment_path, load_deployment
from flows import render
from flows.context import Context
from flows.definition import load_flow
from flows.deployment import Helpline
from flows.i18n import is_rtl, load_catalogs
from flows.state import ConversationState

CTX = Context(load_flow(), load_deployment(bundled_deployment_path()), load_catalogs())


def national_da_helpline() -> Helpline:
    found = [
        h
        for h in CTX.deployment.helplines
        if "national" in h.name.lower() and "domestic abuse" in h.name.lower()
    ]
    assert len(found) == 1, [h.name for h in CTX.deployment.helplines]
    return found[0]


def helplines_in_order(screen_html: str) -> list[Helpline]:
    """The deployment's helplines as the screen shows them, in order of first mention."""
    positions = {}
    for h in CTX.deployment.helplines:
        at = screen_html.find(f"<b>{html.escape(h.name)}</b>")
        if at >= 0:
            positions[h.id] = at
    by_id = {h.id: h for h in CTX.deployment.helplines}
    return [by_id[i] for i in sorted(positions, key=positions.__getitem__)]


@pytest.mark.parametrize("lang", CTX.catalogs.languages)
def test_the_national_helpline_comes_first_on_the_specialist_screen(lang: str) -> None:
    state = ConversationState(step="specialist", language=lang, flow_version=CTX.flow.version)
    screen = render.screen(CTX, state).html
    shown = helplines_in_order(screen)
    assert shown, screen
    first = national_da_helpline()
    assert shown[0] == first, [h.name for h in shown]
    # and its number is the first phone number on the screen
    assert screen.find(first.number) < min(
        (
            screen.find(h.number)
            for h in CTX.deployment.helplines
            if h != first and h.number in screen
        ),
        default=len(screen),
    )
    assert first.always_open and first.free


def test_the_order_is_read_from_the_screen() -> None:
    a, b = CTX.deployment.helplines[:2]
    shown = f"<b>{html.escape(b.name)}</b> ... <b>{html.escape(a.name)}</b>"
    assert helplines_in_order(shown) == [b, a]


@pytest.mark.parametrize("lang", CTX.catalogs.languages)
def test_who_each_helpline_is_for_is_said_in_her_language(lang: str) -> None:
    # A helpline keeps its own (English) name, as it answers the phone; whatever the name
    # does not say in her language, the `about` line says, under the name.
    state = ConversationState(
        step="specialist.more", language=lang, flow_version=CTX.flow.version
    )
    shown = render.screen(CTX, state).html
    screen = shown.replace("\u2068", "").replace("\u2069", "")
    if is_rtl(lang) and "LGBT+" in screen:
        assert "\u2068LGBT+\u2069" in shown  # or it would show as "+LGBT"
    described = [h for h in CTX.deployment.helplines if h.about]
    assert len(described) >= 4
    for h in described:
        about = html.escape(h.about[lang], quote=False)
        if not h.urgent:
            assert f"<b>{html.escape(h.name)}</b>\n{about}\n" in screen, h.id
    if lang != "en":
        # no English description left in a name: every name without an about line is the
        # service's proper name alone
        assert all("," not in h.name for h in CTX.deployment.helplines)
