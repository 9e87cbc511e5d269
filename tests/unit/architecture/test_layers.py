"""The layering rules of DESIGN.md, checked on the source: imports point inward, and the
engine does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import flows

ROOT = Path(__file__).resolve().parents[3]
IO_MODULES = {"aiohttp", "sqlalchemy", "telegram", "asyncio", "socket", "logging", "storage"}


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_flows_and_storage_never_import_bot() -> None:
    for package in ("flows", "storage"):
        for path, names in imported_modules(package).items():
            assert "bot" not in names, f"{path} imports bot"


def test_flows_does_no_io() -> None:
    for path, names in imported_modules("flows").items():
        assert not names & IO_MODULES, f"{path} imports {names & IO_MODULES}"


def test_flows_exports_exactly_its_public_names() -> None:
    public = {n for n in vars(flows) if not n.startswith("_")} - {
        "actions",
        "blocks",
        "callbacks",
        "check",
        "context",
        "definition",
        "deployment",
        "deployment_schema",
        "effects",
        "engine",
        "errors",
        "events",
        "extract",
        "form",
        "graph",
        "i18n",
        "kinds",
        "outreach",
        "render",
        "replies",
        "state",
        "text",
        "transitions",
        "turn",
        "validators",
    }
    assert set(flows.__all__) == public
