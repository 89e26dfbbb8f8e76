"""Data store (use cases 3 and 11): record rate of a day of 15-minute intervals per meter,
then the time of one customer query and one report over that day.

Run: python bench/datastore.py [--dir DIR] [--meters N]   (DIR defaults to a temp dir)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smmc_gateway.headend.datastore import DataStore
from smmc_gateway.uplink.store import Store

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def blocks(values: int) -> bytes:
    ivs = [{"timeStamp": (DAY + timedelta(minutes=15 * i)).isoformat().replace("+00:00", "Z"),
            "value": 1000 + i} for i in range(values)]
    return json.dumps([{"ReadingType": {"ref": ref, "obis": "1.0.1.8.0.255", "unit": "Wh"},
                        "IntervalReadings": ivs} for ref in ("A+", "A-")]).encode()


async def main(directory: Path, meters: int) -> None:
    store = Store(directory / "fleet.sqlite")
    data = DataStore(store)
    body = blocks(96)
    t0 = time.perf_counter()
    await asyncio.gather(*(data.record_readings(f"m{i}", [], body) for i in range(meters)))
    dt = time.perf_counter() - t0
    rows = meters * 96 * 2
    print(f"record: {meters} meters x 96 intervals x 2 types = {rows} rows in {dt:.2f} s "
          f"({rows / dt:,.0f} rows/s, {store.commits} commits)")
    t0 = time.perf_counter()
    got = await data.query("m0", DAY, DAY + timedelta(days=1))
    print(f"query: {got.intervals} intervals in {(time.perf_counter() - t0) * 1000:.1f} ms")
    t0 = time.perf_counter()
    rep = await data.report(f"m{meters - 1}", DAY, DAY + timedelta(days=1))
    print(f"report: {rep.received}/{rep.expected} in {(time.perf_counter() - t0) * 1000:.1f} ms")
    await store.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--meters", type=int, default=1000)
    args = ap.parse_args()
    if args.dir:
        asyncio.run(main(args.dir, args.meters))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(main(Path(d), args.meters))
