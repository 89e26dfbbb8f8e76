"""Fleet benchmark: how much fleet one gateway process carries.

    .venv/bin/python bench/fleet.py [--meters 1000] [--config-meters 10000] [--inserts 20000]

1. The simulator serves ``--meters`` TCP meters (HLS-GMAC, wrapper) in its own
   process (``python -m smmc_gateway.simulator``).
2. The gateway side runs here, as the daemon builds it (fleet state, scheduler with
   ``max_tcp_sessions`` gates, HeadEnd use cases, durable outbox): every meter gets one
   complete scheduled read (association with HLS-GMAC, 4 h of 15-minute load
   profile by range -> IntervalBlocks JSON, four registers with-list, release),
   results stored durably in the outbox. Reported: complete reads per second (wall),
   gateway CPU per read (this process: user + sys, all threads incl. SQLite), and the
   simulator's CPU for comparison.
3. Resident memory per configured meter: RSS growth when ``--config-meters`` meters
   are loaded from CSV, their states loaded and scheduled (no sessions open).
4. Outbox durable inserts per second: ``--inserts`` single-message publishes from 256
   concurrent tasks, each returning only after its fsynced commit (group commit).

Targets on a 2-core machine: >= 200 reads/s, <= 50 KiB per configured meter,
>= 5,000 inserts/s. The script prints what it measures; it asserts nothing.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

from smmc_gateway.headend.fleet import Fleet  # noqa: E402
from smmc_gateway.headend.labconfig import write_lab_config  # noqa: E402
from smmc_gateway.headend.scheduler import Scheduler  # noqa: E402
from smmc_gateway.headend.service import HeadEnd  # noqa: E402
from smmc_gateway.headend.sessions import BatchedCounterStore, SessionFactory  # noqa: E402
from smmc_gateway.ops.config import load_config  # noqa: E402
from smmc_gateway.uplink.envelope import Draft, MessageClass  # noqa: E402
from smmc_gateway.uplink.outbox import Outbox  # noqa: E402
from smmc_gateway.uplink.store import Store  # noqa: E402
from smmc_gateway.usecases.clock import FixedTimeSource  # noqa: E402


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


class OutboxPublisher:
    """The HeadEnd's publisher straight onto a durable outbox (no broker in this bench)."""

    def __init__(self, outbox: Outbox, gateway: str) -> None:
        from smmc_gateway.uplink.topics import Topics

        self.outbox = outbox
        self.topics = Topics(gateway)

    async def publish_reading(self, meter, readings=(), interval_blocks=None):  # type: ignore[no-untyped-def]
        from smmc_gateway.uplink import envelope

        return await self.outbox.add(envelope.meter_readings(self.topics, meter, readings,
                                                             interval_blocks))

    async def publish_event(self, meter, events):  # type: ignore[no-untyped-def]
        from smmc_gateway.uplink import envelope

        return await self.outbox.add(envelope.end_device_events(self.topics, meter, events))

    async def publish_bulk(self, parts):  # type: ignore[no-untyped-def]
        from smmc_gateway.uplink import envelope

        return await self.outbox.add(envelope.bulk_readings(self.topics, parts))


async def bench_reads(n: int, tmp: Path, sessions: int) -> dict[str, float]:
    sim = subprocess.Popen(  # noqa: ASYNC220 - started once before the measurement
        [sys.executable, "-m", "smmc_gateway.simulator", "--tcp", "0", "--meters", str(n),
         "--json", "--push", "127.0.0.1:9"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        assert sim.stdout is not None
        listing = json.loads(sim.stdout.readline())["meters"]
        cfg = load_config(write_lab_config(tmp / "reads", listing, broker=("127.0.0.1", 1),
                                           max_tcp_sessions=sessions, response_timeout="20s"))
        state = tmp / "reads" / "state"
        ic = BatchedCounterStore(str(state / "ic.sqlite"))
        fleet = await Fleet.open(cfg.meters, state / "fleet.sqlite")
        store = Store(state / "outbox.sqlite")
        outbox = Outbox.open(store, cfg.gateway.id)
        sched = Scheduler(fleet, SessionFactory(system_title=cfg.gateway.client_system_title,
                                                ic_store=ic, response_timeout=20),
                          max_tcp_sessions=sessions)
        head = HeadEnd(fleet, sched, OutboxPublisher(outbox, cfg.gateway.id), cfg.models,
                       time_source=FixedTimeSource(), first_read_s=4 * 3600)
        ids = fleet.ids()
        ok = failed = 0

        async def one(m: str) -> None:
            nonlocal ok, failed
            try:
                await head.collect(m)
                ok += 1
            except Exception:
                failed += 1

        await one(ids[0])  # warm-up: caches the profile layout of the model
        t0 = time.perf_counter()
        await asyncio.gather(*(one(m) for m in ids[1:]))  # first round after a start
        cold_wall = time.perf_counter() - t0
        cold_ok, ok, failed = ok - 1, 0, 0
        c0, s0, t0 = cpu_self(), cpu_of(sim.pid), time.perf_counter()
        await asyncio.gather(*(one(m) for m in ids[1:]))  # steady state: the next round
        wall = time.perf_counter() - t0
        cpu, scpu = cpu_self() - c0, cpu_of(sim.pid) - s0
        ok += 1
        rows = (await outbox.backlog())[MessageClass.TELEMETRY].depth
        await sched.stop(1)
        await fleet.close()
        await store.close()
        ic.close()
        reads = n - 1
        return {"reads": reads, "ok": ok - 1, "failed": failed, "wall_s": wall,
                "reads_per_s": (ok - 1) / wall, "cpu_ms_per_read": cpu / max(1, ok - 1) * 1e3,
                "sim_cpu_ms_per_read": scpu / max(1, ok - 1) * 1e3, "outbox_rows": rows,
                "max_tcp_sessions": sessions, "cold_reads_per_s": cold_ok / cold_wall}
    finally:
        sim.terminate()
        sim.wait(20)


async def bench_memory(n: int, tmp: Path) -> dict[str, float]:
    listing = [{"meter_id": f"mem-{i:06d}", "port": 10000 + i % 50000,
                "ek": "00112233445566778899aabbccddeeff", "ak": "00112233445566778899aabbccddeeff",
                "auth": "hls-gmac"} for i in range(n)]
    path = write_lab_config(tmp / "mem", listing, broker=("127.0.0.1", 1))
    before = rss_bytes()
    cfg = load_config(path)
    fleet = await Fleet.open(cfg.meters, tmp / "mem" / "state" / "fleet.sqlite")
    sched = Scheduler(fleet, SessionFactory())

    async def job(_m: str) -> None:
        return None

    sched.every("collect", 4 * 3600, job, jitter_s=600, last_success=lambda _m: time.time())
    after = rss_bytes()
    await fleet.close()
    return {"configured": n, "rss_growth_mib": (after - before) / 2**20,
            "kib_per_meter": (after - before) / n / 1024}


async def bench_inserts(n: int, tmp: Path, concurrency: int = 256) -> dict[str, float]:
    store = Store(tmp / "ins.sqlite")
    outbox = Outbox.open(store, "gw-bench")
    payload = json.dumps({"MeterReading": [{"Meter": {"mRID": "m"}, "Readings": []}]}).encode()
    draft = Draft(MessageClass.TELEMETRY, "smmc/v1/gw-bench/meter/m/readings", "created",
                  "MeterReadings", payload)
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
    return {"inserts": n, "inserts_per_s": n / wall, "fsynced_commits": commits,
            "per_commit": n / max(1, commits)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=64, help="max_tcp_sessions")
    ap.add_argument("--config-meters", type=int, default=10000)
    ap.add_argument("--inserts", type=int, default=20000)
    args = ap.parse_args()
    from smmc_gateway.ops.logging import configure_logging

    configure_logging("warning", "json")  # per-meter info lines would be measured otherwise
    with tempfile.TemporaryDirectory(prefix="smmc-bench-") as d:
        tmp = Path(d)
        mem = asyncio.run(bench_memory(args.config_meters, tmp))
        ins = asyncio.run(bench_inserts(args.inserts, tmp))
        reads = asyncio.run(bench_reads(args.meters, tmp, args.sessions))
    print(f"\nsmmc-gateway fleet benchmark ({os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]})\n")
    rows = [
        ("complete reads/s (HLS-GMAC, 16-row profile, 4 registers)",
         f"{reads['reads_per_s']:.0f}", ">= 200",
         f"{reads['ok']} ok, {reads['failed']} failed of {reads['reads']} in "
         f"{reads['wall_s']:.1f}s, {reads['max_tcp_sessions']} sessions"),
        ("  first round after a start (counter blocks reserved)",
         f"{reads['cold_reads_per_s']:.0f}", "", "one fsynced reservation per meter"),
        ("gateway CPU per read", f"{reads['cpu_ms_per_read']:.2f} ms", "",
         f"simulator: {reads['sim_cpu_ms_per_read']:.2f} ms/read (other process)"),
        ("resident memory per configured meter", f"{mem['kib_per_meter']:.2f} KiB", "<= 50 KiB",
         f"{mem['configured']} meters: +{mem['rss_growth_mib']:.1f} MiB RSS"),
        ("outbox durable inserts/s", f"{ins['inserts_per_s']:.0f}", ">= 5000",
         f"{ins['inserts']} single adds, {ins['fsynced_commits']} fsynced commits "
         f"({ins['per_commit']:.0f}/commit)"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'result':>12}  {'target':>10}  notes")
    for name, result, target, note in rows:
        print(f"{name:<{w}}  {result:>12}  {target:>10}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
