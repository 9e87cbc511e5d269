"""Suite-wide settings."""

import os

import pytest

# PTB's RetryAfter warns on every 429 unless it may already use timedeltas (as `safebot` does).
os.environ.setdefault("PTB_TIMEDELTA", "true")


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/golden/conftest.py: pytest reads options only from the conftest files
    # it loads at start-up, and `pytest` or `pytest tests` does not load that one so early.
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden transcripts in tests/golden/transcripts/ instead of comparing",
    )
