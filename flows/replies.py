"""What to show the person, already rendered in their language."""

from __future__ import annotations

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


def coalesce(replies: tuple[Reply, ...], limit: int = 4096) -> tuple[Reply, ...]:
    """One message per turn wherever the screen allows: a reply without buttons (an error, a
    notice) is joined to the screen that follows it, so Telegram's 30 messages a second serve
    30 people, not 15. Joined only if the result stays within `limit` UTF-16 units (the HTML
    is counted whole, which is stricter than Telegram's count of the visible text)."""
    out: list[Reply] = []
    for reply in replies:
        last = out[-1] if out else None
        if last is not None and not last.buttons and last.rtl == reply.rtl:
            html = f"{last.html}\n\n{reply.html}"
            if _utf16(html) <= limit:
                out[-1] = Reply(html, reply.buttons, last.protect or reply.protect, reply.rtl)
                continue
        out.append(reply)
    return tuple(out)
