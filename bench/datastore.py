"""Data store (use cases 3 and 11): record rate of a day of 15-minute intervals per meter,
then the time of one customer query and one report over that day.

Run: python bench/datastore.py [--dir DIR] [--meters N] [--json] [--smoke]
(DIR defaults to a temp dir; ``--smoke`` is a quick run, what ``dev.sh test`` does;
``--json`` prints one object of named figures). A wrong answer ends with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smmc_gateway import runtime
from smmc_gateway.headend.datastore import DataStore
from smmc_gateway.headend.persistence import open_fleet_store

DAY = datetime(2026, 11, 1, tzinfo=UTC)


class WrongResult(RuntimeError):
    """The store answered something else than what was recorded."""


def blocks(values: int) -> bytes:
    ivs = [
        {
            "timeStamp": (DAY + timedelta(minutes=15 * i)).isoformat().replace("+00:00", "Z"),
            "value": 1000 + i,
        }
        for i in range(values)
    ]
    return json.dumps(
        [
            {
                "ReadingType": {"ref": ref, "obis": "1.0.1.8.0.255", "unit": "Wh"},
                "IntervalReadings": ivs,
            }
            for ref in ("A+", "A-")
        ]
    ).encode()


async def run(directory: Path, meters: int) -> dict[str, Any]:
    store = open_fleet_store(directory / "fleet.sqlite")
    data = DataStore(store)
    body = blocks(96)
    t0 = time.perf_counter()
    await asyncio.gather(*(data.record_readings(f"m{i}", [], body) for i in range(meters)))
    dt = time.perf_counter() - t0
    rows = meters * 96 * 2
    out: dict[str, Any] = {
        "meters": meters,
        "rows": rows,
        "record_rows_per_s": rows / dt,
        "record_commits": store.commits,
    }
    t0 = time.perf_counter()
    got = await data.query("m0", DAY, DAY + timedelta(days=1))
    out["query_ms"] = (time.perf_counter() - t0) * 1000
    out["query_intervals"] = got.intervals
    t0 = time.perf_counter()
    rep = await data.report(f"m{meters - 1}", DAY, DAY + timedelta(days=1))
    out["report_ms"] = (time.perf_counter() - t0) * 1000
    out["report_received"], out["report_expected"] = rep.received, rep.expected
    await store.close()
    if got.intervals != 96:  # interval stamps (both reading types of a stamp together)
        raise WrongResult(f"query: {got.intervals} interval stamps, recorded 96")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--meters", type=int, default=1000)
    ap.add_argument("--json", action="store_true", help="one JSON object of figures")
    ap.add_argument("--smoke", action="store_true", help="a quick run (dev.sh test)")
    args = ap.parse_args()
    if args.smoke:
        args.meters = 50
    try:
        if args.dir:
            out = runtime.run(run(args.dir, args.meters))
        else:
            with tempfile.TemporaryDirectory() as d:
                out = runtime.run(run(Path(d), args.meters))
    except (WrongResult, sqlite3.Error, OSError) as exc:
        print(f"bench/datastore.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(
        f"record: {out['meters']} meters x 96 intervals x 2 types = {out['rows']} rows "
        f"({out['record_rows_per_s']:,.0f} rows/s, {out['record_commits']} commits)"
    )
    print(f"query: {out['query_intervals']} intervals in {out['query_ms']:.1f} ms")
    print(f"report: {out['report_received']}/{out['report_expected']} in {out['report_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
