"""``smmc-gateway demo`` headless: it starts everything, sees readings, events and replies,
stops by itself and exits 0."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.support_sim import REPO


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
@pytest.mark.timeout(150)
def test_demo_headless_three_meters_for_thirty_seconds() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cli", "demo", "--meters", "3", "--for", "30"],
        capture_output=True,
        text=True,
        timeout=140,
        cwd=REPO,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    summary = [line for line in out.splitlines() if line.startswith("demo summary:")]
    assert summary and "readings, events and replies all seen" in summary[0]
    assert "gateway exit 0" in summary[0]
    assert out.count("readings  SMC") >= 3  # every meter's readings were seen
    assert "EndDeviceControls FAILED" in out  # the deliberately bad command
    assert "smmc.switch.disconnected" in out
