"""`smmc-gateway meter --referencing sn|auto` against `simulate --referencing sn`
(both real processes), and `smmc-gateway decode` showing SN APDUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support_sim import SimulatorProcess, simulator_process

CLI = [sys.executable, "-m", "smmc_gateway.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def sn_sim() -> Iterator[SimulatorProcess]:
    with simulator_process(["--tcp", "0", "--referencing", "sn"]) as sim:
        yield sim


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(tmp_path / "state")}
    for name in ("SMMC_PASSWORD", "SMMC_EK", "SMMC_AK"):
        out.pop(name, None)
    return out


@pytest.mark.parametrize("referencing", ["sn", "auto"])
def test_meter_get_with_short_names(
    sn_sim: SimulatorProcess, env: dict[str, str], referencing: str
) -> None:
    port = sn_sim.info["meters"][0]["port"]
    connection = ["meter", "--tcp", f"127.0.0.1:{port}", "--referencing", referencing]
    proc = run(*connection, "--json", "get", "3/1.0.1.8.0.255/2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["type"] == "double-long-unsigned"
    proc = run(*connection, "get", "3/1.0.99.99.0.255/2", env=env)
    assert proc.returncode == 1 and "object-undefined" in proc.stderr
    proc = run(*connection, "--json", "objects", env=env)
    assert proc.returncode == 0, proc.stderr
    clock = next(o for o in json.loads(proc.stdout) if o["obis"] == "0.0.1.0.0.255")
    assert clock["class_id"] == 8 and "2" in clock["attributes"]


def test_meter_ln_only_is_refused_by_name(sn_sim: SimulatorProcess, env: dict[str, str]) -> None:
    port = sn_sim.info["meters"][0]["port"]
    proc = run(
        "meter",
        "--tcp",
        f"127.0.0.1:{port}",
        "--referencing",
        "ln",
        "get",
        "3/1.0.1.8.0.255/2",
        env=env,
    )
    assert proc.returncode == 1
    assert "application-context-name-not-supported" in proc.stderr


def test_decode_shows_sn_apdus() -> None:
    proc = run("decode", "--json", "050202FD0802FF08")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "read-request" in text and "0xFD08" in text and "0xFF08" in text
    proc = run("decode", "0C01000600000007")
    assert proc.returncode == 0, proc.stderr
    assert "read-response" in proc.stdout and "double-long-unsigned" in proc.stdout


def test_decode_names_the_vaa_of_an_sn_aare() -> None:
    # The real SN meter's AARE (pastebin Vvs6PqXK): its InitiateResponse octet
    # string is one byte short (a tolerated quirk); vaa-name 0xFA00.
    aare = "6128A109060760857405080102A203020100A305A103020100BE0F040D0800065F1F04001802200960FA00"
    proc = run("decode", aare)
    assert "short-name" in proc.stdout, proc.stdout + proc.stderr
    assert "0xFA00 (SN, the current association's base name)" in proc.stdout, proc.stdout
