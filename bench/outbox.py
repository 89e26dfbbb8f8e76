"""Durable outbox insert rate: single adds, concurrent adds (group commit), add_many batches.

Every add returns only after its transaction is committed with synchronous=FULL (fsync).
Run: python bench/outbox.py [--dir DIR] [--n N]   (DIR defaults to a temp dir; use the
disk the daemon will write to, since fsync cost is the disk's).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from smmc_gateway.uplink import envelope
from smmc_gateway.uplink.outbox import Outbox
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics

T = Topics("gw-bench")
READINGS: list[envelope.Reading] = [
    {
        "ref": "A+",
        "obis": "1.0.1.8.0.255",
        "unit": "Wh",
        "timestamp": envelope.datetime(2026, 11, 27, tzinfo=envelope.UTC),
        "value": 123456,
    }
]


def draft(i: int) -> envelope.Draft:
    return envelope.meter_readings(T, f"m{i % 1000}", READINGS)


async def run(path: Path, mode: str, n: int, width: int) -> tuple[float, int]:
    store = Store(path)
    ob = Outbox.open(store, "gw-bench")
    t0 = time.perf_counter()
    if mode == "sequential add":
        for i in range(n):
            await ob.add(draft(i))
    elif mode == "concurrent add":

        async def worker(k: int) -> None:
            for i in range(k, n, width):
                await ob.add(draft(i))

        await asyncio.gather(*(worker(k) for k in range(width)))
    else:
        for i in range(0, n, width):
            await ob.add_many([draft(j) for j in range(i, min(n, i + width))])
    dt = time.perf_counter() - t0
    commits = store.commits
    await store.close()
    return n / dt, commits


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print(f"outbox durable inserts ({args.n} messages each, dir {d}, synchronous=FULL, WAL)")
        print(f"{'mode':<16}{'width':>7}{'inserts/s':>12}{'commits':>9}")
        cases = [
            ("sequential add", 1),
            ("concurrent add", 8),
            ("concurrent add", 64),
            ("add_many", 10),
            ("add_many", 100),
            ("add_many", 1000),
        ]
        for k, (mode, width) in enumerate(cases):
            n = min(args.n, 1000) if mode == "sequential add" else args.n
            rate, commits = await run(Path(d) / f"b{k}.db", mode, n, width)
            print(f"{mode:<16}{width:>7}{rate:>12,.0f}{commits:>9}")


if __name__ == "__main__":
    asyncio.run(main())
