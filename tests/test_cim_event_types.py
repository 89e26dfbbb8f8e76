"""IEC 61968-9 EndDeviceEventType codes (smmc_gateway.cim.event_types): every event name
the gateway can emit has a code, codes are built from the public enumerations, and the
documents and schemas rendered from the table are the committed ones."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from smmc_gateway.cim import event_types as et
from smmc_gateway.cim.event_types import (
    EVENT_TYPES,
    FAMILIES,
    IDIS_EVENT_NAMES,
    EventType,
    UnknownEventName,
    event_type,
    lookup,
    meter_event_name,
)
from smmc_gateway.cim.render import check, event_codes_md
from smmc_gateway.headend import pushes, service
from smmc_gateway.headend.commands.end_device_firmware import STEP_EVENTS
from smmc_gateway.ops.audit import EVENT_TYPE as AUDIT_EVENT
from smmc_gateway.usecases import events as events_uc

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "python" / "smmc_gateway"
NAME = re.compile(r"smmc\.[A-Za-z]+(\.[A-Za-z0-9_]+)+")


def _literals() -> dict[str, str]:
    """Every string constant of the package that looks like an event name -> where."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        # pieces of f-strings (f"smmc.alarm.bit{bit}") are templates: the run-time test below
        # builds their names
        pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in pieces:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                text = node.value.decode() if isinstance(node.value, bytes) else node.value
                if NAME.fullmatch(text):
                    found.setdefault(text, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_event_name_written_in_the_code_base_has_a_code() -> None:
    """A new event name anywhere (a constant, a literal) without a line in the table
    fails here, naming the file and line: add it to cim/event_types.py."""
    literals = _literals()
    assert len(literals) >= 25  # the scan does see the producers
    missing = {name: where for name, where in literals.items() if lookup(name) is None}
    assert not missing, (
        f"event names without an IEC 61968-9 code (add them to EVENT_TYPES in "
        f"python/smmc_gateway/cim/event_types.py): {missing}"
    )


def test_every_name_the_producers_build_at_run_time_has_a_code() -> None:
    names = [
        service.EV_CLOCK_ADJUSTED,
        service.EV_CLOCK_CHECKED,
        service.EV_CLOCK_REFUSED,
        service.EV_READING_GAP,
        service.EV_DISCONNECTED,
        service.EV_CONNECTED,
        service.EV_LIMIT_SET,
        service.EV_EMERGENCY_SET,
        service.EV_ACCOUNT_STEP,
        service.EV_FINAL_READ,
        service.EV_OPENING_READ,
        service.EV_MODEL_MISMATCH,
        pushes.EV_PUSH,
        AUDIT_EVENT,
        *STEP_EVENTS.values(),
    ]
    # every row of every event log, whatever its code (known or not, even a bad value -1)
    logs = [log for log in events_uc.LOGS.values() if log != "powerFailure"]
    names += [events_uc.event_type(log, code) for log in logs for code in range(-1, 300)]
    # every alarm register bit, named or not, newly set or repeated
    names += [kind for kind, _, _ in events_uc.named_alarms(0xFFFFFFFF, 0)]
    for name in names:
        assert event_type(name).code.startswith("3."), name


def test_every_firmware_campaign_step_has_an_event_name() -> None:
    """The campaign reports steps by literal (emit(meter, "verified", ...)): each one is
    in STEP_EVENTS, or the event would be refused at run time."""
    source = (PACKAGE / "usecases" / "firmware_campaign.py").read_text()
    steps = set(re.findall(r'emit\(\s*\w+(?:\.\w+)?,\s*"(\w+)"', source))
    assert steps and steps <= set(STEP_EVENTS), steps - set(STEP_EVENTS)


def test_codes_are_built_from_the_enumerations() -> None:
    for t in (*EVENT_TYPES.values(), *FAMILIES):
        assert re.fullmatch(r"3\.\d+\.\d+\.\d+", t.code), t
        _, d, s, a = (int(x) for x in t.code.split("."))
        assert (et.DOMAINS[t.domain], et.SUBDOMAINS[t.subdomain], et.ACTIONS[t.action]) == (d, s, a)
        assert t.meaning and t.source in et.SOURCES
    with pytest.raises(ValueError, match=r"x: domain 'Plumbing' is not in the table"):
        EventType("x", "Plumbing", "NA", "NA", "m", "annexE", "meter")
    with pytest.raises(ValueError, match=r"x: source 'rumour' is not in SOURCES"):
        EventType("x", "Power", "NA", "NA", "m", "rumour", "meter")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("smmc.alarm.outage", "3.26.0.85"),  # power off (the example)
        ("smmc.alarm.restoration", "3.26.0.216"),  # power restored
        ("smmc.meter.powerDown", "3.26.0.85"),
        ("smmc.meter.remoteDisconnection", "3.31.0.68"),
        ("smmc.switch.connected", "3.31.0.42"),
        ("smmc.meter.limiterThresholdExceeded", "3.15.261.139"),  # load limit exceeded
        ("smmc.clock.adjusted", "3.36.116.24"),  # clock set
        ("smmc.firmware.activated", "3.11.283.4"),
        ("smmc.firmware.failed", "3.11.0.85"),
        ("smmc.meter.wrongPasswordNTimes", "3.12.24.35"),  # authentication failure
        ("smmc.meter.meterCoverRemoved", "3.12.29.212"),  # cover tamper
        ("smmc.meter.strongDcFieldDetected", "3.12.66.257"),  # magnetic tamper
        ("smmc.meter.eventLogCleared", "3.17.44.28"),  # log cleared
        ("smmc.audit.opticalOperation", "3.7.0.24"),  # configuration changed
        ("smmc.meter.powerQuality.77", "3.26.28.0"),  # an unnamed power-quality row
        ("smmc.meter.standard.-1", "3.0.0.0"),
        ("smmc.alarm.bit17", "3.17.285.0"),
    ],
)
def test_codes_of_the_events_asked_for(name: str, code: str) -> None:
    assert event_type(name).code == code


def test_unknown_names_are_refused_with_the_way_out() -> None:
    for bad in ("smmc.han.deviceJoined?", "smmc.meter.mbus.100", "smmc.alarm.bitX", "x"):
        assert lookup(bad) is None
        with pytest.raises(
            UnknownEventName,
            match=r"add it to EVENT_TYPES \(or FAMILIES\) in "
            r"python/smmc_gateway/cim/event_types\.py",
        ):
            event_type(bad)


def test_idis_codes_map_to_named_events() -> None:
    assert meter_event_name("standard", 1) == "smmc.meter.powerDown"
    assert meter_event_name("fraud", 999) == "smmc.meter.fraud.999"
    for code, name in IDIS_EVENT_NAMES.items():
        assert f"smmc.meter.{name}" in EVENT_TYPES, code
        assert f"IDIS code {code})" in EVENT_TYPES[f"smmc.meter.{name}"].meaning
    assert events_uc.EVENT_NAMES is IDIS_EVENT_NAMES  # one table, no copy


def test_documents_and_schemas_match_the_tables() -> None:
    """docs/event-codes.md, docs/reading-types.md and the event-type schemas are rendered
    from the tables (`python -m smmc_gateway.cim render`); the committed ones match."""
    assert check(REPO) == []
    doc = event_codes_md()
    for t in EVENT_TYPES.values():
        assert f"| {t.code} | `{t.name}` |" in doc
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cim", "check", "--repo", str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_names_what_is_out_of_date(tmp_path: Path) -> None:
    (tmp_path / "docs" / "schemas").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cim", "check", "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "docs/event-codes.md" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cim", "render", "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and check(tmp_path) == []
