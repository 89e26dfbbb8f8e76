"""`smmc-gateway meter` run as a subprocess against the simulator (its own process):
TCP with the wrapper at HLS-GMAC, HDLC over TCP, and a socat pseudo-terminal at
9600 baud with the optical mode E handshake. Human and --json output; secrets
never in stdout or stderr; exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from smmc_gateway import _core

from tests.support_sim import SimulatorProcess, pty_pair, simulator_process

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

CLI = [sys.executable, "-m", "smmc_gateway.cli"]


class Meter:
    """Runs `smmc-gateway meter CONNECTION …` and keeps every output for the secrets check."""

    def __init__(self, connection: list[str], env: dict[str, str], secrets: list[str]) -> None:
        self.connection = connection
        self.env = env
        self.secrets = [s.lower() for s in secrets if s]
        self.outputs: list[str] = []

    def __call__(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, "meter", *self.connection, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def ok(self, *args: str) -> str:
        proc = self(*args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args))

    def assert_no_secret_shown(self) -> None:
        for text in self.outputs:
            low = text.lower()
            for secret in self.secrets:
                assert secret not in low


def _env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "XDG_STATE_HOME": str(tmp / "state")}
    for name in ("SMMC_PASSWORD", "SMMC_EK", "SMMC_AK"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def hls_sim() -> Iterator[SimulatorProcess]:
    with simulator_process(["--tcp", "0", "--auth", "hls-gmac", "--time-offset", "40"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One invocation counter store for every run against the same meter, as in the field."""
    return tmp_path_factory.mktemp("cli-state")


@pytest.fixture
def hls(hls_sim: SimulatorProcess, state_dir: Path) -> Iterator[Meter]:
    info = hls_sim.info["meters"][0]
    env = {**_env(state_dir), "SMMC_EK": info["ek"], "SMMC_AK": info["ak"]}
    meter = Meter(["--tcp", f"127.0.0.1:{info['port']}"], env, [info["ek"], info["ak"]])
    yield meter
    meter.assert_no_secret_shown()


def test_get_human_and_json_feed_back_into_set(hls: Meter) -> None:
    out = hls.ok("get", "3/1.0.1.8.0.255/2")
    assert "Register.value" in out and "double-long-unsigned" in out and " Wh" in out
    value = hls.json("get", "71/0.0.17.0.0.255/4")
    assert value["type"] == "double-long-unsigned"
    value["value"] = 4321
    assert hls.json("set", "71/0.0.17.0.0.255/4", json.dumps(value)) == {"result": "success"}
    assert hls.json("get", "71/0.0.17.0.0.255/4")["value"] == 4321


def test_meter_refusals_exit_1_with_reason(hls: Meter) -> None:
    proc = hls("set", "71/0.0.17.0.0.255/4", '{"type": "long-unsigned", "value": 5}')
    assert proc.returncode == 1 and "type-unmatched" in proc.stderr
    proc = hls("get", "3/9.9.9.9.9.9/2")
    assert proc.returncode == 1 and "object-undefined" in proc.stderr
    proc = hls("get", "3/1.0.1.8.0.255/x")
    assert proc.returncode == 2 and "attribute 'x'" in proc.stderr


def test_objects(hls: Meter) -> None:
    objs = hls.json("objects")
    clock = next(o for o in objs if o["obis"] == "0.0.1.0.0.255")
    assert clock["class_id"] == 8 and clock["class"] == "Clock"
    assert "2" in clock["attributes"]
    table = hls.ok("objects")
    assert "Clock (8)" in table and "0.0.1.0.0.255" in table


def test_clock_sync_uses_shift_time_and_reports_before_after(hls: Meter) -> None:
    before = hls.json("clock")
    assert abs(before["deviation_seconds"]) > 5  # the simulator runs 40 s ahead (or we synced)
    report = hls.json("clock", "--sync")
    assert report["sync"].startswith("shift_time")
    assert abs(report["deviation_after_seconds"]) < 2
    out = hls.ok("clock")
    assert "deviation" in out and "meter time" in out


def test_action_shift_time(hls: Meter) -> None:
    out = hls.ok("action", "8/0.0.1.0.0.255/6", '{"type": "long", "value": 0}')
    assert "Clock.shift_time" in out and "success" in out


def test_disconnect_connect_read_back_and_event_log(hls: Meter) -> None:
    state = hls.json("disconnect")
    assert state["control_state"] == "disconnected" and state["output_state"] is False
    state = hls.json("connect")
    assert state["control_state"] in ("connected", "ready for reconnection")
    events = hls.json("events", "--log", "disconnector")
    codes = [row[1] for row in events["rows"]]
    assert 50 in codes  # remote disconnection (IDIS)
    table = hls.ok("events", "--log", "disconnector")
    assert "remote disconnection" in table


def test_limit(hls: Meter) -> None:
    report = hls.json("limit", "--threshold", "7000", "--duration", "30")
    assert report["changed"] == ["threshold_normal", "min_over_threshold_duration"]
    assert report["threshold_normal"] == 7000 and report["min_over_threshold_duration"] == 30
    off = hls.json("limit", "--off")
    assert off["threshold_normal"] == 0xFFFFFFFF
    assert "never trips" in hls.ok("limit")


def test_profile_range_json_csv_and_table(hls: Meter) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=2)
    rng = ["--from", start.isoformat(), "--to", end.isoformat()]
    data = hls.json("profile", *rng)
    assert len(data["rows"]) == 9  # 15-minute periods, both ends included
    first = datetime.fromisoformat(data["rows"][0][0])
    assert first == start
    energy = next(c for c in data["columns"] if c["name"] == "1.0.1.8.0.255")
    assert energy["unit"] == "Wh"
    csv_out = hls.ok("profile", "--csv", *rng)
    lines = csv_out.strip().splitlines()
    assert lines[0].startswith("time,") and "[Wh]" in lines[0] and len(lines) == 10
    assert "9 rows" in hls.ok("profile", *rng)


SAMPLES = Path(__file__).resolve().parents[1] / "firmware-images"
TRUST = ["--trusted-key", str(SAMPLES / "TEST-ONLY-signing-key.pub")]


def signed_image(path: Path, size: int, identifier: str) -> Path:
    """A random image with a manifest signed by the repository's TEST-ONLY key."""
    from smmc_gateway.firmware.manifest import load_private_key, manifest_path, sign

    data = os.urandom(size)
    path.write_bytes(data)
    key = load_private_key(SAMPLES / "TEST-ONLY-signing-key.pem")
    m = sign(data, key, identifier=identifier, version="2.0", model="smmc-sim")
    manifest_path(path).write_text(json.dumps(m.to_json()))
    return path


def test_firmware_push(hls: Meter, tmp_path: Path) -> None:
    image = signed_image(tmp_path / "fw-2.0.bin", 5000, "fw-2.0")
    report = hls.json("firmware", "push", str(image), *TRUST)
    assert report["status"] == "activation successful"
    assert report["blocks_sent"] == report["blocks_total"] and report["identifier"] == "fw-2.0"
    image = signed_image(tmp_path / "fw-2.0b.bin", 5000, "fw-2.0b")
    out = hls.ok("firmware", "push", str(image), *TRUST, "--no-activate")
    assert "verification successful" in out and "activation" not in out.split("status:")[0]


def test_debug_logs_keep_secrets_out(hls: Meter) -> None:
    proc = hls("-vv", "get", "8/0.0.1.0.0.255/2")
    assert proc.returncode == 0
    # stdout stays the result only; the logs go to stderr
    assert "Clock.time" in proc.stdout


def test_wrong_keys_exit_1(hls_sim: SimulatorProcess, state_dir: Path) -> None:
    info = hls_sim.info["meters"][0]
    wrong = "0f" * 16
    meter = Meter(
        ["--tcp", f"127.0.0.1:{info['port']}", "--ek", wrong, "--ak", info["ak"]],
        _env(state_dir),
        [wrong, info["ak"]],
    )
    proc = meter("clock")
    assert proc.returncode == 1
    assert "refused" in proc.stderr or "security" in proc.stderr
    meter.assert_no_secret_shown()


def test_resumable_firmware_push_over_a_connection_that_drops(tmp_path: Path) -> None:
    with simulator_process(["--tcp", "0", "--auth", "none", "--reset-after", "40"]) as sim:
        port = sim.info["meters"][0]["port"]
        meter = Meter(
            ["--tcp", f"127.0.0.1:{port}", "--client", "1", "--timeout", "3"], _env(tmp_path), []
        )
        image = tmp_path / "big.bin"
        image.write_bytes(os.urandom(192 * 60))
        attempts = []
        for _ in range(5):
            proc = meter("--json", "firmware", "push", str(image), "--unsigned")
            attempts.append(proc)
            if proc.returncode == 0:
                break
            assert proc.returncode == 1
            assert "the transfer resumes" in proc.stderr
        assert attempts[-1].returncode == 0, [p.stderr for p in attempts]
        assert len(attempts) > 1  # the connection really dropped mid-transfer
        report = json.loads(attempts[-1].stdout)
        assert report["blocks_already_there"] > 0
        assert report["status"] == "activation successful"


def test_silent_meter_ends_in_a_clear_error_within_the_timeout(tmp_path: Path) -> None:
    with simulator_process(["--tcp", "0", "--auth", "none", "--hang-after", "3"]) as sim:
        port = sim.info["meters"][0]["port"]
        meter = Meter(["--tcp", f"127.0.0.1:{port}", "--timeout", "1.5"], _env(tmp_path), [])
        meter("get", "8/0.0.1.0.0.255/2")
        proc = meter("get", "8/0.0.1.0.0.255/2", timeout=30)
        assert proc.returncode == 1
        assert "did not answer within 1.5 s" in proc.stderr


def test_hdlc_over_tcp_lls(tmp_path: Path) -> None:
    password = "Pw-8d1c-x"
    with simulator_process(
        ["--tcp", "0", "--hdlc", "--auth", "lls", "--password", password]
    ) as sim:
        info = sim.info["meters"][0]
        conn = [
            "--tcp",
            f"127.0.0.1:{info['port']}",
            "--hdlc",
            "--server",
            str(info["hdlc_address"]),
        ]
        meter = Meter(conn, {**_env(tmp_path), "SMMC_PASSWORD": password}, [password])
        assert "Clock.time" in meter.ok("get", "8/0.0.1.0.0.255/2")
        assert meter.json("get", "1/0.0.96.1.0.255/2")["type"] == "octet-string"
        traced = meter("--trace", "get", "3/1.0.1.8.0.255/2")
        assert traced.returncode == 0
        assert "APDU aarq" in traced.stderr and "APDU get-response-normal" in traced.stderr
        assert "calling_authentication_value: ***" in traced.stderr
        assert "APDU" not in traced.stdout  # the trace stays off stdout
        bad = Meter(conn, _env(tmp_path), ["wrong-password-1"])
        proc = bad("--password", "wrong-password-1", "clock")
        assert proc.returncode == 1 and "authentication" in proc.stderr
        meter.assert_no_secret_shown()
        bad.assert_no_secret_shown()


@pytest.mark.slow
def test_optical_pty_9600(tmp_path: Path) -> None:
    device = str(tmp_path / "optical")
    password = "Opt-77-pass"
    with simulator_process(
        [
            "--serial",
            device,
            "--create-pty",
            "--optical",
            "--baud",
            "9600",
            "--auth",
            "lls",
            "--password",
            password,
        ]
    ) as sim:
        assert sim.info["meters"][0]["framing"] == "optical+hdlc"
        meter = Meter(
            ["--optical", device, "--password", password, "--timeout", "5"],
            _env(tmp_path),
            [password],
        )
        out = meter.ok("clock")
        assert "meter time" in out
        assert meter.json("get", "3/1.0.1.8.0.255/2")["type"] == "double-long-unsigned"
        state = meter.json("disconnect")
        assert state["control_state"] == "disconnected"
        image = tmp_path / "fw.bin"
        image.write_bytes(os.urandom(1000))
        pushed = meter.json("firmware", "push", str(image), "--unsigned")
        assert pushed["status"] == "activation successful"
        assert len(meter.json("profile", "--billing")["columns"]) == 5
        meter.assert_no_secret_shown()


def test_clock_sync_sets_the_time_beyond_the_shift_range(tmp_path: Path) -> None:
    with simulator_process(["--tcp", "0", "--auth", "none", "--time-offset", "3600"]) as sim:
        port = sim.info["meters"][0]["port"]
        env = {**_env(tmp_path), "TZ": "Europe/Paris"}
        meter = Meter(["--tcp", f"127.0.0.1:{port}", "--client", "1"], env, [])
        report = meter.json("clock", "--sync")
        assert 3590 < report["deviation_seconds"] < 3610
        assert report["sync"] == "time set"
        assert abs(report["deviation_after_seconds"]) < 2
        events = meter.json("events")
        assert [row[1] for row in events["rows"]][-2:] == [4, 5]  # clock adjusted old/new
        table = meter.ok("events")
        paris = datetime.now(ZoneInfo("Europe/Paris")).strftime("%z")
        assert f"time ({paris})" in table and "clock adjusted (new time)" in table


def test_silent_serial_line_and_silent_optical_head(tmp_path: Path) -> None:
    """Nothing on the other end of the pseudo-terminal: a clear error, exit 1, no hang."""
    with pty_pair() as (_meter_end, client_end):
        serial = Meter(["--serial", client_end, "--timeout", "2"], _env(tmp_path), [])
        proc = serial("clock", timeout=30)
        assert proc.returncode == 1 and "stopped answering" in proc.stderr
        optical = Meter(["--optical", client_end, "--timeout", "2"], _env(tmp_path), [])
        proc = optical("clock", timeout=30)
        assert proc.returncode == 1 and "identification" in proc.stderr


def test_get_with_selective_access(hls: Meter) -> None:
    two = hls.json("get", "7/1.0.99.1.0.255/2", "--entries", "1", "2")
    assert two["type"] == "array" and len(two["value"]) == 2
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    rng = ["--from", (end - timedelta(minutes=30)).isoformat(), "--to", end.isoformat()]
    three = hls.json("get", "7/1.0.99.1.0.255/2", *rng)
    assert len(three["value"]) == 3
    assert three["value"][0]["value"][0]["datetime"].startswith(
        (end - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )
    table = hls.ok("get", "7/1.0.99.1.0.255/2", *rng)
    assert "Profile generic.buffer" in table and "1.0.1.8.0.255" in table


def test_profile_default_is_the_last_day_and_events_by_range(hls: Meter) -> None:
    rows = hls.json("profile")["rows"]
    assert 94 <= len(rows) <= 97  # one day of 15-minute periods
    hls.ok("disconnect")
    hls.ok("connect")
    since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    until = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    recent = hls.json("events", "--log", "disconnector", "--from", since, "--to", until)["rows"]
    old = hls.json(
        "events", "--log", "disconnector", "--from", "2020-01-01T00:00", "--to", "2020-01-02T00:00"
    )["rows"]
    assert 50 in [r[1] for r in recent] and old == []


@pytest.mark.slow
def test_short_names_through_the_optical_port_on_a_pty(tmp_path: Path) -> None:
    """Issue 10: an SN session over a pty (mode E sign-on, then HDLC at 9600 baud)."""
    device = str(tmp_path / "optical-sn")
    password = "Opt-sn-pass"
    args = [
        "--serial",
        device,
        "--create-pty",
        "--optical",
        "--baud",
        "9600",
        "--auth",
        "lls",
        "--password",
        password,
        "--referencing",
        "sn",
    ]
    with simulator_process(args):
        meter = Meter(
            ["--optical", device, "--password", password, "--timeout", "5", "--referencing", "sn"],
            _env(tmp_path),
            [password],
        )
        assert meter.json("get", "3/1.0.1.8.0.255/2")["type"] == "double-long-unsigned"
        assert "meter time" in meter.ok("clock")
        auto = Meter(
            ["--optical", device, "--password", password, "--timeout", "5"],
            _env(tmp_path),
            [password],
        )  # default auto: LN refused, then SN
        assert auto.json("get", "3/1.0.1.8.0.255/2")["type"] == "double-long-unsigned"
        meter.assert_no_secret_shown()
