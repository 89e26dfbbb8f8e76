"""The systemd unit: `systemd-analyze verify` is silent, the offline security exposure is
<= 2.0, the unit keeps the settings the daemon relies on (open-files, memory and IP
address limits among them), and MemoryDenyWriteExecute= does not break the Python stack
(checked under the kernel's own MDWE prctl)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "smmc-gateway.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable stub (verify checks it exists)."""
    stub = tmp_path / "smmc-gateway"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = UNIT.read_text().replace("/usr/bin/smmc-gateway", str(stub))
    path = tmp_path / "smmc-gateway.service"
    path.write_text(text)
    return path


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@needs_analyze
def test_verify_is_silent(tmp_path: Path) -> None:
    assert ANALYZE is not None
    r = subprocess.run(
        [ANALYZE, "verify", str(unit_copy(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The verify check above can fail: a misspelt directive is reported."""
    assert ANALYZE is not None
    path = unit_copy(tmp_path)
    path.write_text(path.read_text().replace("ProtectHome=yes", "ProtectHomme=yes"))
    r = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert "ProtectHomme" in r.stdout + r.stderr


@needs_analyze
def test_security_exposure_at_most_2(tmp_path: Path) -> None:
    assert ANALYZE is not None
    r = subprocess.run(
        [ANALYZE, "security", "--offline=true", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout)
    assert m, r.stdout + r.stderr
    exposure = float(m.group(1))
    print(f"systemd-analyze security exposure: {exposure}")
    assert exposure <= 2.0


def test_unit_settings() -> None:
    s = settings()
    assert s["Type"] == ["notify"]
    assert s["ExecStart"][0].endswith("run --config /etc/smmc-gateway/gateway.toml")
    assert s["Restart"] == ["on-failure"] and "WatchdogSec" in s and "TimeoutStopSec" in s
    assert s["DynamicUser"] == ["yes"] and s["StateDirectory"] == ["smmc-gateway"]
    assert s["DevicePolicy"] == ["closed"]
    assert sorted(s["DeviceAllow"]) == ["char-ttyACM rw", "char-ttyS rw", "char-ttyUSB rw"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["MemoryDenyWriteExecute"] == ["yes"] and s["UMask"] == ["0077"]
    assert "SupplementaryGroups" in s and "StartLimitBurst" in s


def size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def test_open_files_cover_the_default_sessions_and_push_connections() -> None:
    from smmc_gateway.headend.pushes import NOFILE_MARGIN

    (limit,) = settings()["LimitNOFILE"]
    # defaults: max_tcp_sessions 64, push.max_connections 256; headroom for 20x that
    assert int(limit) >= 20 * (64 + 256) + NOFILE_MARGIN, limit


def test_memory_is_capped_with_a_high_mark_below_the_max() -> None:
    s = settings()
    (high,), (most,) = s["MemoryHigh"], s["MemoryMax"]
    assert 256 << 20 <= size(high) < size(most) <= 4 << 30, (high, most)


def test_ip_addresses_are_denied_but_loopback_and_private_ranges() -> None:
    s = settings()
    assert s["IPAddressDeny"] == ["any"]
    allowed = " ".join(s["IPAddressAllow"]).split()
    assert {"localhost", "link-local"} <= set(allowed)
    nets = [ipaddress.ip_network(a) for a in allowed if a not in ("localhost", "link-local")]
    for needed in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"):
        assert ipaddress.ip_network(needed) in nets, needed
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    assert all(n.is_private or (n.version == 4 and n.subnet_of(cgnat)) for n in nets), nets
    assert "drop-in" in UNIT.read_text() and "IPAddressAllow=203.0.113.10" in UNIT.read_text()


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("no-mdwe"); sys.exit(0)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        pass
    else:
        print("mdwe-not-enforced"); sys.exit(1)
    import asyncio, json, sqlite3, ssl, io
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives import hashes, hmac
    key = bytes(range(16))
    ct = AESGCM(key).encrypt(bytes(12), b"meter data", b"aad")
    assert AESGCM(key).decrypt(bytes(12), ct, b"aad") == b"meter data"
    ssl.create_default_context()
    sqlite3.connect(":memory:").execute("create table t(x)")
    import smmc_gateway._core
    from smmc_gateway.ops.logging import configure_logging, get_logger
    from smmc_gateway.ops.metrics import GatewayMetrics
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    get_logger().info("probe_ok", password="x")
    assert json.loads(out.getvalue())["event"] == "probe_ok"
    GatewayMetrics().exposition()
    from smmc_gateway import runtime
    async def main():
        await asyncio.sleep(0)
        return runtime.running_loop_name()
    assert runtime.run(main()) == runtime.loop_factory()[0]  # the daemon's loop (uvloop)
    print("ok")
    """
)


def test_memory_deny_write_execute_keeps_python_working() -> None:
    r = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=120
    )
    if r.stdout.strip() == "no-mdwe":
        pytest.skip("kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
