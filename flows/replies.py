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
