"""The deployment's own content shown inside screens (a step's `blocks`): helplines,
organisations and who receives a request, the force's policy wording (in her language, and
the original), and the retention periods."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping

from flows.deployment import Helpline
from flows.i18n import native_name
from flows.text import Text, isolate_signed_words


def render_block(text: Text, name: str) -> str:
    """Block `name` as HTML in `text`'s language; empty for a name no renderer knows."""
    renderer = BLOCKS.get(name)
    return renderer(text) if renderer else ""


def _helplines(text: Text, helplines: Iterable[Helpline]) -> str:
    out = []
    for h in helplines:
        line = f"<b>{html.escape(h.name)}</b>"
        if h.about:
            about = html.escape(text.deployment.text(h.about, text.language), quote=False)
            line += "\n" + (isolate_signed_words(about) if text.rtl else about)
        line += "\n" + text.ltr(html.escape(h.number))
        notes = []
        if h.always_open and h.free:
            notes.append(text.s("free_24h"))
        else:
            if h.free:
                notes.append(text.s("free"))
            if h.hours:
                notes.append(text.deployment.text(h.hours, text.language))
        if notes:
            line += "\n" + html.escape(" ".join(notes), quote=False)
        if h.website:
            line += "\n" + text.ltr(html.escape(h.website))
        out.append(line)
    return "\n\n".join(out)


def _helplines_now(text: Text) -> str:
    return _helplines(text, (h for h in text.deployment.helplines if h.urgent))


def _helplines_all(text: Text) -> str:
    return _helplines(text, text.deployment.helplines)


def _helplines_other(text: Text) -> str:
    return _helplines(text, (h for h in text.deployment.helplines if not h.urgent))


def _organisations(text: Text) -> str:
    out = []
    for o in text.deployment.organisations:
        lines = [f"<b>{html.escape(o.name)}</b>"]
        if o.description:
            lines.append(html.escape(text.deployment.text(o.description, text.language)))
        if o.phone:
            lines.append(text.s("phone_label", phone=text.ltr(o.phone)))
        if o.website:
            lines.append(text.s("website_label", website=text.ltr(o.website)))
        if o.languages:
            names = ", ".join(native_name(c) for c in o.languages)
            lines.append(text.s("languages_label", languages=names))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _local_policy(text: Text) -> tuple[str, str, bool]:
    """The force's commitment and exception in her language, and whether that is a translation
    (marked as unofficial; the original is one tap away, `policy_original`)."""
    p = text.deployment.policy
    local = {} if text.language == p.language else p.translations.get(text.language, {})
    commitment = local.get("commitment", p.commitment)
    return commitment, local.get("exception", p.exception), bool(local)


def _policy_commitment(text: Text) -> str:
    commitment, _, translated = _local_policy(text)
    parts = [text.s("policy_quote_intro"), _quote(commitment)]
    if translated:
        parts.append(f"<i>{text.s('unofficial_translation')}</i>")
    return "\n".join(parts)


def _policy_exception(text: Text) -> str:
    _, exception, translated = _local_policy(text)
    parts = [text.s("policy_exception_intro"), _quote(exception)]
    if translated:
        parts.append(f"<i>{text.s('unofficial_translation')}</i>")
    parts.append(f"<i>{text.s('policy_reviewed')}</i>")
    return "\n".join(parts)


def _policy_original(text: Text) -> str:
    """The force's own words as it wrote them, with where they come from."""
    p = text.deployment.policy
    parts = [_quote(p.commitment), _quote(p.exception)]
    if p.source:
        parts.append(f"<i>{text.s('policy_source', source=p.source)}</i>")
    return "\n".join(parts)


def _quote(words: str) -> str:
    return f"<blockquote>{html.escape(words)}</blockquote>"


def _recipients(text: Text) -> str:
    """Who reads a request, and what they keep of it, for how long."""
    out = []
    for o in text.deployment.receiving_organisations:
        line = f"<b>{html.escape(o.name)}</b>"
        if o.keeps:
            line += "\n" + html.escape(text.deployment.text(o.keeps, text.language), quote=False)
        out.append(line)
    return "\n\n".join(out)


def _retention(text: Text) -> str:
    dep = text.deployment
    return "\n".join(
        [
            text.plural("retention_days", dep.retention_days),
            text.plural("retention_closed_days", dep.closed_retention_days),
        ]
    )


# Block name (as `flows.definition.BLOCKS` allows) -> its renderer.
BLOCKS: Mapping[str, Callable[[Text], str]] = {
    "helplines_now": _helplines_now,
    "helplines_all": _helplines_all,
    "helplines_other": _helplines_other,
    "organisations": _organisations,
    "policy_commitment": _policy_commitment,
    "policy_exception": _policy_exception,
    "policy_original": _policy_original,
    "recipients": _recipients,
    "retention": _retention,
}
