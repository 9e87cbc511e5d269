"""Each shipped language's golden transcript, regenerated in memory and compared with the file
in tests/golden/transcripts/. `pytest tests/golden --update-golden` rewrites the files; review
the change with `git diff tests/golden/transcripts`."""

from __future__ import annotations

import difflib

import pytest

from flows.engine import Context
from tests.golden.transcript import TRANSCRIPTS, render, shipped_languages, transcript_path

LANGUAGES = shipped_languages()
UPDATE = "`.venv/bin/python -m pytest tests/golden --update-golden`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_transcript_matches_the_golden_file(ctx: Context, update_golden: bool, lang: str) -> None:
    path = transcript_path(lang)
    actual = render(ctx, lang)
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != actual:
            path.write_text(actual, encoding="utf-8", newline="\n")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: generate it with {UPDATE}.", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path.relative_to(TRANSCRIPTS.parents[2])} (golden)",
                tofile=f"{lang} (regenerated)",
            )
        )
        pytest.fail(
            f"the {lang!r} transcript changed:\n{diff}\n"
            f"If the change is intended, regenerate with {UPDATE} and review `git diff`.",
            pytrace=False,
        )


def test_one_transcript_per_shipped_language(update_golden: bool) -> None:
    """A transcript of a language the deployment no longer ships would never be checked."""
    extra = sorted(p for p in TRANSCRIPTS.glob("*.txt") if p.stem not in LANGUAGES)
    if update_golden:
        for path in extra:
            path.unlink()
        return
    assert not extra, f"transcripts of languages not shipped: {[p.name for p in extra]}"


def test_the_script_covers_every_screen(ctx: Context) -> None:
    """Every step of the flow is reached somewhere in the script: in the default language, and
    in the others the screens only a translation has (the force's original wording)."""
    shown = {
        line.removeprefix("step: ")
        for lang in ctx.deployment.languages
        for line in render(ctx, lang).splitlines()
        if line.startswith("step: ")
    }
    assert set(ctx.flow.steps) - shown == set()
    default = render(ctx, ctx.deployment.default_language)
    only_translated = {b.goto for s in ctx.flow.steps.values() for b in s.buttons if b.when}
    missed = {sid for sid in set(ctx.flow.steps) - only_translated if f"step: {sid}" not in default}
    assert missed == set()
