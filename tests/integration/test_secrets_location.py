"""Where the server secrets live: beside the database by default (and a real deployment is
warned about it at start), or in SAFEBOT_SECRETS_DIR, away from it."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from bot.app import build_core
from bot.config import load_settings
from storage.server_secrets import SECRET_FILES, beside_database
from tests.integration.test_cli_errors import DEPLOYMENT, environment, safebot

WARNING = "beside the database"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A real (not fictional) deployment with a pinned organisation key, ready to run."""
    (tmp_path / "deployment.toml").write_text(DEPLOYMENT, encoding="utf-8")
    (tmp_path / "pass.txt").write_text("a passphrase for the test\n")
    assert safebot(tmp_path, "migrate").code == 0
    made = safebot(
        tmp_path, "keys", "generate", "--org", "test-hub", "--out", str(tmp_path / "hub.identity"),
        "--passphrase-file", str(tmp_path / "pass.txt"),
    )  # fmt: skip
    assert made.code == 0, made.err
    pinned = DEPLOYMENT.replace("keeps = ", f"{made.out.splitlines()[-1]}\nkeeps = ")
    (tmp_path / "deployment.toml").write_text(pinned, encoding="utf-8")
    return tmp_path


async def start(home: Path, **extra: str) -> None:
    core = await build_core(load_settings(environment(home, **extra)), require_keys=True)
    await core.close()


async def test_a_real_deployment_with_secrets_beside_the_database_is_warned(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await start(home)
    (line,) = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert str(home / "data") in line and "SAFEBOT_SECRETS_DIR" in line
    for name in ("user-hash", "draft", "lookup", "request-signing"):
        assert name in line
    assert "SAFEBOT_DRAFT_KEY" in line  # the other way out: the environment


async def test_secrets_dir_keeps_every_secret_away_from_the_database(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = home / "elsewhere"
    with caplog.at_level(logging.WARNING):
        await start(home, SAFEBOT_SECRETS_DIR=str(secrets))
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
    assert not list((home / "data").glob("*.key"))
    made = {p.stem for p in secrets.glob("*.key")}
    assert {"user-hash", "draft", "lookup", "request-signing"} <= made <= set(SECRET_FILES)
    assert (secrets.stat().st_mode & 0o777) == 0o700


async def test_secrets_given_in_the_environment_are_not_warned_about(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = ("USER_HASH", "DRAFT", "LOOKUP", "SIGNING")
    given = {
        f"SAFEBOT_{name}_KEY": base64.urlsafe_b64encode(bytes([i]) * 32).decode()
        for i, name in enumerate(names, start=1)
    }
    with caplog.at_level(logging.WARNING):
        await start(home, **given)
    assert not [r for r in caplog.records if WARNING in r.getMessage()]
    assert not list((home / "data").glob("*.key"))


def test_only_files_in_the_database_folder_count(tmp_path: Path) -> None:
    (tmp_path / "draft.key").write_text("x")
    assert beside_database(tmp_path, tmp_path / "safebot.db") == ["draft"]
    assert beside_database(tmp_path, tmp_path / "other" / "safebot.db") == []
    assert beside_database(tmp_path, None) == []  # PostgreSQL: the database is not here
