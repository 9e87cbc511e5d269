"""What every turn of every conversation shares: the flow, the deployment and the catalogues."""

from __future__ import annotations

from dataclasses import dataclass

from flows.definition import Flow
from flows.deployment import Deployment
from flows.i18n import Catalogs


@dataclass(frozen=True)
class Context:
    flow: Flow
    deployment: Deployment
    catalogs: Catalogs
    # How long the service keeps what it keeps, as the screens must say it (the edges' settings):
    # an unfinished form's answers, and where a person is in the conversation.
    draft_minutes: int = 60
    state_hours: int = 6
