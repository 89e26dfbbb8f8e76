"""Client session benchmark: CPU per complete read, ours against dlms-cosem, round trips.

    .venv/bin/python bench/session.py [--reads N] [--serial-reads N] [--json] [--smoke]

One simulated meter (``python -m smmc_gateway.simulator``, its own process, TCP
wrapper, HLS-GMAC) serves both clients in the same run:

1. A complete read: HLS-GMAC association, the four energy registers, one day of
   load profile by range (96 rows), release; our client asks for the registers and
   the profile in one GET with-list (as a scheduled collection does), dlms-cosem,
   which has no with-list, in five GETs. CPU (``time.process_time``: this
   process, user + system) per read for our ClientSession and for the dlms-cosem
   client (blocking, run in this process; its logging filtered to warnings as a
   production user would), interleaved in rounds so load from elsewhere on the
   machine hits both alike. Median and 10th percentile, user and system time.
   Target: <= 0.5 ms per read and >= 8x less than dlms-cosem.
2. The transport floor on this machine: a bare asyncio TCP client doing the same
   connect, round trips of the same sizes and close against an echo server (no
   DLMS at all), answering at once and answering as late as the simulator did
   (a process that sleeps until its answer pays for waking up): what the kernel
   and the event loop cost before any protocol. "above the floor" is the rest.
3. Round trips (request/response pairs) per operation: a complete read, and a
   remote disconnect with its read-back (use case 6; target <= 5 with the association).
4. With ``--serial-reads`` > 0: a 9600 baud serial meter (simulator on a
   pseudo-terminal emulating the line speed): elapsed against the theoretical
   wire time, bytes x 10 bits / 9600 (target <= 1.25).

``--json`` prints one object of named figures; ``--smoke`` is a quick run (what
``dev.sh test`` does). A read that fails ends the bench: the error is printed and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

import structlog  # noqa: E402
from smmc_gateway import _core, runtime  # noqa: E402
from smmc_gateway.dlms.errors import SessionError  # noqa: E402
from smmc_gateway.dlms.ic_store import InvocationCounterStore  # noqa: E402
from smmc_gateway.dlms.serial import SerialHdlcTransport  # noqa: E402
from smmc_gateway.dlms.session import (  # noqa: E402
    ClientSession,
    RangeAccess,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import (  # noqa: E402
    HdlcSettings,
    Transport,
    WrapperTransport,
    tcp_connector,
)
from smmc_gateway.headend.sessions import BatchedCounterStore  # noqa: E402
from smmc_gateway.usecases.connect import operate  # noqa: E402

ENERGY = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]
PROFILE = "1.0.99.1.0.255"
ROWS = 96
BAUD = 9600
ECHO_SERVER = """
import asyncio, sys
DELAY = float(sys.argv[1])
async def echo(r, w):
    while data := await r.read(65536):
        if DELAY:
            await asyncio.sleep(DELAY)  # a meter takes this long to answer
        w.write(data)
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class BenchError(RuntimeError):
    """The bench could not measure what it should (a wrong answer, a dead simulator)."""


@dataclass
class Cpu:
    """Per-read CPU samples of one client and its user/system split."""

    samples: list[float]
    user: float = 0.0
    system: float = 0.0

    def figures(self, prefix: str) -> dict[str, float]:
        n = len(self.samples)
        ordered = sorted(self.samples)
        return {
            f"{prefix}cpu_ms_per_read_median": statistics.median(ordered) * 1e3,
            f"{prefix}cpu_ms_per_read_p10": ordered[n // 10] * 1e3,
            f"{prefix}user_ms_per_read": self.user / n * 1e3,
            f"{prefix}system_ms_per_read": self.system / n * 1e3,
        }


def measured(cpu: Cpu, fn: Callable[[], Any]) -> Any:
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    out = fn()
    cpu.samples.append(time.process_time() - c0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu.user += r1.ru_utime - r0.ru_utime
    cpu.system += r1.ru_stime - r0.ru_stime
    return out


@contextlib.contextmanager
def simulator(*args: str) -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, "-m", "smmc_gateway.simulator", *args, "--history-days", "2", "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise BenchError(f"the simulator did not start: {err.strip()}")
        meters: list[dict[str, Any]] = json.loads(line)["meters"]
        yield meters[0]
    finally:
        proc.terminate()
        proc.wait(10)


def day_range() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % 15)
    return end - timedelta(days=1) + timedelta(minutes=15), end


def check_rows(rows: int, who: str) -> None:
    if rows != ROWS:
        raise BenchError(f"{who}: {rows} profile rows read, expected {ROWS}")


async def our_read(tr: Transport, settings: SessionSettings) -> tuple[int, int]:
    """Association, the 4 registers and one day of profile by range (one GET
    with-list, as a scheduled collection asks), release: (rows, requests sent)."""
    start, end = day_range()
    async with ClientSession(tr, settings) as s:
        *registers, profile = await s.get_many(
            [*ENERGY, (7, PROFILE, 2)], access=[None] * 4 + [RangeAccess(start=start, end=end)]
        )
        for value in (*registers, profile):
            if not isinstance(value, bytes):
                raise BenchError(f"read failed: {value}")
        assert isinstance(profile, bytes)
        rows = _core.decode_profile_buffer(profile, 900)
    return len(rows), tr.counters.apdus_sent


class DlmsCosem:
    """The same complete read with the dlms-cosem client (test-only peer, blocking)."""

    def __init__(self, meter: dict[str, Any]) -> None:
        try:
            from dlms_cosem import cosem, enumerations, security, utils
            from dlms_cosem.client import DlmsClient
            from dlms_cosem.cosem.capture_object import CaptureObject
            from dlms_cosem.cosem.selective_access import RangeDescriptor
            from dlms_cosem.io import BlockingTcpIO, TcpTransport
        except ImportError as exc:
            raise BenchError(
                f"dlms-cosem is needed for the comparison (pip install -e '.[dev]'): {exc}"
            ) from exc
        self.m = meter
        self.counter = 1
        ic = enumerations.CosemInterface

        def obis(text: str) -> Any:
            return cosem.Obis(*(int(p) for p in text.split(".")))

        self.registers = [cosem.CosemAttribute(ic.REGISTER, obis(ln), 2) for _, ln, _ in ENERGY]
        self.profile = cosem.CosemAttribute(ic.PROFILE_GENERIC, obis(PROFILE), 2)
        self.clock = CaptureObject(cosem.CosemAttribute(ic.CLOCK, obis("0.0.1.0.0.255"), 2))
        self._mods = (security, utils, DlmsClient, RangeDescriptor, BlockingTcpIO, TcpTransport)

    def read(self) -> int:
        security, utils, client_class, range_descriptor, io_class, transport_class = self._mods
        io = io_class("127.0.0.1", self.m["port"], timeout=10)
        transport = transport_class(
            client_logical_address=1, server_logical_address=1, io=io, timeout=10
        )
        client = client_class(
            transport=transport,
            authentication=security.HighLevelSecurityGmacAuthentication(challenge_length=16),
            encryption_key=bytes.fromhex(self.m["ek"]),
            authentication_key=bytes.fromhex(self.m["ak"]),
            client_system_title=b"DLMSCSM1",
            client_initial_invocation_counter=self.counter,
        )
        start, end = day_range()
        with client.session() as s:
            for attribute in self.registers:
                s.get(attribute)
            raw = s.get(self.profile, access_descriptor=range_descriptor(self.clock, start, end))
            rows = len(utils.parse_as_dlms_data(raw))
        self.counter = int(client.client_invocation_counter) + 1
        return rows


@contextlib.contextmanager
def echo_server(delay: float) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(delay)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


async def tcp_floor(port: int, reads: int, sizes: list[tuple[int, int]]) -> Cpu:
    """Connect, the same round trips (request, answer sizes) and close with bare
    asyncio streams against an echo server: no DLMS."""

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for sent, answered in sizes:
            writer.write(bytes(max(sent, answered)))
            await reader.readexactly(max(sent, answered))
        writer.close()
        await writer.wait_closed()

    for _ in range(10):
        await one()
    cpu = Cpu([])
    for _ in range(reads):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
        await one()
        cpu.samples.append(time.process_time() - c0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu.user += r1.ru_utime - r0.ru_utime
        cpu.system += r1.ru_stime - r0.ru_stime
    return cpu


class Sizes(WrapperTransport):
    """A wrapper transport that notes the size of every request and answer."""

    def __init__(self, port: int) -> None:
        super().__init__(tcp_connector("127.0.0.1", port), client_sap=1, description="probe")
        self.seen: list[int] = []

    async def send_apdu(self, apdu: bytes) -> None:
        self.seen.append(len(apdu) + 8)
        await super().send_apdu(apdu)

    async def receive_apdu(self, timeout: float) -> bytes:  # noqa: ASYNC109 (the Transport API)
        apdu = await super().receive_apdu(timeout)
        self.seen.append(len(apdu) + 8)
        return apdu


async def bench_reads(reads: int, rounds: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with simulator("--tcp", "0", "--auth", "hls-gmac") as meter:
        # the counter store the daemon uses (incoming counters persisted in batches)
        store = BatchedCounterStore(":memory:")
        settings = SessionSettings(
            client_sap=1,
            security=Security.hls_gmac(
                system_title=b"SMMCBNCH",
                ek=bytes.fromhex(meter["ek"]),
                ak=bytes.fromhex(meter["ak"]),
                ic_store=store,
            ),
        )
        port = meter["port"]
        theirs = DlmsCosem(meter)
        for _ in range(5):  # warm-up, both
            await our_read(WrapperTransport.tcp("127.0.0.1", port, client_sap=1), settings)
            check_rows(theirs.read(), "dlms-cosem")
        probe = Sizes(port)
        rows, sent = await our_read(probe, settings)
        check_rows(rows, "smmc-gateway")
        ours, cosem, wall = Cpu([]), Cpu([]), []
        per_round = max(1, reads // rounds)
        for _ in range(rounds):
            for _ in range(per_round):
                tr = WrapperTransport.tcp("127.0.0.1", port, client_sap=1)
                r0, c0, w0 = (
                    resource.getrusage(resource.RUSAGE_SELF),
                    time.process_time(),
                    time.perf_counter(),
                )
                rows, _ = await our_read(tr, settings)
                ours.samples.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                ours.user += r1.ru_utime - r0.ru_utime
                ours.system += r1.ru_stime - r0.ru_stime
                check_rows(rows, "smmc-gateway")
            for _ in range(per_round):
                check_rows(measured(cosem, theirs.read), "dlms-cosem")
        sizes = list(zip(probe.seen[::2], probe.seen[1::2], strict=False))
        # The floor with an instant echo, and with each answer as late as the
        # simulator's (a process that sleeps until the answer pays for waking up).
        with echo_server(0.0) as echo:
            instant = await tcp_floor(echo, per_round * rounds, sizes)
        latency = statistics.median(wall) / (len(sizes) + 1)
        with echo_server(latency) as echo:
            floor = await tcp_floor(echo, per_round * rounds, sizes)
        # the disconnect with its read-back (use case 6), counted on the wire
        tr = WrapperTransport.tcp("127.0.0.1", port, client_sap=1)
        async with ClientSession(tr, settings) as s:
            result = await operate(s, meter["meter_id"], "disconnect")
            disconnect_pairs = tr.counters.apdus_sent
        if not result.confirmed:
            raise BenchError("the disconnect was not confirmed by its read-back")
        out.update(reads=float(len(ours.samples)), rows_per_read=float(ROWS))
        out.update(ours.figures(""))
        out["wall_ms_per_read_median"] = statistics.median(wall) * 1e3
        out.update(cosem.figures("dlms_cosem_"))
        out["dlms_cosem_over_ours_cpu"] = (
            out["dlms_cosem_cpu_ms_per_read_median"] / out["cpu_ms_per_read_median"]
        )
        out.update(floor.figures("tcp_floor_"))
        out["tcp_floor_instant_cpu_ms_per_read_median"] = statistics.median(instant.samples) * 1e3
        out["tcp_floor_answer_latency_ms"] = latency * 1e3
        out["above_floor_cpu_ms_per_read"] = (
            out["cpu_ms_per_read_median"] - out["tcp_floor_cpu_ms_per_read_median"]
        )
        out["dlms_cosem_above_floor_cpu_ms_per_read"] = (
            out["dlms_cosem_cpu_ms_per_read_median"] - out["tcp_floor_cpu_ms_per_read_median"]
        )
        out["round_trips_per_read"] = float(sent)
        out["round_trips_disconnect_with_read_back"] = float(disconnect_pairs)
        store.close()
    return out


async def bench_serial(reads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        device = str(Path(tmp) / "client")
        args = ["--serial", device, "--create-pty", "--baud", str(BAUD), "--auth", "hls-gmac"]
        with simulator(*args) as meter:
            store = InvocationCounterStore(":memory:")
            ratios, elapsed, wire = [], [], []
            retransmissions = 0
            # The first read is a warm-up: the simulator may print its listing
            # before it reads the pty, so the first SNRM can be lost.
            for attempt in range(reads + 1):
                hdlc = HdlcSettings(client_address=1, server_lower=meter["hdlc_address"])
                tr = SerialHdlcTransport(device, hdlc, baudrate=BAUD)
                settings = SessionSettings(
                    client_sap=1,
                    security=Security.hls_gmac(
                        system_title=b"SMMCBNCH",
                        ek=bytes.fromhex(meter["ek"]),
                        ak=bytes.fromhex(meter["ak"]),
                        ic_store=store,
                    ),
                )
                t0 = time.perf_counter()
                rows, _ = await our_read(tr, settings)
                took = time.perf_counter() - t0
                check_rows(rows, "serial")
                on_wire = (tr.counters.bytes_sent + tr.counters.bytes_received) * 10 / BAUD
                if attempt == 0:
                    continue
                elapsed.append(took)
                wire.append(on_wire)
                ratios.append(took / on_wire)
                retransmissions += tr.counters.retransmissions
    return {
        "serial_reads": float(reads),
        "serial_wire_s": statistics.median(wire),
        "serial_elapsed_s": statistics.median(elapsed),
        "serial_elapsed_over_wire": statistics.median(ratios),
        "serial_retransmissions": float(retransmissions),
    }


TARGETS = (
    ("cpu_ms_per_read_median", "CPU per complete read, ours (target <= 0.5)", "ms", "<= 0.5"),
    ("dlms_cosem_cpu_ms_per_read_median", "CPU per complete read, dlms-cosem", "ms", ""),
    ("dlms_cosem_over_ours_cpu", "dlms-cosem CPU / ours (target >= 8)", "x", ">= 8"),
    ("cpu_ms_per_read_p10", "CPU per read, ours, 10th percentile", "ms", ""),
    ("user_ms_per_read", "  of which user", "ms", ""),
    ("system_ms_per_read", "  of which system", "ms", ""),
    ("dlms_cosem_user_ms_per_read", "dlms-cosem user", "ms", ""),
    ("tcp_floor_instant_cpu_ms_per_read_median", "TCP floor, instant echo (no DLMS)", "ms", ""),
    ("tcp_floor_cpu_ms_per_read_median", "TCP floor, answers as late as the meter's", "ms", ""),
    ("above_floor_cpu_ms_per_read", "ours above the floor", "ms", ""),
    ("dlms_cosem_above_floor_cpu_ms_per_read", "dlms-cosem above the floor", "ms", ""),
    ("wall_ms_per_read_median", "wall per read, ours", "ms", ""),
    ("round_trips_per_read", "request/response pairs per complete read", "", ""),
    (
        "round_trips_disconnect_with_read_back",
        "pairs per disconnect with read-back",
        "",
        "<= 5 (+ release)",
    ),
    ("serial_elapsed_over_wire", "serial 9600: elapsed / wire (target <= 1.25)", "", "<= 1.25"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200, help="complete reads per client")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--serial-reads", type=int, default=0, help="serial reads to time")
    parser.add_argument("--json", action="store_true", help="one JSON object of figures")
    parser.add_argument("--smoke", action="store_true", help="a quick run (dev.sh test)")
    args = parser.parse_args()
    if args.smoke:
        args.reads, args.rounds, args.serial_reads = 20, 2, 0
    # dlms-cosem logs every APDU through structlog: at warning, as in production
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        loop, _ = runtime.loop_factory()  # $SMMC_EVENT_LOOP, as the daemon chooses
        figures: dict[str, float | str] = {"event_loop": loop}
        figures.update(runtime.run(bench_reads(args.reads, args.rounds)))
        if args.serial_reads > 0:
            figures.update(runtime.run(bench_serial(args.serial_reads)))
    except (BenchError, SessionError, _core.DlmsError, OSError, ValueError) as exc:
        print(f"bench/session.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    width = max(len(label) for _, label, _, _ in TARGETS)
    print(f"{'measure':<{width}}  {'value':>10}   (event loop: {figures['event_loop']})")
    for key, label, unit, _ in TARGETS:
        value = figures.get(key)
        if isinstance(value, float):
            print(f"{label:<{width}}  {value:>10.3f} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
