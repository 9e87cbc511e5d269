"""How strong a passphrase must be: for portal accounts and for `safebot keys generate`.

At least 12 characters and a zxcvbn score of 3 or more ("safely unguessable": about 10^10
guesses), judged with the person's own words (name, login, organisation) counted as guessable.
A refusal says why, in words a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MIN_SCORE = 3
# zxcvbn's cost grows with the length; it only needs the first 100 characters to judge.
_JUDGED = 100


def passphrase_problem(passphrase: str, user_inputs: Sequence[str] = ()) -> str | None:
    """Why `passphrase` is refused, or None when it is strong enough."""
    if len(passphrase) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    result = zxcvbn(passphrase[:_JUDGED], user_inputs=[u for u in user_inputs if u])
    if int(result["score"]) >= MIN_SCORE:
        return None
    feedback = result.get("feedback") or {}
    said = [str(feedback.get("warning") or "")]
    said += [str(s) for s in feedback.get("suggestions") or []]
    why = " ".join(s.strip() for s in said if s.strip())
    return "it is too easy to guess" + (f": {why}" if why else "")
