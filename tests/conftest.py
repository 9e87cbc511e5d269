"""Suite-wide settings."""

import os

# PTB's RetryAfter warns on every 429 unless it may already use timedeltas (as `safebot` does).
os.environ.setdefault("PTB_TIMEDELTA", "true")
