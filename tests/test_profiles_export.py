"""`smmc-gateway profiles export`: the committed documents bundled into one DOCX/HTML with a
title page, a table of contents, the 15 documents and the diagrams as images (offline),
and the Mermaid-to-PlantUML/Graphviz translation behind the images."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from smmc_gateway.profiles.export import ExportError, export
from smmc_gateway.profiles.images import ImageError, to_dot, to_plantuml
from smmc_gateway.profiles.texts import load

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "profiles"
TOOLS = {"pandoc": "pandoc", "dot": "graphviz", "plantuml": "plantuml"}
missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
# dev.sh installs them; in CI a missing tool is a failure, not a skip
needs_tools = pytest.mark.skipif(
    bool(missing) and not os.environ.get("CI"), reason=f"not installed: {', '.join(missing)}"
)


def _titles(lang: str) -> list[str]:
    t = load(lang)
    return [t.aspects[n]["name"] for n in range(1, 16)]


@needs_tools
@pytest.mark.timeout(600)
def test_the_spanish_docx_holds_all_15_documents_their_sections_and_images(tmp_path: Path) -> None:
    out = tmp_path / "perfiles.docx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "smmc_gateway.cli",
            "profiles",
            "export",
            "--lang",
            "es",
            "--format",
            "docx",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=580,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as z:  # a DOCX opens as a zip of WordprocessingML
        xml = z.read("word/document.xml").decode()
        media = [n for n in z.namelist() if n.startswith("word/media/")]
    text = re.sub(r"<[^>]+>", "", xml)
    for n, title in enumerate(_titles("es"), 1):
        assert f"{n}. {title}" in text, title
    for section in (
        "Resumen",
        "Disparadores",
        "Descripción del caso",
        "Actores y componentes",
        "Diagrama de componentes",
        "Supuestos",
        "Secuencias de interacción",
        "Precondiciones",
        "Postcondiciones",
        "Excepciones",
        "Índice",
        "Glosario",
    ):
        assert section in text, section
    assert "laboratorio de referencia de smmc-gateway" in text  # the title page's author
    diagrams = sum(p.read_text().count("```mermaid") for p in (DOCS / "es").glob("0*.md"))
    diagrams += sum(p.read_text().count("```mermaid") for p in (DOCS / "es").glob("1*.md"))
    assert len(media) == diagrams > 30
    assert "```mermaid" not in text


@needs_tools
@pytest.mark.timeout(600)
def test_the_english_html_embeds_the_diagrams(tmp_path: Path) -> None:
    out = export(DOCS / "en", "en", "html", tmp_path / "profiles.html", "0.1.0")
    html = " ".join(out.read_text().split())  # pandoc wraps lines
    assert html.count('src="data:image/png;base64,') > 30
    for title in _titles("en"):
        assert title in html


def test_export_without_rendered_documents_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="profiles render"):
        export(tmp_path, "es", "docx", tmp_path / "x.docx", "0.1.0")


def test_pdf_without_libreoffice_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ExportError, match="libreoffice-writer-nogui"):
        export(DOCS / "es", "es", "pdf", tmp_path / "x.pdf", "0.1.0")


def test_sequence_diagram_to_plantuml() -> None:
    puml = to_plantuml(
        [
            "sequenceDiagram",
            "  participant SC as Sistema central",
            "  participant MA as Medidor A",
            "  SC->>MA: GET 8/0.0.1.0.0.255/2",
            "  MA-->>SC: respuesta GET",
            "  MA-)SC: Data-notification",
            "  Note over MA: pérdida de suministro",
        ]
    )
    assert 'participant "Sistema central" as SC' in puml
    assert "SC -> MA : GET 8/0.0.1.0.0.255/2" in puml
    assert "MA --> SC : respuesta GET" in puml and "MA ->> SC : Data-notification" in puml
    assert "note over MA : pérdida de suministro" in puml
    with pytest.raises(ImageError, match="not understood"):
        to_plantuml(["sequenceDiagram", "  loop forever"])


def test_flowchart_to_dot() -> None:
    dot = to_dot(
        [
            "flowchart LR",
            '  subgraph operation["Plano de operación"]',
            '    mdm["MDM"]',
            "  end",
            '  gw["Gateway"]',
            '  mdm ---|"MQTT"| gw',
            '  gw -.->|"push"| mdm',
        ]
    )
    assert 'subgraph cluster_1 { label="Plano de operación"' in dot
    assert 'mdm -> gw [label="MQTT"];' in dot
    assert 'gw -> mdm [label="push", style=dashed, dir=forward];' in dot


def test_long_node_labels_are_wrapped_so_a_plane_fits_the_page() -> None:
    dot = to_dot(["flowchart TB", '  ops["Operación (programación, firmware, claves, monitoreo)"]'])
    assert 'ops [label="Operación (programación,\\nfirmware, claves,\\nmonitoreo)"];' in dot
