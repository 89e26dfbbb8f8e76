"""``smmc-gateway export``: a day of the data store as CSV files for a data warehouse.

    smmc-gateway export --config /etc/smmc-gateway/gateway.toml --day 2026-11-27 --out DIR

Writes ``{gateway}_{day}_readings.csv``, ``{gateway}_{day}_events.csv`` and
``{gateway}_{day}_reads.csv`` (columns: :mod:`smmc_gateway.headend.export_files`, and
docs/configuration.md) into DIR, each atomically (a temporary ``.NAME.tmp``, fsynced,
renamed). The day is UTC. The data store (``state_dir/fleet.sqlite``) is read over a
read-only connection in one snapshot, so a running daemon is not disturbed (SQLite WAL:
readers never block its writer, nothing is written or checkpointed). Rows older than
``[datastore] retention`` are pruned by the daemon and are not in the export.

Exit status: 0 written, 1 the data store could not be read, 2 usage (a bad configuration
or day).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from smmc_gateway.cli.common import EXIT_OK, OperationFailed, UsageError


def _export(args: argparse.Namespace) -> int:
    from smmc_gateway.headend.export_files import export_day, open_readonly
    from smmc_gateway.ops.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        raise UsageError(f"--day {args.day!r} is not a date like 2026-11-27 (UTC)") from None
    if day > datetime.now(UTC).date():
        raise UsageError(f"--day {day} is in the future: nothing is stored for it")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    db = Path(config.gateway.state_dir) / "fleet.sqlite"
    started = time.monotonic()
    try:
        conn = open_readonly(db)
    except (FileNotFoundError, sqlite3.Error) as exc:
        raise OperationFailed(f"cannot open the data store: {exc}") from None
    try:
        done = export_day(conn, config.gateway.id, day, out)
    except sqlite3.Error as exc:
        raise OperationFailed(f"reading the data store {db} failed: {exc}") from None
    except OSError as exc:
        raise OperationFailed(f"writing into {out} failed: {exc}") from None
    finally:
        conn.close()
    oldest = datetime.now(UTC).timestamp() - config.datastore.retention_days * 86400
    for kind, path in done.files.items():
        print(f"{path}: {done.rows[kind]} {kind} row(s)")
    if datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() < oldest:
        print(
            f"note: {day} is older than [datastore] retention "
            f"({config.datastore.retention_days:g} days): pruned rows are not there"
        )
    print(f"exported {day} of gateway {config.gateway.id} in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a day of readings, events and read outcomes as CSV files",
        description="Write one UTC day of the gateway's data store (readings with their "
        "IEC 61968-9 ReadingType codes, events with their EndDeviceEventType "
        "codes, scheduled read outcomes) as CSV files, reading the store "
        "read-only (safe while the daemon runs).",
    )
    p.add_argument("--config", "-c", required=True, metavar="TOML", help="gateway.toml")
    p.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="the UTC day")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="where the files go (created if missing)"
    )
    p.set_defaults(handler=_export)
