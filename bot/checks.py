"""`safebot check`: everything that can be checked before serving, every problem at once.

The flow and its catalogues (what `safebot run` refuses to start with), the deployment file
against its schema, and, for a real deployment, that every organisation receiving requests
has an active key in the database that the deployment pins, and that the bot's request-signing
key (if it has one yet) is among those the deployment pins. Never creates a database.
"""

from __future__ import annotations

from bot.app import build_context
from bot.config import ConfigError, Settings, read_deployment_file
from bot.keyring import key_problems
from flows.check import check_flow
from flows.definition import load_flow
from flows.deployment import Deployment, parse_deployment
from flows.errors import FlowError
from flows.i18n import load_catalogs
from storage.db import create_engine, session_factory
from storage.errors import StorageError
from storage.opening import require_existing
from storage.server_secrets import read_signing_key


async def check_all(settings: Settings) -> list[str]:
    problems: list[str] = []
    try:
        load_flow()
    except FlowError as exc:
        problems += [f"flow: {p}" for p in exc.problems]
    try:
        load_catalogs()
    except Exception as exc:  # a damaged .po: Babel's own errors, whatever their class
        problems.append(f"catalogues: cannot be read: {type(exc).__name__}: {exc}")
    deployment: Deployment | None = None
    try:
        deployment = parse_deployment(read_deployment_file(settings.config_path))
    except ConfigError as exc:
        problems.append(f"deployment: {exc}")
    except FlowError as exc:
        problems += [f"deployment: {p}" for p in exc.problems]
    if problems or deployment is None:
        return problems  # the screens cannot be rendered without all three
    problems += [str(issue) for issue in check_flow(build_context(settings, check=False))]
    problems += await _keys(settings, deployment)
    return problems


async def _keys(settings: Settings, deployment: Deployment) -> list[str]:
    if deployment.fictional:
        return []  # `safebot run` makes demo keys for a fictional deployment
    try:
        await require_existing(settings.database_url)
    except StorageError as exc:
        return [f"keys: {exc}"]
    signer = read_signing_key(settings.secret_files, settings.signing_key)
    engine = create_engine(settings.database_url)
    try:
        verify = None if signer is None else signer.verify_key
        problems = await key_problems(session_factory(engine), deployment, verify)
    finally:
        await engine.dispose()
    return [f"keys: {problem}" for problem in problems]
