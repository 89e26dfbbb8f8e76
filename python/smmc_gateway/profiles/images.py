"""Draw the profiles' Mermaid diagrams as PNG images, offline, for the exported document.

Only the subset :mod:`~smmc_gateway.profiles.mermaid` writes is read: a
``sequenceDiagram`` becomes a PlantUML sequence diagram, a ``flowchart`` a Graphviz
graph (subgraphs as clusters). Both tools come from the Debian archive (``plantuml``,
``graphviz``) and need no network; a missing tool is an :class:`ImageError` naming the
package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Sequence
from pathlib import Path

PLANTUML_JAR = Path("/usr/share/plantuml/plantuml.jar")
#: Node labels of a flowchart are wrapped at this many characters, so that a plane of
#: five systems side by side still fits a portrait page at a readable size.
LABEL_WIDTH = 26


class ImageError(Exception):
    """A diagram could not be drawn (the message names the tool or the diagram)."""


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def to_plantuml(lines: Sequence[str]) -> str:
    """A Mermaid ``sequenceDiagram`` (our subset) as PlantUML."""
    out = [
        "@startuml",
        "skinparam shadowing false",
        "skinparam defaultFontName DejaVu Sans",
        "skinparam defaultFontSize 11",
        "skinparam sequenceMessageAlign left",
        "skinparam maxMessageSize 320",
        "hide footbox",
    ]
    for raw in lines[1:]:
        line = raw.strip()
        if m := re.match(r"participant (\w+) as (.+)$", line):
            out.append(f'participant "{_q(m.group(2))}" as {m.group(1)}')
        elif m := re.match(r"Note over (\w+): (.*)$", line):
            out.append(f"note over {m.group(1)} : {m.group(2)}")
        elif m := re.match(r"(\w+)(-->>|->>|-\))(\w+): (.*)$", line):
            arrow = {"->>": "->", "-->>": "-->", "-)": "->>"}[m.group(2)]
            out.append(f"{m.group(1)} {arrow} {m.group(3)} : {m.group(4)}")
        elif line:
            raise ImageError(f"sequence diagram line not understood: {line!r}")
    out.append("@enduml")
    return "\n".join(out) + "\n"


def to_dot(lines: Sequence[str]) -> str:
    """A Mermaid ``flowchart`` (our subset) as Graphviz DOT."""
    out = [
        "digraph G {",
        "  rankdir=LR; bgcolor=white;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
        'fontname="DejaVu Sans", fontsize=11];',
        '  edge [fontname="DejaVu Sans", fontsize=9, dir=none];',
    ]
    n = 0
    for raw in lines[1:]:
        line = raw.strip()
        if m := re.match(r'subgraph (\w+)\["(.*)"\]$', line):
            n += 1
            out.append(
                f'  subgraph cluster_{n} {{ label="{_q(m.group(2))}"; '
                'style="rounded,dashed"; fontname="DejaVu Sans"; fontsize=12;'
            )
        elif line == "end":
            out.append("  }")
        elif m := re.match(r'(\w+)\["(.*)"\]$', line):
            label = "\\n".join(textwrap.wrap(_q(m.group(2)), LABEL_WIDTH))
            out.append(f'  {m.group(1)} [label="{label}"];')
        elif m := re.match(r'(\w+) (---|-\.->)\|"(.*)"\| (\w+)$', line):
            style = ", style=dashed, dir=forward" if m.group(2) == "-.->" else ""
            out.append(f'  {m.group(1)} -> {m.group(4)} [label="{_q(m.group(3))}"{style}];')
        elif line:
            raise ImageError(f"flowchart line not understood: {line!r}")
    out.append("}")
    if n:  # planes as clusters: stacked top to bottom, so the page width suffices
        out[1] = "  rankdir=TB; bgcolor=white; newrank=true;"
    return "\n".join(out) + "\n"


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ImageError(
            f"{tool} is not installed: apt-get install {package} (Debian) to draw the diagrams"
        )
    return path


def draw(diagrams: Sequence[Sequence[str]], directory: Path) -> list[Path]:
    """Each Mermaid diagram (its lines without the fences) drawn to ``directory/dNNN.png``,
    in order."""
    directory.mkdir(parents=True, exist_ok=True)
    pngs: list[Path] = []
    sequences: list[Path] = []
    for i, lines in enumerate(diagrams):
        kind = lines[0].strip() if lines else ""
        png = directory / f"d{i:03d}.png"
        pngs.append(png)
        if kind == "sequenceDiagram":
            src = directory / f"d{i:03d}.puml"
            src.write_text(to_plantuml(lines), encoding="utf-8")
            sequences.append(src)
        elif kind.startswith("flowchart"):
            dot = _need("dot", "graphviz")
            src = directory / f"d{i:03d}.dot"
            src.write_text(to_dot(lines), encoding="utf-8")
            _run([dot, "-Tpng", "-Gdpi=110", str(src), "-o", str(png)], "dot")
        else:
            raise ImageError(f"diagram {i + 1}: {kind!r} is not a diagram type drawn here")
    if sequences:
        if PLANTUML_JAR.exists() and shutil.which("java"):
            cmd = [
                "java",
                "-Djava.awt.headless=true",
                "-DPLANTUML_LIMIT_SIZE=32768",
                "-jar",
                str(PLANTUML_JAR),
            ]
        else:
            cmd = [_need("plantuml", "plantuml")]
        _run(
            [*cmd, "-tpng", "-charset", "UTF-8", *map(str, sequences)],
            "plantuml",
            env={**os.environ, "PLANTUML_LIMIT_SIZE": "32768"},
        )
    missing = [p.name for p in pngs if not p.exists()]
    if missing:
        raise ImageError(f"no image was drawn for {', '.join(missing)}")
    return pngs


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"{what} could not run: {exc}") from None
    if proc.returncode != 0:
        raise ImageError(
            f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[:500]}"
        )
