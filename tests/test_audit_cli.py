"""Audit records of `smmc-gateway meter` (use case 5), the CLI run as a subprocess
against the simulator: set, action and disconnect leave one durable record each
(0600, JSON lines, who/when/which meter/what/result), reads leave none, a meter's
refusal is recorded with its reason, secrets never reach a record, and a spool
that cannot be written makes the command exit 1 with the record on stderr."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.ops.audit import read_spool_file, record_id

from tests.support_sim import SimulatorProcess, simulator_process

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

CLI = [sys.executable, "-m", "smmc_gateway.cli"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with simulator_process(["--tcp", "0", "--auth", "hls-gmac"]) as s:
        yield s


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit-state")


def _run(
    sim: SimulatorProcess, state: Path, spool: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    info = sim.info["meters"][0]
    env = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(state)}
    env.update({"SMMC_EK": info["ek"], "SMMC_AK": info["ak"]})
    env.pop("SMMC_AUDIT_DIR", None)
    extra = ["--audit-dir", str(spool)] if spool is not None else []
    return subprocess.run(
        [*CLI, "meter", "--tcp", f"127.0.0.1:{info['port']}", *extra, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _records(spool: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted(spool.glob("*.jsonl")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        recs, problems = read_spool_file(f)
        assert problems == []
        out.extend(recs)
    return out


def test_set_and_disconnect_are_recorded_reads_are_not(
    sim: SimulatorProcess, state: Path, tmp_path: Path
) -> None:
    spool = tmp_path / "audit"
    assert _run(sim, state, spool, "get", "71/0.0.17.0.0.255/4").returncode == 0
    assert _run(sim, state, spool, "clock").returncode == 0
    assert _run(sim, state, spool, "limit").returncode == 0  # read only
    assert _records(spool) == []
    value = '{"type": "double-long-unsigned", "value": 4321}'
    proc = _run(sim, state, spool, "set", "71/0.0.17.0.0.255/4", value)
    assert proc.returncode == 0, proc.stderr
    proc = _run(sim, state, spool, "disconnect")
    assert proc.returncode == 0, proc.stderr
    recs = _records(spool)
    assert [r["command"] for r in recs] == ["set", "disconnect"]
    info = sim.info["meters"][0]
    for r in recs:
        assert r["user"] == getpass.getuser()
        assert r["client"] == 1 and r["auth"] == "hls-gmac"
        assert r["connection"] == f"tcp 127.0.0.1:{info['port']} wrapper"
        assert r["meter"]["deviceId"]  # read from the meter
        assert r["time"].endswith("Z") and r["result"] == "success"
        assert r["cliVersion"]
        assert r["recordId"] == record_id(r)  # stable: content-derived
    set_rec, disc = recs
    assert set_rec["writes"] == [
        {
            "request": "set",
            "class": 70 + 1,
            "obis": "0.0.17.0.0.255",
            "attribute": 4,
            "value": {"type": "double-long-unsigned", "value": 4321},
            "result": "success",
        }
    ]
    assert disc["writes"][0]["method"] == 1 and disc["writes"][0]["class"] == 70
    assert _run(sim, state, spool, "connect").returncode == 0


def test_refusal_is_recorded_with_the_meters_reason(
    sim: SimulatorProcess, state: Path, tmp_path: Path
) -> None:
    spool = tmp_path / "audit"
    bad = '{"type": "long-unsigned", "value": 5}'
    proc = _run(sim, state, spool, "set", "71/0.0.17.0.0.255/4", bad)
    assert proc.returncode == 1
    (rec,) = _records(spool)
    assert rec["result"] == "type-unmatched"
    assert rec["writes"][0]["result"] == "type-unmatched"


def test_secrets_never_in_records(sim: SimulatorProcess, state: Path, tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    secret = "41" * 16
    # change_HLS_secret (Association LN method 2): the meter may refuse; recorded either way.
    _run(
        sim,
        state,
        spool,
        "action",
        "15/0.0.40.0.0.255/2",
        json.dumps({"type": "octet-string", "value": secret}),
    )
    (rec,) = _records(spool)
    text = json.dumps(rec).lower()
    info = sim.info["meters"][0]
    for s in (secret, info["ek"].lower(), info["ak"].lower()):
        assert s not in text
    assert rec["writes"][0]["value"] == {"redacted": True}


def test_unwritable_spool_exits_1_with_record_on_stderr(
    sim: SimulatorProcess, state: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    proc = _run(
        sim, state, blocker / "audit", "action", "8/0.0.1.0.0.255/6", '{"type": "long", "value": 0}'
    )
    assert proc.returncode == 1
    assert "AUDIT RECORD NOT WRITTEN" in proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("{"))
    rec = json.loads(line)
    assert rec["command"] == "action" and rec["result"] == "success"
    assert "success" in proc.stdout  # the operation itself was reported


@pytest.mark.slow
def test_optical_firmware_push_is_one_record_with_image_digest(tmp_path: Path) -> None:
    spool = tmp_path / "audit"
    image = tmp_path / "fw-3.1.bin"
    image.write_bytes(os.urandom(1200))
    device = str(tmp_path / "optical")
    password = "Opt-audit-pass"
    sim_args = ["--serial", device, "--create-pty", "--optical", "--auth", "lls"]
    with simulator_process([*sim_args, "--password", password]):
        env = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(tmp_path / "st")}
        for name in ("SMMC_PASSWORD", "SMMC_EK", "SMMC_AK"):
            env.pop(name, None)
        env["SMMC_AUDIT_DIR"] = str(spool)
        cmd = ["meter", "--optical", device, "--password", password, "--timeout", "10"]
        proc = subprocess.run(
            [*CLI, *cmd, "firmware", "push", str(image), "--no-activate", "--unsigned"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    (rec,) = _records(spool)
    assert password.lower() not in json.dumps(rec).lower()
    assert rec["command"] == "firmware push" and rec["connection"] == f"optical {device}"
    assert rec["auth"] == "lls" and rec["client"] == 1
    assert rec["details"]["size"] == 1200
    assert rec["details"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert rec["details"]["unsigned"] is True and "manifest" not in rec["details"]
    blocks = [w for w in rec["writes"] if w.get("method") == 2 and w["class"] == 18]
    assert len(blocks) == 1 and blocks[0].get("count", 1) >= 1
    assert blocks[0]["value"] == {"omitted": "image blocks"}
