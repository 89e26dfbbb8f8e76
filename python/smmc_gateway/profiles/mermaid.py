"""Mermaid diagrams of the profiles: sequences, per-aspect components, the architecture.

Only a small subset of Mermaid is written (``sequenceDiagram`` with participants, ``->>``,
``-->>``, ``-)`` and ``Note over``; ``flowchart LR`` with nodes, ``subgraph`` and labelled
edges), so :mod:`~smmc_gateway.profiles.images` can draw the same diagrams offline for the
exported document. GitHub renders the Mermaid blocks in the Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

from smmc_gateway.profiles.architecture import PLANES, Architecture
from smmc_gateway.profiles.observe import Step
from smmc_gateway.profiles.texts import Texts


def alias(actor: str) -> str:
    return "".join(w[0] for w in actor.split()).upper() + ("" if " " in actor else "X")


def clean(text: str) -> str:
    """Characters Mermaid would read as syntax in a message or label."""
    return (
        text.replace(";", ",")
        .replace("#", "no.")
        .replace(":", " ")
        .replace('"', "'")
        .replace("{", "(")
        .replace("}", ")")
    )


def sequence_diagram(steps: Sequence[Step], t: Texts) -> str:
    actors: list[str] = []
    for s in steps:
        for a in (s.source, s.target):
            if t.actor(a) not in actors:
                actors.append(t.actor(a))
    lines = ["```mermaid", "sequenceDiagram"]
    lines += [f"  participant {alias(a)} as {a}" for a in actors]
    for s in steps:
        src, dst = alias(t.actor(s.source)), alias(t.actor(s.target))
        text = clean(t.step(s.message))
        if src == dst:
            lines.append(f"  Note over {src}: {text}")
        else:
            arrow = (
                "-)"
                if s.push
                else (
                    "-->>"
                    if s.source.startswith("Meter") or s.message.startswith("reply ")
                    else "->>"
                )
            )
            lines.append(f"  {src}{arrow}{dst}: {text}")
    lines.append("```")
    return "\n".join(lines)


def component_diagram(steps: Sequence[Step], t: Texts) -> str:
    """Who talks to whom in this aspect's sequences, over what (MQTT through the broker)."""
    nodes: list[str] = []
    edges: list[tuple[str, str, str]] = []
    broker = t.arch["component"]["broker"]

    def node(name: str) -> str:
        if name not in nodes:
            nodes.append(name)
        return alias(name)

    for s in steps:
        if s.source == s.target:
            continue
        a, b = t.actor(s.source), t.actor(s.target)
        channel = "push" if s.push else s.channel
        if channel == "mqtt":
            edges_add = [(a, broker, "mqtt"), (broker, b, "mqtt")]
        else:
            edges_add = [(a, b, channel)]
        for e in edges_add:
            if e not in edges and (e[1], e[0], e[2]) not in edges:
                edges.append(e)
    lines = ["```mermaid", "flowchart LR"]
    for a, b, _ in edges:
        node(a)
        node(b)
    lines += [f'  {alias(n)}["{clean(n)}"]' for n in nodes]
    for a, b, channel in edges:
        arrow = "-.->" if channel == "push" else "---"
        lines.append(f'  {alias(a)} {arrow}|"{clean(t.channels[channel])}"| {alias(b)}')
    lines.append("```")
    return "\n".join(lines)


def flowchart(arch: Architecture, t: Texts) -> str:
    """Aspect 1: the planes as subgraphs, components as nodes, interfaces as edges."""
    names, planes = t.arch["component"], t.arch["planes"]
    lines = ["```mermaid", "flowchart LR"]
    for plane in PLANES:
        members = [c for c in arch.components if c.plane == plane]
        if not members:
            continue
        lines.append(f'  subgraph {plane}["{clean(planes[plane])}"]')
        lines += [f'    {c.key}["{clean(names[c.key])}"]' for c in members]
        lines.append("  end")
    seen: set[tuple[str, str]] = set()
    for i in arch.interfaces:
        if (i.source, i.target) in seen:
            continue
        seen.add((i.source, i.target))
        arrow = "-.->" if i.protocol == "push" else "---"
        label = clean(t.arch["short"][i.protocol])
        lines.append(f'  {i.source} {arrow}|"{label}"| {i.target}')
    lines.append("```")
    return "\n".join(lines)
