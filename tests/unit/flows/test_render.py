"""Rendering on its own: what screens are built from, apart from the events that lead there."""

from __future__ import annotations

import dataclasses

import pytest

from flows import form, render
from flows.blocks import BLOCKS, render_block
from flows.callbacks import Act, decode
from flows.context import Context
from flows.definition import BLOCKS as BLOCK_NAMES
from flows.kinds import InputKind
from flows.state import ConversationState
from flows.text import FSI, PDI, Text, format_reference, placeholders_of


def state_at(ctx: Context, step: str, language: str = "en", **fields: object) -> ConversationState:
    return ConversationState(step=step, language=language, flow_version=ctx.flow.version, **fields)


def test_every_block_the_loader_allows_has_a_renderer() -> None:
    assert set(BLOCKS) == BLOCK_NAMES


def test_an_unknown_block_renders_nothing(ctx: Context) -> None:
    assert render_block(Text.of(ctx, state_at(ctx, "menu")), "weather") == ""


@pytest.mark.parametrize("allow_choice", [True, False])
def test_choice_buttons_offer_exactly_the_values_the_form_accepts(
    ctx: Context, allow_choice: bool
) -> None:
    ctx = dataclasses.replace(
        ctx, deployment=dataclasses.replace(ctx.deployment, allow_org_choice=allow_choice)
    )
    for sid in ctx.flow.form:
        q = ctx.flow.step(sid)
        if q.input != InputKind.CHOICE:
            continue
        reply = render.screen(ctx, state_at(ctx, sid, seq=7))
        pressed = [decode(b.data) for row in reply.buttons for b in row]
        offered = [p.value for p in pressed if isinstance(p, Act) and p.value != "skip"]
        assert offered == form.option_values(q, ctx.deployment), sid
        assert all(p.is_for(7) for p in pressed if isinstance(p, Act))


def test_the_change_list_offers_only_questions_that_apply_and_are_summarised(
    ctx: Context,
) -> None:
    answers = {"consent": "yes", "method": "email"}
    reply = render.change_list(ctx, state_at(ctx, "contact.summary", answers=answers))
    pressed = [decode(b.data) for row in reply.buttons for b in row]
    edits = [p.value for p in pressed if isinstance(p, Act)]
    applicable = form.applicable(ctx.flow, answers, ctx.deployment)
    assert edits == [f"e.{index}" for index, q in applicable if q.in_summary]
    assert "e." + str(ctx.flow.form.index("contact.phone")) not in edits
    assert "e." + str(ctx.flow.form.index("contact.consent")) not in edits


def test_a_notice_has_no_buttons_and_follows_the_language(ctx: Context) -> None:
    reply = render.notice(ctx, state_at(ctx, "menu", "ar"), "submit_failed")
    assert reply.buttons == ()
    assert reply.rtl
    assert f"{FSI}0808 2000 247{PDI}" in reply.html


def test_text_escapes_values_and_isolates_numbers_only_right_to_left(ctx: Context) -> None:
    english = Text.of(ctx, state_at(ctx, "menu", "en"))
    assert english.t("{x} & {y}", x="<b>", y="1") == "&lt;b&gt; &amp; 1"
    assert english.t("{unknown}", x="1") == ""
    assert english.ltr("123") == "123"
    assert Text.of(ctx, state_at(ctx, "menu", "ar")).ltr("123") == f"{FSI}123{PDI}"


def test_format_reference() -> None:
    assert format_reference("1234567890123456") == "1234 5678 9012 3456"
    assert format_reference("123456") == "1234 56"
    assert format_reference("") == ""


def test_placeholders_of() -> None:
    assert placeholders_of("Call {helpline} or {n}; {{literal}}") == {"helpline", "n"}


def test_a_notice_joins_its_screen_only_while_the_message_stays_readable() -> None:
    from flows.replies import READABLE_CHARS, Button, Reply, coalesce

    screen = Reply("<b>Title</b>\n\n" + "a" * 300, ((Button("Menu", "m"),),))
    short = Reply("Please use the buttons below.")
    (joined,) = coalesce((short, screen))
    assert joined.html.startswith("Please use") and joined.buttons == screen.buttons
    # tags and entities are not counted: still one message
    tagged = Reply("<b>" + "&amp;" * (READABLE_CHARS - 320) + "</b>")
    assert len(coalesce((tagged, screen))) == 1
    long_notice = Reply("b" * (READABLE_CHARS - 300))
    assert coalesce((long_notice, screen)) == (long_notice, screen)
