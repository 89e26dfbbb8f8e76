"""Durable outbox insert rate: single adds, concurrent adds (group commit), add_many batches.

Every add returns only after its transaction is committed with synchronous=FULL (fsync).
Run: python bench/outbox.py [--dir DIR] [--n N] [--json] [--smoke]   (DIR defaults to a
temp dir; use the disk the daemon will write to, since fsync cost is the disk's).
``--smoke`` is a quick run (what ``dev.sh test`` does); ``--json`` prints one object of
named figures. A store error ends with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from smmc_gateway import runtime
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


CASES = [
    ("sequential add", 1),
    ("concurrent add", 8),
    ("concurrent add", 64),
    ("add_many", 10),
    ("add_many", 100),
    ("add_many", 1000),
]


async def bench(directory: Path | None, n: int, as_json: bool) -> dict[str, float]:
    out: dict[str, float] = {"n": n}
    with tempfile.TemporaryDirectory(dir=directory) as d:
        if not as_json:
            print(f"outbox durable inserts ({n} messages each, dir {d}, synchronous=FULL, WAL)")
            print(f"{'mode':<16}{'width':>7}{'inserts/s':>12}{'commits':>9}")
        for k, (mode, width) in enumerate(CASES):
            count = min(n, 1000) if mode == "sequential add" else n
            rate, commits = await run(Path(d) / f"b{k}.db", mode, count, width)
            out[f"{mode.replace(' ', '_')}_{width}_per_s"] = rate
            out[f"{mode.replace(' ', '_')}_{width}_commits"] = commits
            if not as_json:
                print(f"{mode:<16}{width:>7}{rate:>12,.0f}{commits:>9}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--json", action="store_true", help="one JSON object of figures")
    ap.add_argument("--smoke", action="store_true", help="a quick run (dev.sh test)")
    args = ap.parse_args()
    if args.smoke:
        args.n = 200
    try:
        out = runtime.run(bench(args.dir, args.n, args.json))
    except (sqlite3.Error, OSError) as exc:
        print(f"bench/outbox.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
