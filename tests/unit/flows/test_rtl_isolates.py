"""Right-to-left screens keep commands and numbers left-to-right: each in its own isolate, so
Telegram shows `/status`, not `status/`, and "999 then 55" in order."""

from __future__ import annotations

import pytest

from flows.text import FSI, PDI, isolate_ltr_runs


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("اكتب /status الآن", f"اكتب {FSI}/status{PDI} الآن"),
        ("اتصل بـ 999 ثم 55", f"اتصل بـ {FSI}999{PDI} ثم {FSI}55{PDI}"),
        ("الرقم 0808 2000 247.", f"الرقم {FSI}0808 2000 247{PDI}."),
        ("+44 7911 123456", f"{FSI}+44 7911 123456{PDI}"),
        ("۱۲ دقیقه", f"{FSI}۱۲{PDI} دقیقه"),  # Persian digits too
    ],
)
def test_commands_and_numbers_are_isolated(written: str, shown: str) -> None:
    assert isolate_ltr_runs(written) == shown


@pytest.mark.parametrize(
    "untouched",
    [
        "https://www.nationaldahelpline.org.uk/status",  # a path is not a command
        "{n} دقيقة",  # placeholders are isolated when filled, not here
        "and/or",
        "abc123",
        f"{FSI}999{PDI}",  # already isolated
    ],
)
def test_what_is_not_a_run_of_its_own_is_left_alone(untouched: str) -> None:
    assert isolate_ltr_runs(untouched) == untouched
