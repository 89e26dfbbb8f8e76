"""Interoperability profiles: the committed docs/profiles/{es,en}/ still match what the
scenarios observe (real Mosquitto, simulated meters, the gateway), ordering by cause, the
renderer on hand-made sequences, and that `profiles check` fails on a real mismatch."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from smmc_gateway.ops.config import load_config
from smmc_gateway.profiles import catalog
from smmc_gateway.profiles.architecture import architecture
from smmc_gateway.profiles.aspects import ASPECTS
from smmc_gateway.profiles.cli import check
from smmc_gateway.profiles.kpis import mask_measured
from smmc_gateway.profiles.observe import CENTRAL, GATEWAY, Step, Timing, normalise
from smmc_gateway.profiles.render import Context, Observed, render_all, render_aspect
from smmc_gateway.profiles.texts import load

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "profiles"


@pytest.mark.timeout(400)
def test_profiles_check_passes_on_the_committed_documents() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cli", "profiles", "check", "--out", str(DOCS)],
        capture_output=True,
        text=True,
        timeout=380,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "32 documents match the observed scenarios" in proc.stdout


CMD = Step(CENTRAL, GATEWAY, "cmd/EndDeviceControls create disconnect meter A (correlationId x)")
A1 = [
    Step(GATEWAY, "Meter A", "ACTION 70/0.0.96.3.10.255/1", "dlms"),
    Step("Meter A", GATEWAY, "ACTION response: success", "dlms"),
]
A2 = [
    Step(GATEWAY, "Meter A", "GET 70/0.0.96.3.10.255/2", "dlms"),
    Step("Meter A", GATEWAY, "GET response: data (boolean)", "dlms"),
]
B1 = [
    Step(GATEWAY, "Meter B", "GET 70/0.0.96.3.10.255/2", "dlms"),
    Step("Meter B", GATEWAY, "GET response: data (boolean)", "dlms"),
]
PUSH = Step(
    "Meter A",
    GATEWAY,
    "Data-notification from push setup 0.4.25.9.0.255 (firmware)",
    "dlms",
    push=True,
)
EV = Step(
    GATEWAY,
    CENTRAL,
    "meter/meter A/events EndDeviceEvents created [3.11.283.4 smmc.firmware.activated]",
)
EV_PUSH = Step(
    GATEWAY,
    CENTRAL,
    "meter/meter A/events EndDeviceEvents created [3.1.0.60 smmc.push.dataNotification]",
)
READ = Step(GATEWAY, CENTRAL, "meter/meter A/readings MeterReadings created [MeterReading]")
REPLY = Step(GATEWAY, CENTRAL, "reply EndDeviceControls OK (correlationId x)")


def test_order_is_by_cause_whatever_the_arrival_order() -> None:
    """Meters served concurrently interleave, and publications of different outbox
    queues or tasks arrive in any order: the normalised sequence is always the same."""
    expected = [CMD, *A1, PUSH, *A2, *B1, READ, EV, EV_PUSH, REPLY]
    rng = random.Random(8)
    for _ in range(200):
        # each meter's own steps keep their order (the meter executes them in sequence);
        # everything else arrives in any interleaving
        lanes = [list([*A1, PUSH, *A2]), list(B1), [READ], [EV], [EV_PUSH], [REPLY]]
        arrived = [CMD]
        while any(lanes):
            lane = rng.choice([ln for ln in lanes if ln])
            arrived.append(lane.pop(0))
        assert normalise(arrived) == expected


def test_segments_start_at_each_trigger() -> None:
    second = Step(
        CENTRAL, GATEWAY, "cmd/EndDeviceControls create connect meter A (correlationId y)"
    )
    local = Step("Customer", "Meter A", "presses the meter's button", "local")
    out = normalise([CMD, REPLY, *A1, second, EV, *A2, local])
    assert out == [CMD, *A1, REPLY, second, *A2, EV, local]


def test_a_pair_repeated_back_to_back_is_shown_once_and_marked() -> None:
    block = [
        Step(GATEWAY, "Meter A", "ACTION 18/0.0.44.0.0.255/2", "dlms"),
        Step("Meter A", GATEWAY, "ACTION response: success", "dlms"),
    ]
    once = [
        Step(GATEWAY, "Meter A", "GET 18/0.0.44.0.0.255/6", "dlms"),
        Step("Meter A", GATEWAY, "GET response: data (enum)", "dlms"),
    ]
    out = normalise(block * 5 + once)
    assert [s.message for s in out] == [
        "ACTION 18/0.0.44.0.0.255/2 (repeated)",
        "ACTION response: success (repeated)",
        "GET 18/0.0.44.0.0.255/6",
        "GET response: data (enum)",
    ]


def test_a_step_on_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="channel"):
        Step(GATEWAY, "Meter A", "x", "carrier-pigeon")


def _timing(latency: float, result: str, cid: str = "x") -> Timing:
    return Timing(
        sent={cid: 0.0}, replies={cid: (latency, result)}, started=0.0, ended=latency + 0.01
    )


def _ctx() -> Context:
    import tempfile

    from smmc_gateway.headend.labconfig import write_lab_config

    with tempfile.TemporaryDirectory() as tmp:
        meters = [{"meter_id": "m1", "port": 4059, "ek": "00" * 16, "ak": "11" * 16}]
        cfg = write_lab_config(Path(tmp), meters, broker=("127.0.0.1", 1883))
        arch = architecture(load_config(cfg), volatile_ports=True)
    return Context("Distribuidora Ejemplo S.A.", "0.1.0", arch, "lab")


SEQ = [CMD, *A1, *A2, EV, REPLY]
RUNS = {
    "06-disconnect-connect": Observed(6, SEQ, _timing(0.2, "OK"), False),
    "06-unknown-meter": Observed(6, [CMD, REPLY], _timing(0.1, "FAILED"), True),
}


def test_every_template_section_in_both_languages() -> None:
    es = render_aspect(ASPECTS[6], RUNS, load("es"), _ctx())
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
        "Información intercambiada",
        "Indicadores clave",
        "Glosario",
        "Caso de uso internacional de referencia",
        "SMMC-UC-06",
        "Distribuidora Ejemplo S.A.",
        "Escenarios de excepción observados",
    ):
        assert section in es, section
    assert "| 2 | Gateway | Medidor A | DLMS | ACTION 70/0.0.96.3.10.255/1 |" in es
    assert "respuesta ACTION: success" in es
    en = render_aspect(ASPECTS[6], RUNS, load("en"), _ctx())
    for section in (
        "Summary",
        "Triggers",
        "Use case description",
        "Actors and components",
        "Component diagram",
        "Assumptions",
        "Interaction sequences",
        "Pre-conditions",
        "Post-conditions",
        "Exceptions",
        "Information exchanged",
        "Key performance indicators",
        "Glossary",
        "end-device-controls-request",
    ):
        assert section in en, section
    assert en == render_aspect(ASPECTS[6], RUNS, load("en"), _ctx())


def test_kpis_are_measured_and_judged_against_their_targets() -> None:
    doc = render_aspect(ASPECTS[6], RUNS, load("en"), _ctx())
    assert "| K1 | Request latency |" in doc and "| 0.20 s | met |" in doc
    assert "| 1/1 | met |" in doc  # success ratio and exceptions handled
    slow = {**RUNS, "06-disconnect-connect": Observed(6, SEQ, _timing(42.0, "OK"), False)}
    assert "| 42.00 s | not met |" in render_aspect(ASPECTS[6], slow, load("en"), _ctx())


def test_check_ignores_measured_values_but_not_a_missed_target(tmp_path: Path) -> None:
    docs = render_all(RUNS, load("en"), _ctx())
    for name, text in docs.items():
        (tmp_path / name).write_text(text)
    other = render_all(
        {**RUNS, "06-disconnect-connect": Observed(6, SEQ, _timing(0.7, "OK"), False)},
        load("en"),
        _ctx(),
    )
    assert check(tmp_path, other) == []  # 0.20 s -> 0.70 s: still met
    missed = render_all(
        {**RUNS, "06-disconnect-connect": Observed(6, SEQ, _timing(0.3, "FAILED"), False)},
        load("en"),
        _ctx(),
    )
    problems = check(tmp_path, missed)
    assert len(problems) == 1 and "not met" in problems[0]


def test_check_reports_a_changed_behaviour_and_a_missing_document(tmp_path: Path) -> None:
    docs = render_all(RUNS, load("es"), _ctx())
    for name, text in docs.items():
        (tmp_path / name).write_text(text)
    assert check(tmp_path, docs) == []
    changed_steps = [
        CMD,
        Step(GATEWAY, "Meter A", "ACTION 70/0.0.96.3.10.255/2", "dlms"),
        A1[1],
        *A2,
        EV,
        REPLY,
    ]
    changed = render_all(
        {**RUNS, "06-disconnect-connect": Observed(6, changed_steps, _timing(0.2, "OK"), False)},
        load("es"),
        _ctx(),
    )
    (tmp_path / "01-general-architecture.md").unlink()
    problems = check(tmp_path, changed)
    assert len(problems) == 2
    assert any(
        "+| 2 | Gateway | Medidor A | DLMS | ACTION 70/0.0.96.3.10.255/2 |" in p for p in problems
    )
    assert any("01-general-architecture.md" in p for p in problems)


def test_mask_measured_blanks_only_the_measured_cell() -> None:
    row = "| K1 | Latencia | def | <= 10 s | 0.12 s | cumple |\n"
    assert mask_measured(row) == "| K1 | Latencia | def | <= 10 s | … | cumple |\n"
    assert mask_measured("| 1 | Gateway | x | y | z | w |\n") == "| 1 | Gateway | x | y | z | w |\n"


def test_every_catalogue_scenario_has_a_title_and_every_aspect_a_scenario() -> None:
    keys = {f"{s.aspect:02d}-{s.name}" for s in catalog.SCENARIOS}
    for lang in ("es", "en"):
        assert keys <= set(load(lang).scenarios), lang
    for n in range(1, 16):
        mine = [s for s in catalog.SCENARIOS if s.aspect == n]
        assert any(not s.exception for s in mine), f"aspect {n}: no nominal scenario"
        assert any(s.exception for s in mine), f"aspect {n}: no exception scenario"


def test_committed_spanish_documents_are_in_spanish() -> None:
    """The step tables of the Spanish documents carry no untranslated English phrase."""
    english = (
        " the ",
        " due for ",
        "supply lost",
        "supply restored",
        "response:",
        " registered (discovery)",
        "joins the M-Bus",
        "presses the",
        "(repeated)",
    )
    for path in sorted((DOCS / "es").glob("*.md")):
        for line in path.read_text().splitlines():
            if line.startswith("| ") and line.split(" | ")[0][2:].strip().isdigit():
                for phrase in english:
                    assert phrase not in line, f"{path.name}: {line}"
