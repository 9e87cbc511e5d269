"""`safebot chat` as someone trying it would use it: a child process reading the typed lines.
Replies come through the same outbox as Telegram's; quick exit clears the screen and leaves
only the neutral line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO, calm_notice, exit_line, help_now_label, step_title

CLEAR = "\033[2J\033[H"


def run_chat(tmp_path: Path, lines: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEBOT_", "TELEGRAM_"))}
    env["SAFEBOT_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--lang", "en"],
        input="".join(line + "\n" for line in lines),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def test_the_terminal_chat_walks_the_menu_and_quick_exit_clears_the_screen(
    tmp_path: Path,
) -> None:
    out = run_chat(tmp_path, ["1", "hello", "/exit"])
    before, _, after = out.partition(CLEAR)
    welcome, menu = step_title("en", "welcome"), step_title("en", "menu")
    assert welcome in before and menu in before
    # Typed text: ONE calm notice with the emergency line, then the menu again, with
    # "I need help now" first.
    notice = before.index(calm_notice("en"))
    assert notice > before.index(menu)
    again = before.index(menu, notice)
    assert f"[1] {help_now_label('en')}" in before[again:]
    assert CLEAR in out, "quick exit did not clear the screen"
    assert exit_line("en") in after
    assert welcome not in after and menu not in after
