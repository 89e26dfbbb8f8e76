"""Fleet benchmark: how much fleet one gateway process carries.

    .venv/bin/python bench/fleet.py [--meters 1000] [--config-meters 10000] [--inserts 20000]
                                    [--sessions 64] [--json] [--smoke]

1. The simulator serves ``--meters`` TCP meters (HLS-GMAC, wrapper) in its own
   process (``python -m smmc_gateway.simulator``).
2. The gateway side runs here, as the daemon builds it (fleet state, scheduler with
   ``max_tcp_sessions`` gates, HeadEnd use cases, the uplink's durable outbox as the
   publisher, without a broker): every meter gets one complete scheduled read
   (association with HLS-GMAC, 4 h of 15-minute load profile by range ->
   IntervalBlocks JSON and the four registers in one GET with-list, release),
   results stored durably in the outbox. Reported: complete reads per second (wall),
   gateway CPU per read (this process: user + sys, all threads incl. SQLite), the
   simulator's CPU per read (its process), failures.
3. Resident memory per configured meter: RSS growth when ``--config-meters`` meters
   are loaded from CSV, their states loaded and scheduled (no sessions open).
4. Outbox durable inserts per second: ``--inserts`` single-message publishes from 256
   concurrent tasks, each returning only after its fsynced commit (group commit).

Targets on a 2-core machine: >= 500 complete reads/s with 0 failures, gateway and
simulator CPU <= 1 ms per read each, <= 50 KiB per configured meter, >= 5,000
inserts/s. ``--json`` prints one object of named figures; ``--smoke`` is a small run
(what ``dev.sh test`` does). A read that fails is counted and its first error printed;
any failure, or an error of the bench itself, makes the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

from smmc_gateway import runtime  # noqa: E402
from smmc_gateway.dlms.errors import SessionError  # noqa: E402
from smmc_gateway.headend.fleet import Fleet  # noqa: E402
from smmc_gateway.headend.labconfig import write_lab_config  # noqa: E402
from smmc_gateway.headend.scheduler import Scheduler  # noqa: E402
from smmc_gateway.headend.service import HeadEnd  # noqa: E402
from smmc_gateway.headend.sessions import BatchedCounterStore, SessionFactory  # noqa: E402
from smmc_gateway.ops.config import ConfigError, load_config  # noqa: E402
from smmc_gateway.uplink.client import Uplink  # noqa: E402
from smmc_gateway.uplink.config import UplinkConfig  # noqa: E402
from smmc_gateway.uplink.envelope import Draft, MessageClass  # noqa: E402
from smmc_gateway.uplink.outbox import Outbox  # noqa: E402
from smmc_gateway.uplink.store import Store  # noqa: E402
from smmc_gateway.usecases.clock import FixedTimeSource  # noqa: E402


class BenchError(RuntimeError):
    """The bench could not measure what it should."""


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Reads:
    """Outcomes of the reads: successes, failures by error type, the first error."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed: Counter[str] = Counter()
        self.first_error = ""

    async def one(self, head: HeadEnd, meter: str) -> None:
        try:
            await head.collect(meter)
        except SessionError as exc:  # what a meter read can end with; anything else is a bug
            self.failed[type(exc).__name__] += 1
            self.first_error = self.first_error or f"{meter}: {type(exc).__name__}: {exc}"
            return
        self.ok += 1


def start_simulator(n: int) -> tuple[subprocess.Popen[str], list[dict[str, Any]]]:
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smmc_gateway.simulator",
            "--tcp",
            "0",
            "--meters",
            str(n),
            "--json",
            "--push",
            "127.0.0.1:9",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert sim.stdout is not None
    line = sim.stdout.readline()
    if not line:
        err = sim.stderr.read() if sim.stderr else ""
        raise BenchError(f"the simulator did not start: {err.strip()}")
    listing: list[dict[str, Any]] = json.loads(line)["meters"]
    return sim, listing


async def bench_reads(
    sim: subprocess.Popen[str], listing: list[dict[str, Any]], tmp: Path, sessions: int
) -> dict[str, Any]:
    cfg = load_config(
        write_lab_config(
            tmp / "reads",
            listing,
            broker=("127.0.0.1", 1),
            max_tcp_sessions=sessions,
            response_timeout="20s",
        )
    )
    state = tmp / "reads" / "state"
    ic = BatchedCounterStore(str(state / "ic.sqlite"))
    fleet = await Fleet.open(cfg.meters, state / "fleet.sqlite")
    uplink = Uplink(UplinkConfig(gateway_id=cfg.gateway.id, db_path=state / "outbox.sqlite"))
    sched = Scheduler(
        fleet,
        SessionFactory(
            system_title=cfg.gateway.client_system_title, ic_store=ic, response_timeout=20
        ),
        max_tcp_sessions=sessions,
    )
    head = HeadEnd(
        fleet, sched, uplink, cfg.models, time_source=FixedTimeSource(), first_read_s=4 * 3600
    )
    ids = fleet.ids()
    runtime.settle_heap()  # as the daemon does once started
    try:
        warm = Reads()
        await warm.one(head, ids[0])  # caches the profile layout and scalers of the model
        t0 = time.perf_counter()
        cold = Reads()
        await asyncio.gather(*(cold.one(head, m) for m in ids[1:]))  # first round after a start
        cold_wall = time.perf_counter() - t0
        reads = Reads()
        c0, s0, t0 = cpu_self(), cpu_of(sim.pid), time.perf_counter()
        await asyncio.gather(*(reads.one(head, m) for m in ids[1:]))  # steady state
        wall = time.perf_counter() - t0
        cpu, scpu = cpu_self() - c0, cpu_of(sim.pid) - s0
        rows = (await uplink.outbox.backlog())[MessageClass.TELEMETRY].depth
    finally:
        await sched.stop(1)
        await fleet.close()
        await uplink.store.close()
        ic.close()
    failed = sum(reads.failed.values()) + sum(cold.failed.values()) + sum(warm.failed.values())
    done = max(1, reads.ok)
    return {
        "reads": len(ids) - 1,
        "ok": reads.ok,
        "failed": failed,
        "failures_by_type": dict(reads.failed + cold.failed + warm.failed),
        "first_error": warm.first_error or cold.first_error or reads.first_error,
        "wall_s": wall,
        "reads_per_s": reads.ok / wall,
        "cpu_ms_per_read": cpu / done * 1e3,
        "sim_cpu_ms_per_read": scpu / done * 1e3,
        "outbox_rows": rows,
        "max_tcp_sessions": sessions,
        "event_loop": runtime.running_loop_name(),
        "cold_reads_per_s": cold.ok / cold_wall,
    }


async def bench_memory(n: int, tmp: Path) -> dict[str, float]:
    listing = [
        {
            "meter_id": f"mem-{i:06d}",
            "port": 10000 + i % 50000,
            "ek": "00112233445566778899aabbccddeeff",
            "ak": "00112233445566778899aabbccddeeff",
            "auth": "hls-gmac",
        }
        for i in range(n)
    ]
    path = write_lab_config(tmp / "mem", listing, broker=("127.0.0.1", 1))
    before = rss_bytes()
    cfg = load_config(path)
    fleet = await Fleet.open(cfg.meters, tmp / "mem" / "state" / "fleet.sqlite")
    sched = Scheduler(fleet, SessionFactory())

    async def job(_m: str) -> None:
        return None

    sched.every("collect", 4 * 3600, job, jitter_s=600, last_success=lambda _m: time.time())
    after = rss_bytes()
    await sched.stop(1)
    await fleet.close()
    return {
        "configured": n,
        "rss_growth_mib": (after - before) / 2**20,
        "kib_per_meter": (after - before) / n / 1024,
    }


async def bench_inserts(n: int, tmp: Path, concurrency: int = 256) -> dict[str, float]:
    store = Store(tmp / "ins.sqlite")
    outbox = Outbox.open(store, "gw-bench")
    payload = json.dumps({"MeterReading": [{"Meter": {"mRID": "m"}, "Readings": []}]}).encode()
    draft = Draft(
        MessageClass.TELEMETRY,
        "smmc/v1/gw-bench/meter/m/readings",
        "created",
        "MeterReadings",
        payload,
    )
    queue = iter(range(n))

    async def worker() -> None:
        for _ in queue:
            await outbox.add(draft)

    commits0 = store.commits
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    commits = store.commits - commits0
    await store.close()
    return {
        "inserts": n,
        "inserts_per_s": n / wall,
        "fsynced_commits": commits,
        "per_commit": n / max(1, commits),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=64, help="max_tcp_sessions")
    ap.add_argument("--config-meters", type=int, default=10000)
    ap.add_argument("--inserts", type=int, default=20000)
    ap.add_argument("--json", action="store_true", help="one JSON object of figures")
    ap.add_argument("--smoke", action="store_true", help="a small run (dev.sh test)")
    args = ap.parse_args()
    if args.smoke:
        args.meters, args.sessions, args.config_meters, args.inserts = 40, 16, 500, 500
    from smmc_gateway.ops.logging import configure_logging

    configure_logging("warning", "json")  # per-meter info lines would be measured otherwise
    sim = None
    try:
        with tempfile.TemporaryDirectory(prefix="smmc-bench-") as d:
            tmp = Path(d)
            mem = runtime.run(bench_memory(args.config_meters, tmp))
            ins = runtime.run(bench_inserts(args.inserts, tmp))
            sim, listing = start_simulator(args.meters)
            reads = runtime.run(bench_reads(sim, listing, tmp, args.sessions))
    except (BenchError, ConfigError, OSError, ValueError) as exc:
        print(f"bench/fleet.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(20)
    figures = {
        "reads_per_s": reads["reads_per_s"],
        "reads": reads["reads"],
        "ok": reads["ok"],
        "failed": reads["failed"],
        "failures_by_type": reads["failures_by_type"],
        "cpu_ms_per_read": reads["cpu_ms_per_read"],
        "sim_cpu_ms_per_read": reads["sim_cpu_ms_per_read"],
        "cold_reads_per_s": reads["cold_reads_per_s"],
        "wall_s": reads["wall_s"],
        "max_tcp_sessions": reads["max_tcp_sessions"],
        "outbox_rows": reads["outbox_rows"],
        "kib_per_configured_meter": mem["kib_per_meter"],
        "configured_meters": mem["configured"],
        "outbox_inserts_per_s": ins["inserts_per_s"],
        "outbox_fsynced_commits": ins["fsynced_commits"],
        "cpus": os.cpu_count(),
        "event_loop": reads["event_loop"],
    }
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        print_table(figures, reads, mem, ins)
    if reads["failed"]:
        print(
            f"bench/fleet.py: {reads['failed']} read(s) failed; first: {reads['first_error']}",
            file=sys.stderr,
        )
        return 1
    return 0


def print_table(
    f: dict[str, Any], reads: dict[str, Any], mem: dict[str, float], ins: dict[str, float]
) -> None:
    print(
        f"\nsmmc-gateway fleet benchmark ({f['cpus']} CPUs, Python {sys.version.split()[0]}, "
        f"{f['event_loop']} event loop)\n"
    )
    rows = [
        (
            "complete reads/s (HLS-GMAC, 16-row profile + 4 registers)",
            f"{f['reads_per_s']:.0f}",
            ">= 500",
            f"{f['ok']} ok, {f['failed']} failed of {f['reads']} in {f['wall_s']:.1f}s, "
            f"{f['max_tcp_sessions']} sessions",
        ),
        (
            "  first round after a start (counter blocks reserved)",
            f"{f['cold_reads_per_s']:.0f}",
            "",
            "one fsynced reservation per meter",
        ),
        ("gateway CPU per read", f"{f['cpu_ms_per_read']:.2f} ms", "<= 1 ms", "this process"),
        (
            "simulator CPU per read",
            f"{f['sim_cpu_ms_per_read']:.2f} ms",
            "<= 1 ms",
            "its own process",
        ),
        (
            "resident memory per configured meter",
            f"{mem['kib_per_meter']:.2f} KiB",
            "<= 50 KiB",
            f"{mem['configured']} meters: +{mem['rss_growth_mib']:.1f} MiB RSS",
        ),
        (
            "outbox durable inserts/s",
            f"{ins['inserts_per_s']:.0f}",
            ">= 5000",
            f"{ins['inserts']} single adds, {ins['fsynced_commits']} fsynced commits "
            f"({ins['per_commit']:.0f}/commit)",
        ),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'result':>12}  {'target':>10}  notes")
    for name, result, target, note in rows:
        print(f"{name:<{w}}  {result:>12}  {target:>10}  {note}")
    if reads["first_error"]:
        print(f"\nfirst error: {reads['first_error']}")


if __name__ == "__main__":
    raise SystemExit(main())
