"""Golden transcripts: `--update-golden` (declared in tests/conftest.py) rewrites them."""

from __future__ import annotations

import pytest

from flows.engine import Context
from tests.golden.transcript import golden_context


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def ctx() -> Context:
    return golden_context()
