"""Settings from the environment, checked once at start-up (fail fast, name the variable).

Secrets and endpoints come from environment variables; a deployment's content (force,
policy wording, organisations, helplines, languages) from one TOML file.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from flows.deployment import Deployment, parse_deployment
from flows.errors import FlowError


class ConfigError(Exception):
    """A setting is missing or wrong: the operator's fault, named in the message."""


DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class Settings:
    token: str | None
    api_base_url: str
    database_url: str
    config_path: Path
    data_dir: Path
    host: str
    port: int
    webhook_url: str | None
    webhook_secret: str | None
    state_ttl: dt.timedelta
    draft_ttl: dt.timedelta
    retention_interval: dt.timedelta
    log_level: str
    # Telegram allows about one message a second to one chat; only a self-hosted Bot API
    # server or the test emulator can take more.
    chat_send_rate: float = 1.0
    # Telegram allows about 30 messages a second per bot.
    send_rate: float = 30.0
    # The three server secrets as given (base64), or None: generated into the data dir.
    user_hash_key: str | None = None
    draft_key: str | None = None
    lookup_key: str | None = None
    # The request-signing key (base64, 32 bytes), or None: generated into the data dir.
    signing_key: str | None = None
    # Where secrets not given in the environment are kept (SAFEBOT_SECRETS_DIR): by default
    # the data directory, beside the database; a real service keeps them elsewhere.
    secrets_dir: Path | None = None
    # The bot's @username (without the @), for the outreach links `safebot outreach link` prints.
    bot_username: str | None = None

    @property
    def secret_files(self) -> Path:
        return self.secrets_dir or self.data_dir

    @property
    def webhook_path(self) -> str:
        if self.webhook_url is None:
            return "/telegram"
        return urlparse(self.webhook_url).path or "/"


def bundled_deployment_path() -> Path:
    return Path(str(resources.files("bot") / "deployments" / "example.toml"))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("SAFEBOT_DATA_DIR") or "safebot-data").expanduser()
    config_path = (
        Path(env["SAFEBOT_CONFIG"]) if env.get("SAFEBOT_CONFIG") else bundled_deployment_path()
    )
    webhook_url = env.get("SAFEBOT_WEBHOOK_URL") or None
    if webhook_url and urlparse(webhook_url).scheme not in {"https", "http"}:
        raise ConfigError("SAFEBOT_WEBHOOK_URL must be a full http(s) URL")
    secret = env.get("SAFEBOT_WEBHOOK_SECRET") or None
    secrets_dir = env.get("SAFEBOT_SECRETS_DIR")
    if secret and not (1 <= len(secret) <= 256 and all(c.isalnum() or c in "_-" for c in secret)):
        raise ConfigError("SAFEBOT_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")
    return Settings(
        token=env.get("TELEGRAM_BOT_TOKEN") or None,
        api_base_url=(env.get("TELEGRAM_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/"),
        database_url=env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'safebot.db'}",
        config_path=config_path,
        data_dir=data_dir,
        host=env.get("SAFEBOT_HOST") or "127.0.0.1",
        port=_int(env, "SAFEBOT_PORT", 8080),
        webhook_url=webhook_url,
        webhook_secret=secret,
        state_ttl=dt.timedelta(hours=_int(env, "SAFEBOT_STATE_TTL_HOURS", 6)),
        draft_ttl=dt.timedelta(minutes=_int(env, "SAFEBOT_DRAFT_TTL_MINUTES", 60)),
        retention_interval=dt.timedelta(
            seconds=_int(env, "SAFEBOT_RETENTION_INTERVAL_SECONDS", 600)
        ),
        log_level=(env.get("SAFEBOT_LOG_LEVEL") or "INFO").upper(),
        chat_send_rate=float(_int(env, "SAFEBOT_CHAT_SEND_RATE", 1)),
        send_rate=float(_int(env, "SAFEBOT_SEND_RATE", 30)),
        user_hash_key=env.get("SAFEBOT_USER_HASH_KEY") or None,
        draft_key=env.get("SAFEBOT_DRAFT_KEY") or None,
        lookup_key=env.get("SAFEBOT_LOOKUP_KEY") or None,
        signing_key=env.get("SAFEBOT_SIGNING_KEY") or None,
        secrets_dir=Path(secrets_dir).expanduser() if secrets_dir else None,
        bot_username=_bot_username(env),
    )


def _bot_username(env: Mapping[str, str]) -> str | None:
    raw = (env.get("SAFEBOT_BOT_USERNAME") or "").strip().removeprefix("@")
    if not raw:
        return None
    if not (5 <= len(raw) <= 32 and raw.isascii() and all(c.isalnum() or c == "_" for c in raw)):
        raise ConfigError(
            "SAFEBOT_BOT_USERNAME must be the bot's username: 5-32 characters of A-Z a-z 0-9 _"
        )
    return raw


def load_deployment(path: Path) -> Deployment:
    data = read_deployment_file(path)
    try:
        return parse_deployment(data)
    except FlowError as exc:
        count = len(exc.problems)
        raise ConfigError(
            f"deployment file {path} has {count} problem{'s' if count > 1 else ''}:\n  - "
            + "\n  - ".join(exc.problems)
        ) from exc


def read_deployment_file(path: Path) -> dict[str, Any]:
    """The deployment TOML as a document (not yet checked), or ConfigError in one line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"deployment file not found: {path} (SAFEBOT_CONFIG)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"cannot read the deployment file {path}: {why}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"deployment file {path} is not valid TOML: {exc}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if value <= 0 or value > 10**6:
        raise ConfigError(f"{name} is out of range: {value}")
    return value
