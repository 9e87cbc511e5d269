"""docs/architecture.md stays true: every step of "one update's path" names a function or
method that exists in the file it names, and the README points there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "architecture.md"
STEP = re.compile(r"^\d+\. `([\w/]+\.py):([\w.]+)`", re.M)


def defined_names(path: Path) -> set[str]:
    """`f`, `Class` and `Class.method` for everything defined at the top of a module."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{item.name}")
    return names


def path_steps() -> list[tuple[str, str]]:
    text = DOC.read_text()
    block = text.split("<!-- path:start -->", 1)[1].split("<!-- path:end -->", 1)[0]
    return STEP.findall(block)


def test_the_documented_path_exists() -> None:
    steps = path_steps()
    assert len(steps) >= 6
    missing = [
        f"{file}:{name}"
        for file, name in steps
        if not (ROOT / file).exists() or name not in defined_names(ROOT / file)
    ]
    assert not missing, f"docs/architecture.md names what the code does not have: {missing}"


def test_the_path_stays_short() -> None:
    files = {file for file, _ in path_steps()} - {"flows/engine.py"}
    assert len(files) <= 5, sorted(files)


def test_the_readme_points_to_it() -> None:
    assert "docs/architecture.md" in (ROOT / "README.md").read_text()
