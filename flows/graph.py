"""The flow as a Mermaid diagram, generated from the same data the engine runs
(`safebot flows-graph`), so the picture cannot drift from the code."""

from __future__ import annotations

from flows.definition import Flow
from flows.kinds import StepKind


def _node(step_id: str) -> str:
    return step_id.replace(".", "_")


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD"]
    for step in flow.steps.values():
        label = step.title or step.summary_label or step.id
        lines.append(
            f'    {_node(step.id)}["{step.id}<br/><small>{label.replace(chr(34), "")}</small>"]'
        )
    for step in flow.steps.values():
        for button in step.buttons:
            lines.append(f"    {_node(step.id)} --> {_node(button.goto)}")
        for option in step.options:
            if option.next:
                lines.append(f"    {_node(step.id)} -- {option.value} --> {_node(option.next)}")
        if step.next:
            style = "-.->" if flow.steps[step.next].when else "-->"
            lines.append(f"    {_node(step.id)} {style} {_node(step.next)}")
    summary = flow.by_kind[StepKind.SUMMARY]
    submitting = flow.by_kind[StepKind.SUBMITTING]
    done = flow.by_kind[StepKind.DONE]
    lines.append(f"    {_node(summary)} -- confirm --> {_node(submitting)}")
    lines.append(f"    {_node(submitting)} -- stored --> {_node(done)}")
    lines.append(f"    {_node(submitting)} -- failed --> {_node(summary)}")
    return "\n".join(dict.fromkeys(lines)) + "\n"
