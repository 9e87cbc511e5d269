"""Babel extractor for flow files, registered as `safebot_flow` (pyproject entry point).

`pybabel extract -F babel.cfg` walks the loaded flow, so what is extracted is exactly what
the engine can show: titles, paragraphs, button labels, option labels, summary labels,
interface strings, command descriptions and plural pairs.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import IO, Any

from flows.definition import build_flow

# (line number, function name, message or (singular, plural), comments)
Extracted = tuple[int, str, str | tuple[str, str], list[str]]


def extract_flow(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[Extracted]:
    raw = fileobj.read().decode("utf-8")
    flow = build_flow(tomllib.loads(raw))
    lines = raw.splitlines()

    def line_of(text: str) -> int:
        needle = text.split("\n")[0][:40]
        for number, line in enumerate(lines, start=1):
            if needle in line:
                return number
        return 0

    for message in flow.source_strings():
        comments = ["Keep {placeholders} unchanged."] if "{" in message else []
        yield line_of(message), "gettext", message, comments
    for singular, plural in flow.plurals.values():
        yield line_of(singular), "ngettext", (singular, plural), ["Keep {n} unchanged."]
