"""Errors of the conversation layer.

    FlowError       a flow definition or deployment could not be loaded; lists every problem
                    found (the author's fault: fix the file), never raised for a person's input

A person's unexpected input never raises: the engine answers it with a defined reply.
"""

from __future__ import annotations


class FlowError(Exception):
    """A flow or deployment file is invalid. `problems` lists each one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid flow:\n  - " + "\n  - ".join(self.problems))
