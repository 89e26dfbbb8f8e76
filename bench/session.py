"""Client session benchmarks (a script printing a table, not a test).

1. A 9600 baud serial meter (the simulator in its own process on a socat
   pseudo-terminal, emulating the line speed): one day of load profile (96
   rows, by range) plus the four energy registers, association to release.
   Elapsed time against the theoretical time on the wire, bytes × 10 bits /
   9600 (target <= 1.25×).
2. A TCP meter (simulator in its own process): CPU time (time.process_time,
   this process only) per complete read — HLS-GMAC association, clock, 4
   registers, 96-row profile, release (target <= 3 ms).

    .venv/bin/python bench/session.py [--reads N] [--serial-reads N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.serial import SerialHdlcTransport
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings, Transport, WrapperTransport

ENERGY = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]
PROFILE = "1.0.99.1.0.255"
BAUD = 9600


@contextlib.contextmanager
def simulator(*args: str) -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, "-m", "smmc_gateway.simulator", *args, "--history-days", "2", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(
                f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        yield json.loads(line)["meters"][0]
    finally:
        proc.terminate()
        proc.wait(10)


async def complete_read(tr: Transport, settings: SessionSettings) -> int:
    """Association, clock, 4 registers, one day of profile, release; returns rows."""
    async with ClientSession(tr, settings) as s:
        await s.get_raw(8, "0.0.1.0.0.255", 2)
        await s.get_many(ENERGY)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        end -= timedelta(minutes=end.minute % 15)
        start = end - timedelta(days=1) + timedelta(minutes=15)
        rows = await s.read_profile(PROFILE, start=start, end=end, capture_period=900)
    return len(rows)


def hls(meter: dict[str, Any], store: InvocationCounterStore) -> Security:
    return Security.hls_gmac(
        system_title=b"SMMCBNCH",
        ek=bytes.fromhex(meter["ek"]),
        ak=bytes.fromhex(meter["ak"]),
        ic_store=store,
    )


async def bench_serial(reads: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        device = str(Path(tmp) / "client")
        args = ["--serial", device, "--create-pty", "--baud", str(BAUD), "--auth", "hls-gmac"]
        with simulator(*args) as meter:
            store = InvocationCounterStore(":memory:")
            ratios, elapsed, wire = [], [], []
            rows = retransmissions = 0
            # The first read is a warm-up: the simulator may print its listing
            # before it reads the pty, so the first SNRM can be lost.
            for attempt in range(reads + 1):
                hdlc = HdlcSettings(client_address=1, server_lower=meter["hdlc_address"])
                tr = SerialHdlcTransport(device, hdlc, baudrate=BAUD)
                settings = SessionSettings(client_sap=1, security=hls(meter, store))
                t0 = time.perf_counter()
                rows = await complete_read(tr, settings)
                took = time.perf_counter() - t0
                on_wire = (tr.counters.bytes_sent + tr.counters.bytes_received) * 10 / BAUD
                if attempt == 0:
                    continue
                elapsed.append(took)
                wire.append(on_wire)
                ratios.append(took / on_wire)
                retransmissions += tr.counters.retransmissions
    return [
        ("serial 9600: rows read", f"{rows}"),
        ("serial 9600: bytes on the wire", f"{wire[-1] * BAUD / 10:.0f}"),
        ("serial 9600: theoretical wire time", f"{statistics.median(wire):.2f} s"),
        ("serial 9600: elapsed (median)", f"{statistics.median(elapsed):.2f} s"),
        ("serial 9600: elapsed / wire (target <= 1.25)", f"{statistics.median(ratios):.3f}"),
        ("serial 9600: HDLC retransmissions", f"{retransmissions}"),
    ]


async def bench_tcp(reads: int) -> list[tuple[str, str]]:
    with simulator("--tcp", "0", "--auth", "hls-gmac") as meter:
        store = InvocationCounterStore(":memory:")
        settings = SessionSettings(client_sap=1, security=hls(meter, store))
        for _ in range(5):  # warm-up
            await complete_read(
                WrapperTransport.tcp("127.0.0.1", meter["port"], client_sap=1), settings
            )
        cpu, wall = [], []
        rows = 0
        for _ in range(reads):
            tr = WrapperTransport.tcp("127.0.0.1", meter["port"], client_sap=1)
            c0, w0 = time.process_time(), time.perf_counter()
            rows = await complete_read(tr, settings)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    return [
        ("tcp hls-gmac: rows per read", f"{rows}"),
        ("tcp hls-gmac: reads", f"{reads}"),
        (
            "tcp hls-gmac: CPU per read, median (target <= 3 ms)",
            f"{statistics.median(cpu) * 1e3:.2f} ms",
        ),
        ("tcp hls-gmac: CPU per read, p90", f"{sorted(cpu)[int(len(cpu) * 0.9)] * 1e3:.2f} ms"),
        ("tcp hls-gmac: wall per read, median", f"{statistics.median(wall) * 1e3:.2f} ms"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200, help="TCP reads to time")
    parser.add_argument("--serial-reads", type=int, default=3, help="serial reads to time")
    args = parser.parse_args()
    rows = asyncio.run(bench_tcp(args.reads))
    rows += asyncio.run(bench_serial(args.serial_reads))
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 12}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
