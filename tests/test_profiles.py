"""Interoperability profiles: the committed docs/profiles/ still match what the scenarios
observe (real Mosquitto, simulated meters, the gateway), and the renderer on a hand-made
sequence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from smmc_gateway.profiles.aspects import ASPECTS
from smmc_gateway.profiles.cli import check
from smmc_gateway.profiles.observe import CENTRAL, GATEWAY, Step, normalise
from smmc_gateway.profiles.render import render_all, render_aspect, sequence_diagram

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "profiles"


def test_profiles_check_passes_on_the_committed_documents() -> None:
    proc = subprocess.run([sys.executable, "-m", "smmc_gateway.cli", "profiles", "check",
                           "--out", str(DOCS)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "documents match the observed scenarios" in proc.stdout


STEPS = [
    Step(CENTRAL, GATEWAY, "cmd/EndDeviceControls create disconnect meter A (correlationId x)"),
    Step(GATEWAY, "Meter B", "GET 70/0.0.96.3.10.255/2", "dlms"),
    Step("Meter B", GATEWAY, "GET response: data", "dlms"),
    Step(GATEWAY, "Meter A", "ACTION 70/0.0.96.3.10.255/1", "dlms"),
    Step("Meter A", GATEWAY, "ACTION response: success", "dlms"),
    Step(GATEWAY, CENTRAL, "reply EndDeviceControls OK (correlationId x)"),
    Step(GATEWAY, CENTRAL, "meter/meter A/events EndDeviceEvents created"),
    Step("Meter A", GATEWAY, "Data-notification from push setup 0.4.25.9.0.255 (power-down)",
         "dlms", push=True),
]


def test_normalise_orders_concurrent_meters_and_gateway_publications() -> None:
    out = normalise(STEPS)
    assert [s.target if s.source == GATEWAY else s.source for s in out[1:5]] == [
        "Meter A", "Meter A", "Meter B", "Meter B"]  # pairs kept, meter A first
    assert out[1].message.startswith("ACTION") and out[2].message.startswith("ACTION response")
    assert [s.message.split()[0] for s in out[5:7]] == ["meter/meter", "reply"]  # reply last
    assert out[7].push


def test_renderer_on_a_hand_made_sequence() -> None:
    diagram = sequence_diagram(STEPS)
    assert diagram.startswith("```mermaid\nsequenceDiagram\n")
    assert "  participant CS as Central system" in diagram
    assert "  GX->>MB: GET 70/0.0.96.3.10.255/2" in diagram
    assert "  MB-->>GX: GET response  data" in diagram  # ':' would end the Mermaid message
    assert "  MA-)GX: Data-notification" in diagram  # a push is asynchronous
    doc = render_aspect(ASPECTS[6], {"06-x": ("Disconnect", STEPS)})
    for section in ("## 1. Description", "### Triggers", "## 2. Actors and components",
                    "### Component diagram", "## 3. Assumptions", "## 4. Pre-conditions",
                    "## 5. Post-conditions", "## 6. Scenarios (observed)", "## 7. Exceptions",
                    "## 8. Requirements", "NTD technical annex articles 3-3"):
        assert section in doc, section
    assert "| 4 | Gateway | Meter A | DLMS | ACTION 70/0.0.96.3.10.255/1 |" in doc
    assert doc == render_aspect(ASPECTS[6], {"06-x": ("Disconnect", STEPS)})


def test_aspects_without_observations_say_so_and_show_no_sequence() -> None:
    docs = render_all({"06-x": ("Disconnect", STEPS)})
    assert len(docs) == 16 and "README.md" in docs
    for name, text in docs.items():
        if name.startswith("04-"):
            assert "not implemented" in text and "sequenceDiagram" not in text
        if name.startswith(("02-", "03-", "11-")):  # implemented, nothing observed in this call
            assert "no scenario is recorded" in text and "sequenceDiagram" not in text
    assert "sequenceDiagram" in docs["06-remote-connect-disconnect.md"]


def test_check_reports_a_diff_and_a_missing_document(tmp_path: Path) -> None:
    docs = render_all({"06-x": ("Disconnect", STEPS)})
    for name, text in docs.items():
        (tmp_path / name).write_text(text)
    assert check(tmp_path, docs) == []
    changed = dict(docs)
    changed["06-remote-connect-disconnect.md"] = docs["06-remote-connect-disconnect.md"].replace(
        "ACTION 70/0.0.96.3.10.255/1", "ACTION 70/0.0.96.3.10.255/2")
    (tmp_path / "01-general-architecture.md").unlink()
    problems = check(tmp_path, changed)
    assert len(problems) == 2
    assert any("+| 4 | Gateway | Meter A | DLMS | ACTION 70/0.0.96.3.10.255/2 |" in p
               for p in problems)
    assert any("01-general-architecture.md" in p for p in problems)


def test_a_pair_repeated_back_to_back_is_shown_once_and_marked() -> None:
    block = [Step(GATEWAY, "Meter A", "ACTION 18/0.0.44.0.0.255/2", "dlms"),
             Step("Meter A", GATEWAY, "ACTION response: success", "dlms")]
    once = [Step(GATEWAY, "Meter A", "GET 18/0.0.44.0.0.255/6", "dlms"),
            Step("Meter A", GATEWAY, "GET response: data (enum)", "dlms")]
    out = normalise(block * 5 + once)
    assert [s.message for s in out] == [
        "ACTION 18/0.0.44.0.0.255/2 (repeated)", "ACTION response: success (repeated)",
        "GET 18/0.0.44.0.0.255/6", "GET response: data (enum)"]
