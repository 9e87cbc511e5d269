"""The real `safebot` command, as a child process, for each way it can be started wrong: one
clear line on stderr, a non-zero exit, never a traceback, and no database made by accident.
Also the files it makes (owner-only) and `safebot check`."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# One language (the source, which needs no catalogue), so these tests do not depend on the
# state of the translations.
DEPLOYMENT = """\
[deployment]
name = "Test pathway"
area = "Testshire"
fictional = false
default_language = "en"
languages = ["en"]

[policy]
force = "Testshire Police"
reviewed = 2026-11-01
checked = 2026-11-15
source = "Testshire Police, a test policy"
commitment = "We will not share a victim's details only because we doubt her status."
exception = "This does not apply where there is evidence of an immigration offence."

[retention]
days = 30
closed_days = 7

[[helplines]]
id = "ndah"
name = "National Domestic Abuse Helpline"
number = "0808 2000 247"
free = true
always_open = true
urgent = true
checked = 2026-11-01

[[organisations]]
id = "test-hub"
name = "Test Hub"
description = "Independent advice."
phone = "0808 2000 247"
receives_requests = true
contact_within_days = 2
keeps = "Notes of the contact, for 6 years."

[routing]
default = "test-hub"
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "deployment.toml").write_text(DEPLOYMENT, encoding="utf-8")
    return tmp_path


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAFEBOT_", "TELEGRAM_")) and k != "DATABASE_URL"
    }
    env.update(
        SAFEBOT_DATA_DIR=str(home / "data"),
        SAFEBOT_CONFIG=str(home / "deployment.toml"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def safebot(home: Path, *args: str, umask: int | None = None, **extra: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=environment(home, **extra),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.out + result.err, result.err
    return result


def fails_in_one_line(result: Result, *words: str) -> str:
    assert result.code != 0
    assert len(result.lines) == 1, result.err
    (line,) = result.lines
    assert line.startswith("safebot: ")
    for word in words:
        assert word in line
    return line


def no_database(home: Path) -> None:
    data = home / "data"
    assert not (data / "safebot.db").exists()
    assert not list(home.rglob("*.db"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


# ---- identity and passphrase files ------------------------------------------------------------


def test_missing_identity_file(home: Path) -> None:
    result = safebot(
        home, "handoffs", "export", "--org", "test-hub", "--identity", str(home / "x.identity")
    )
    assert fails_in_one_line(result) == (
        f"safebot: identity file not found: {home / 'x.identity'} (--identity)"
    )
    no_database(home)


def test_missing_passphrase_file(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    out = home / "hub.identity"
    result = safebot(
        home, "keys", "generate", "--org", "test-hub", "--out", str(out),
        "--passphrase-file", str(home / "nope.txt"),
    )  # fmt: skip
    line = fails_in_one_line(result, "passphrase file", "nope.txt", "No such file")
    missing = home / "nope.txt"
    assert line == f"safebot: cannot read the passphrase file {missing}: No such file or directory"
    assert not out.exists()


def test_keys_generate_refuses_a_missing_directory_before_asking(home: Path) -> None:
    result = safebot(
        home, "keys", "generate", "--org", "test-hub", "--out", str(home / "no" / "x.identity")
    )
    fails_in_one_line(result, "does not exist", "--out")
    no_database(home)


# ---- the deployment file ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "chat", "check"])
def test_missing_deployment_file(home: Path, command: str) -> None:
    (home / "deployment.toml").unlink()
    result = safebot(home, command, TELEGRAM_BOT_TOKEN="1:x")
    expected = f"deployment file not found: {home / 'deployment.toml'} (SAFEBOT_CONFIG)"
    if command == "check":  # a list of problems, on stdout
        assert (result.code, result.out) == (1, f"deployment: {expected}\n1 problem(s)\n")
    else:
        assert fails_in_one_line(result) == f"safebot: {expected}"
    no_database(home)


def test_deployment_that_is_not_toml(home: Path) -> None:
    (home / "deployment.toml").write_text("[deployment\nname = 1\n", encoding="utf-8")
    result = safebot(home, "run", TELEGRAM_BOT_TOKEN="1:x")
    fails_in_one_line(result, "is not valid TOML", "line 1")
    no_database(home)


def test_deployment_schema_errors_are_listed_without_a_traceback(home: Path) -> None:
    broken = DEPLOYMENT.replace("free = true", "free = 'yes'")
    broken = broken.replace("checked = 2026-11-15\n", "").replace("urgent = true", "urgnt = true")
    (home / "deployment.toml").write_text(broken, encoding="utf-8")
    result = safebot(home, "run", TELEGRAM_BOT_TOKEN="1:x")
    assert result.code != 0
    assert result.lines == [
        f"safebot: deployment file {home / 'deployment.toml'} has 3 problems:",
        "  - policy.checked is required but missing",
        "  - helplines[0].free must be true or false, got 'yes'",
        "  - helplines[0].urgnt: unknown key; did you mean 'urgent'?",
    ]
    no_database(home)


# ---- the database -------------------------------------------------------------------------------


def test_bad_database_url(home: Path) -> None:
    result = safebot(home, "migrate", DATABASE_URL="mysql://someone@localhost/db")
    fails_in_one_line(result, "DATABASE_URL", "sqlite:///PATH", "postgresql://")
    no_database(home)


def test_postgresql_down(home: Path) -> None:
    port = closed_port()
    url = f"postgresql://postgres:secret-pw@127.0.0.1:{port}/safebot"
    for command in (["migrate"], ["keys", "list"]):
        result = safebot(home, *command, DATABASE_URL=url)
        line = fails_in_one_line(result, f"cannot open the database at 127.0.0.1:{port}/safebot")
        assert "secret-pw" not in line


def test_sqlite_in_a_directory_that_does_not_exist(home: Path) -> None:
    url = f"sqlite:///{home / 'missing' / 'safebot.db'}"
    result = safebot(home, "migrate", DATABASE_URL=url)
    assert fails_in_one_line(result) == (
        f"safebot: cannot create the database at {home / 'missing' / 'safebot.db'}: "
        f"directory {home / 'missing'} does not exist"
    )
    assert not (home / "missing").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["purge"],
        ["keys", "list"],
        ["keys", "generate", "--org", "test-hub", "--out", "hub.identity"],
        ["handoffs", "export", "--org", "test-hub", "--identity", "deployment.toml"],
    ],
)
def test_commands_that_need_a_database_never_create_one(home: Path, command: list[str]) -> None:
    result = safebot(home, *command)
    assert fails_in_one_line(result) == (
        f"safebot: no database at {home / 'data' / 'safebot.db'}; run `safebot migrate` or "
        "`safebot run` first"
    )
    no_database(home)
    assert not (home / "data").exists()
    assert not (home / "hub.identity").exists()


def test_an_empty_file_is_not_a_database(home: Path) -> None:
    (home / "data").mkdir()
    (home / "data" / "safebot.db").write_bytes(b"")
    result = safebot(home, "keys", "list")
    fails_in_one_line(result, "no database at", "safebot migrate")


DATABASE_COMMANDS = [
    ["run"],
    ["chat"],
    ["migrate"],
    ["purge"],
    ["check"],
    ["keys", "generate"],
    ["keys", "list"],
    ["handoffs", "export"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_help_names_the_database_settings(home: Path, command: list[str]) -> None:
    result = safebot(home, *command, "--help")
    assert result.code == 0
    assert "DATABASE_URL" in result.out and "SAFEBOT_DATA_DIR" in result.out


# ---- files --------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrate_makes_owner_only_files_whatever_the_umask(home: Path) -> None:
    result = safebot(home, "migrate", umask=0o022)
    assert result.code == 0, result.err
    data = home / "data"
    assert mode(data) == 0o700
    assert mode(data / "safebot.db") == 0o600


def test_existing_files_are_made_owner_only(home: Path) -> None:
    data = home / "data"
    assert safebot(home, "migrate").code == 0
    data.chmod(0o755)
    for name in ("safebot.db", "safebot.db-wal", "safebot.db-shm"):
        path = data / name
        path.touch()
        path.chmod(0o644)
    assert safebot(home, "migrate", umask=0o022).code == 0
    assert mode(data) == 0o700
    for path in data.iterdir():
        if path.name.startswith("safebot.db"):
            assert mode(path) == 0o600, path


def test_data_dir_is_ignored_by_git() -> None:
    lines = (REPO / ".gitignore").read_text().splitlines()
    assert "safebot-data/" in lines


# ---- keys and `safebot check` --------------------------------------------------------------------


def test_run_refuses_a_real_deployment_without_keys(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    result = safebot(home, "run", TELEGRAM_BOT_TOKEN="1:x", SAFEBOT_PORT=str(closed_port()))
    assert fails_in_one_line(result) == (
        "safebot: organisation 'test-hub' has no active key, so its requests could not be "
        "sealed: run `safebot keys generate --org test-hub --out test-hub.identity` on the "
        "organisation's machine, with this DATABASE_URL"
    )


def test_check_lists_every_problem(home: Path) -> None:
    # No database yet: the keys cannot be checked, and that is a problem for a real deployment.
    result = safebot(home, "check")
    assert result.code == 1
    assert result.out.splitlines() == [
        f"keys: no database at {home / 'data' / 'safebot.db'}; run `safebot migrate` or "
        "`safebot run` first",
        "1 problem(s)",
    ]
    no_database(home)

    assert safebot(home, "migrate").code == 0
    result = safebot(home, "check-flows")  # the old name does the same
    assert result.code == 1
    assert result.out.splitlines()[0].startswith("keys: organisation 'test-hub' has no active")

    (home / "pass.txt").write_text("a passphrase for the test\n")
    made = safebot(
        home, "keys", "generate", "--org", "test-hub", "--out", str(home / "hub.identity"),
        "--passphrase-file", str(home / "pass.txt"),
    )  # fmt: skip
    assert made.code == 0, made.err
    # A real deployment seals only to a pinned key: until the printed line is pasted in,
    # `check` says so.
    result = safebot(home, "check")
    assert result.code == 1
    assert "has no active key pinned in the deployment" in result.out.splitlines()[0]
    pin = made.out.splitlines()[-1]
    assert pin.startswith("key_fingerprints = [")
    pinned = DEPLOYMENT.replace("keeps = ", f"{pin}\nkeeps = ")
    (home / "deployment.toml").write_text(pinned, encoding="utf-8")
    result = safebot(home, "check")
    assert (result.code, result.out) == (0, "no problems\n")

    text = pinned.replace('number = "0808 2000 247"', 'number = "0808 123"')
    (home / "deployment.toml").write_text(text.replace("closed_days = 7", "closed_days = 70"))
    result = safebot(home, "check")
    assert result.code == 1
    assert result.out.splitlines() == [
        "deployment: retention.closed_days (70) must not be over retention.days (30)",
        "deployment: helplines[0].number '0808 123' is not a valid UK number or short number",
        "2 problem(s)",
    ]


# ---- Telegram unreachable -----------------------------------------------------------------------


def test_run_retries_while_telegram_is_unreachable(home: Path) -> None:
    fictional = DEPLOYMENT.replace("fictional = false", "fictional = true")
    (home / "deployment.toml").write_text(fictional, encoding="utf-8")
    env = environment(
        home,
        TELEGRAM_BOT_TOKEN="123:unreachable",
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{closed_port()}/bot",
        SAFEBOT_PORT=str(closed_port()),
    )
    err = home / "stderr.log"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=env,
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 20
        while err.read_text().count("Telegram unreachable") < 2:
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    log = err.read_text()
    assert "Traceback" not in log
    assert code == 0, log
    retries = [line for line in log.splitlines() if "Telegram unreachable" in line]
    assert "retrying in 1 s (attempt 1)" in retries[0]
    assert "retrying in 2 s (attempt 2)" in retries[1]
    assert "123:unreachable" not in log


# ---- outreach -----------------------------------------------------------------------------


def test_outreach_commands_need_a_database(home: Path) -> None:
    for command in (["outreach", "campaign", "add"], ["outreach", "counts"]):
        fails_in_one_line(safebot(home, *command), "no database at", "safebot migrate")
    result = safebot(
        home,
        "outreach",
        "link",
        "--campaign",
        "Ab3dE6gH",
        "--lang",
        "en",
        SAFEBOT_BOT_USERNAME="test_bot",
    )
    fails_in_one_line(result, "no database at")
    no_database(home)


def test_outreach_poster_needs_a_database_and_refuses_in_one_line(home: Path) -> None:
    # (More of its refusals, and posters made, in tests/integration/test_poster.py.)
    poster = ["outreach", "poster", "--campaign", "Ab3dE6gH", "--lang", "en", "--format", "pdf"]
    result = safebot(home, *poster, SAFEBOT_BOT_USERNAME="test_bot")
    fails_in_one_line(result, "no database at")
    assert result.code == 1
    result = safebot(home, *poster)
    fails_in_one_line(result, "SAFEBOT_BOT_USERNAME")
    assert result.code == 1
    both = safebot(home, *poster[:4], "--lang", "en", "--all-languages", "--format", "pdf")
    assert both.code == 2 and "not allowed with argument" in both.err  # argparse's own usage
    no_database(home)
    assert not list(home.glob("poster-*"))


def test_outreach_link_refusals(home: Path) -> None:
    assert safebot(home, "migrate").code == 0
    added = safebot(home, "outreach", "campaign", "add")
    code = added.out.strip()
    assert added.code == 0 and len(code) == 8 and code.isalnum()
    link = ["outreach", "link", "--campaign", code, "--lang"]
    fails_in_one_line(safebot(home, *link, "en"), "SAFEBOT_BOT_USERNAME")
    named = {"SAFEBOT_BOT_USERNAME": "test_bot"}
    fails_in_one_line(safebot(home, *link, "pl", **named), "'pl' is not an enabled language")
    unknown = ["outreach", "link", "--campaign", "Zz9Zz9Zz", "--lang", "en"]
    fails_in_one_line(safebot(home, *unknown, **named), "no campaign 'Zz9Zz9Zz'")
    ok = safebot(home, *link, "en", **named)
    assert ok.code == 0 and ok.out.strip() == f"https://t.me/test_bot?start=c-{code}-en"
    fails_in_one_line(safebot(home, "outreach", "campaign", "retire", "Nope1234"), "no campaign")
    assert safebot(home, "outreach", "campaign", "retire", code).code == 0
    fails_in_one_line(safebot(home, *link, "en", **named), "is retired")
    assert "retired" in safebot(home, "outreach", "campaign", "list").out
