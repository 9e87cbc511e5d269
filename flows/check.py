"""Issues in a flow that loads but is not fit to ship (goflow's "issues", apart from the
"won't load" errors of `load_flow`): missing translations, placeholders changed by a
translation, screens over Telegram's 4096 characters or with invalid HTML in some language,
button data over 64 bytes. `safebot check-flows` prints them; CI fails on any.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

from flows.callbacks import CALLBACK_DATA_MAX_BYTES, LONGEST_SEQ
from flows.context import Context
from flows.engine import render_screen
from flows.kinds import StepKind
from flows.state import ConversationState
from flows.text import placeholders_of

TEXT_LIMIT = 4096
ALLOWED_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote"}
SAMPLE_ANSWERS = {
    "consent": "yes",
    "method": "call",
    "phone": "+447700900123",
    "times": "evenings",
    "leave_message": "no",
    "someone_else": "hang_up",
    "codeword": "x" * 40,
    "language": "en",
    "interpreter": "yes",
    "urgent": "yes",
    "threats": "yes",
    "documents": "yes",
    "children": "yes",
    "message": "x" * 500,
    "reference": "1234567890123456",
}


@dataclass(frozen=True)
class Issue:
    language: str
    where: str
    problem: str

    def __str__(self) -> str:
        return f"[{self.language}] {self.where}: {self.problem}"


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text_len = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.errors.append(f"tag <{tag}> is not allowed by Telegram")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        # Telegram counts UTF-16 code units
        self.text_len += len(data.encode("utf-16-le")) // 2


def check_flow(ctx: Context) -> list[Issue]:
    issues: list[Issue] = []
    flow, catalogs = ctx.flow, ctx.catalogs
    sources = flow.source_strings()
    for language in ctx.deployment.languages:
        for msgid in catalogs.missing(language, sources):
            issues.append(Issue(language, "catalogue", f"no translation for {msgid[:60]!r}"))
        tr = catalogs.get(language)
        for msgid in sources:
            translated = tr.gettext(msgid)
            if placeholders_of(translated) != placeholders_of(msgid):
                issues.append(
                    Issue(language, "catalogue", f"placeholders differ in {msgid[:60]!r}")
                )
        for sid in flow.steps:
            state = ConversationState(
                step=sid,
                language=language,
                answers=SAMPLE_ANSWERS,
                editing=True,
                seq=LONGEST_SEQ,  # the longest callback data
                flow_version=flow.version,
            )
            reply = render_screen(ctx, state)
            checker = _TagChecker()
            checker.feed(reply.html)
            checker.close()
            for error in checker.errors:
                issues.append(Issue(language, sid, error))
            if checker.stack:
                issues.append(Issue(language, sid, f"unclosed tags {checker.stack}"))
            if checker.text_len > TEXT_LIMIT:
                issues.append(
                    Issue(language, sid, f"{checker.text_len} characters, over {TEXT_LIMIT}")
                )
            if (
                not html.unescape(reply.html).strip()
                and flow.steps[sid].kind != StepKind.SUBMITTING
            ):
                issues.append(Issue(language, sid, "renders empty"))
            for row in reply.buttons:
                for button in row:
                    if len(button.data.encode()) > CALLBACK_DATA_MAX_BYTES:
                        issues.append(
                            Issue(language, sid, f"button data over 64 bytes: {button.data!r}")
                        )
                    if not button.label.strip():
                        issues.append(Issue(language, sid, "a button has an empty label"))
    return issues
