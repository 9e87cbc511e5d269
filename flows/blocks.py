"""The deployment's own content shown inside screens (a step's `blocks`): helplines,
organisations, the force's policy wording and the retention period."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping

from flows.deployment import Helpline
from flows.i18n import native_name
from flows.text import Text


def render_block(text: Text, name: str) -> str:
    """Block `name` as HTML in `text`'s language; empty for a name no renderer knows."""
    renderer = BLOCKS.get(name)
    return renderer(text) if renderer else ""


def _helplines(text: Text, helplines: Iterable[Helpline]) -> str:
    out = []
    for h in helplines:
        line = f"<b>{html.escape(h.name)}</b>\n{text.ltr(html.escape(h.number))}"
        notes = []
        if h.always_open and h.free:
            notes.append(text.s("free_24h"))
        elif h.hours:
            notes.append(text.s("hours", hours=text.deployment.text(h.hours, text.language)))
        if notes:
            line += "\n" + " ".join(notes)
        out.append(line)
    return "\n\n".join(out)


def _helplines_now(text: Text) -> str:
    return _helplines(text, (h for h in text.deployment.helplines if h.urgent))


def _helplines_all(text: Text) -> str:
    return _helplines(text, text.deployment.helplines)


def _organisations(text: Text) -> str:
    out = []
    for o in text.deployment.organisations:
        lines = [f"<b>{html.escape(o.name)}</b>"]
        if o.description:
            lines.append(html.escape(text.deployment.text(o.description, text.language)))
        if o.phone:
            lines.append(text.s("phone_label", phone=text.ltr(o.phone)))
        if o.website:
            lines.append(text.s("website_label", website=o.website))
        if o.languages:
            names = ", ".join(native_name(c) for c in o.languages)
            lines.append(text.s("languages_label", languages=names))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _policy(text: Text) -> str:
    """The force's own words, quoted; a translation of them is marked as unofficial."""
    p = text.deployment.policy
    local = p.translations.get(text.language, {})
    commitment = local.get("commitment", p.commitment)
    exception = local.get("exception", p.exception)
    parts = [
        text.s("policy_quote_intro", force=p.force),
        f"<blockquote>{html.escape(commitment)}</blockquote>",
        text.s("policy_exception_intro"),
        f"<blockquote>{html.escape(exception)}</blockquote>",
    ]
    if local:
        parts.append(f"<i>{text.s('unofficial_translation')}</i>")
    reviewed = text.s("policy_reviewed", force=p.force, reviewed=text.ltr(p.reviewed))
    parts.append(f"<i>{reviewed}</i>")
    return "\n".join(parts)


def _retention(text: Text) -> str:
    return text.plural("retention_days", text.deployment.retention_days)


# Block name (as `flows.definition.BLOCKS` allows) -> its renderer.
BLOCKS: Mapping[str, Callable[[Text], str]] = {
    "helplines_now": _helplines_now,
    "helplines_all": _helplines_all,
    "organisations": _organisations,
    "policy": _policy,
    "retention": _retention,
}
