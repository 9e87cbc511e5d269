from __future__ import annotations

from flows.definition import load_flow
from flows.graph import mermaid


def test_the_diagram_shows_every_step_and_every_button() -> None:
    flow = load_flow()
    diagram = mermaid(flow)
    for step in flow.steps.values():
        assert f'{step.id.replace(".", "_")}["{step.id}' in diagram
        for button in step.buttons:
            edge = f"{step.id.replace('.', '_')} --> {button.goto.replace('.', '_')}"
            assert edge in diagram
