"""What to show the person, already rendered in their language."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    """One message. `html` is Telegram-flavoured HTML, escaped by the engine."""

    html: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    protect: bool = True
    rtl: bool = False


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# A screen a stressed reader can take in (issue 12): a notice is joined to the screen after it
# only while the message stays within this many visible characters; otherwise both go.
READABLE_CHARS = 600
_TAG = re.compile(r"<[^>]*>")
_ISOLATES = str.maketrans("", "", "\u2066\u2067\u2068\u2069")


def visible_length(reply_html: str) -> int:
    """What the person reads: the HTML without its tags, entities unescaped, and without the
    invisible direction isolates around numbers."""
    return len(html.unescape(_TAG.sub("", reply_html)).translate(_ISOLATES))


def coalesce(replies: tuple[Reply, ...], limit: int = 4096) -> tuple[Reply, ...]:
    """One message per turn wherever the screen allows: a reply without buttons (an error, a
    notice) is joined to the screen that follows it, so Telegram's 30 messages a second serve
    30 people, not 15. Joined only if the result stays within `limit` UTF-16 units (the HTML
    is counted whole, which is stricter than Telegram's count of the visible text) and within
    READABLE_CHARS visible characters."""
    out: list[Reply] = []
    for reply in replies:
        last = out[-1] if out else None
        if last is not None and not last.buttons and last.rtl == reply.rtl:
            joined = f"{last.html}\n\n{reply.html}"
            if _utf16(joined) <= limit and visible_length(joined) <= READABLE_CHARS:
                out[-1] = Reply(joined, reply.buttons, last.protect or reply.protect, reply.rtl)
                continue
        out.append(reply)
    return tuple(out)
