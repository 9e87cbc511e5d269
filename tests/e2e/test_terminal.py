"""`safebot chat` as someone trying it would use it: a child process reading the typed lines.
Replies come through the same outbox as Telegram's; quick exit clears the screen and leaves
only the neutral line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO

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
    assert "Welcome" in before and "How can I help?" in before
    assert before.index("Please use the buttons below.") > before.index("How can I help?")
    assert CLEAR in out, "quick exit did not clear the screen"
    assert "Chat cleared." in after
    assert "Welcome" not in after and "How can I help?" not in after
