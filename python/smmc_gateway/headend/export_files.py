"""Files for a data warehouse or an MDM's file loader (issue 11 items 4 and 9): CSV, written
atomically.

Every file is written as ``.NAME.tmp`` in its directory, flushed and fsynced, renamed to
``NAME`` and the directory fsynced: a reader that takes only names not starting with a dot
never sees half a file, and after a crash a file either is there whole or is not there.

Columns (UTF-8, comma-separated, RFC 4180 quoting, a header row; times UTC ISO-8601 with
``Z``; the standard's codes of IEC 61968-9 beside the gateway's names, see
docs/reading-types.md and docs/event-codes.md):

* readings — :data:`READING_COLUMNS`: ``meter_id``, ``kind`` (``register``: a register
  value; ``interval``: a load-profile interval), ``reading_type`` (the 18-part ReadingType
  code), ``obis``, ``unit``, ``timestamp``, ``value`` (a number as JSON writes it, or the
  text), ``qualities`` (the interval's ReadingQuality refs, ``;``-separated, empty when
  none);
* events — :data:`EVENT_COLUMNS`: ``meter_id``, ``event_mrid``, ``created``,
  ``event_type`` (the EndDeviceEventType code, ``0.0.0.0`` for a name without one),
  ``event_name``, ``reason``, ``details``;
* read outcomes — :data:`READ_COLUMNS`: ``meter_id``, ``timestamp``, ``use_case``
  (``collect``, ``registers``, ``schedule``, ...), ``result`` (``ok`` | ``failed``),
  ``error``.

:func:`export_day` writes a day's readings, events and read outcomes from the data store
(``smmc-gateway export``) over a read-only connection, streaming rows (memory does not grow
with the day).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from smmc_gateway.cim.event_types import lookup

READING_COLUMNS = (
    "meter_id",
    "kind",
    "reading_type",
    "obis",
    "unit",
    "timestamp",
    "value",
    "qualities",
)
EVENT_COLUMNS = (
    "meter_id",
    "event_mrid",
    "created",
    "event_type",
    "event_name",
    "reason",
    "details",
)
READ_COLUMNS = ("meter_id", "timestamp", "use_case", "result", "error")
UNCODED = "0.0.0.0"
_BATCH = 2000


class AtomicCsv:
    """One CSV file written under a temporary name and renamed when complete (blocking:
    call from a thread when on the event loop)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.tmp.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\r\n")
        self._writer.writerow(columns)

    def write(self, rows: Iterable[Sequence[object]]) -> int:
        n = 0
        for row in rows:
            self._writer.writerow(row)
            n += 1
        self.rows += n
        return n

    def commit(self) -> Path:
        """Flush, fsync, rename to the final name, fsync the directory."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self.tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return self.path

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.tmp.unlink(missing_ok=True)


def utc(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def qualities_text(raw: Any) -> str:
    if not raw:
        return ""
    return ";".join(str(q.get("ref", "")) if isinstance(q, dict) else str(q) for q in raw)


def reading_rows(meter: str, readings: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """Rows of rendered MeterReadings ``Readings`` entries (kind register)."""
    for r in readings:
        rt = r["ReadingType"]
        yield (
            meter,
            "register",
            rt["ref"],
            rt.get("obis", ""),
            rt.get("unit", ""),
            r["timeStamp"],
            value_text(r["value"]),
            "",
        )


def interval_rows(meter: str, blocks: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``IntervalBlocks`` (kind interval), one per interval reading."""
    for block in blocks:
        rt = block.get("ReadingType", {})
        for iv in block.get("IntervalReadings", []):
            yield (
                meter,
                "interval",
                rt.get("ref", ""),
                rt.get("obis", ""),
                rt.get("unit", ""),
                iv["timeStamp"],
                value_text(iv["value"]),
                qualities_text(iv.get("ReadingQualities")),
            )


@dataclass
class DayExport:
    """What :func:`export_day` wrote."""

    files: dict[str, Path]
    rows: dict[str, int]


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _stream(
    conn: sqlite3.Connection, sql: str, args: Sequence[object]
) -> Iterator[list[tuple[Any, ...]]]:
    cur = conn.execute(sql, args)
    while True:
        batch = cur.fetchmany(_BATCH)
        if not batch:
            return
        yield batch


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to a (possibly live, WAL) SQLite database: the daemon keeps
    writing, this reads a consistent snapshot per query and never writes or checkpoints."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no data store at {path} (has the gateway run with this state_dir?)"
        )
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def export_day(conn: sqlite3.Connection, gateway: str, day: date, out: Path) -> DayExport:
    """Write ``{gateway}_{day}_readings.csv``, ``_events.csv`` and ``_reads.csv`` into
    ``out`` from the data store tables: rows stamped in [day 00:00Z, next day 00:00Z)."""
    a = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    b = (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)).timestamp()
    tables = _tables(conn)
    stem = f"{gateway}_{day.isoformat()}"
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    conn.execute("BEGIN")  # one snapshot for the whole export
    try:
        writer = AtomicCsv(out / f"{stem}_readings.csv", READING_COLUMNS)
        try:
            if "ds_register" in tables:
                for batch in _stream(
                    conn,
                    "SELECT meter_id, ref, obis, unit, ts, value FROM "
                    "ds_register WHERE ts>=? AND ts<? ORDER BY meter_id, ts, "
                    "obis",
                    (a, b),
                ):
                    writer.write(
                        (m, "register", ref, obis, unit, utc(ts), value_text(json.loads(v)), "")
                        for m, ref, obis, unit, ts, v in batch
                    )
            if "ds_interval" in tables:
                for batch in _stream(
                    conn,
                    "SELECT meter_id, ref, obis, unit, ts, value, "
                    "qualities FROM ds_interval WHERE ts>=? AND ts<? ORDER BY "
                    "meter_id, ts, ref",
                    (a, b),
                ):
                    writer.write(
                        (
                            m,
                            "interval",
                            ref,
                            obis or "",
                            unit or "",
                            utc(ts),
                            value_text(json.loads(v)),
                            qualities_text(json.loads(q) if q else None),
                        )
                        for m, ref, obis, unit, ts, v, q in batch
                    )
            files["readings"], rows["readings"] = writer.commit(), writer.rows
        finally:
            writer.abort()
        writer = AtomicCsv(out / f"{stem}_events.csv", EVENT_COLUMNS)
        try:
            if "ds_event" in tables:
                for batch in _stream(
                    conn,
                    "SELECT meter_id, mrid, ts, type_ref, reason, "
                    "details FROM ds_event WHERE ts>=? AND ts<? ORDER BY "
                    "meter_id, ts, mrid",
                    (a, b),
                ):
                    writer.write(
                        (m, mrid, utc(ts), _code(name), name, reason or "", details or "")
                        for m, mrid, ts, name, reason, details in batch
                    )
            files["events"], rows["events"] = writer.commit(), writer.rows
        finally:
            writer.abort()
        writer = AtomicCsv(out / f"{stem}_reads.csv", READ_COLUMNS)
        try:
            if "ds_read" in tables:
                for batch in _stream(
                    conn,
                    "SELECT meter_id, ts, use_case, ok, error FROM "
                    "ds_read WHERE ts>=? AND ts<? ORDER BY meter_id, ts",
                    (a, b),
                ):
                    writer.write(
                        (m, utc(ts), uc, "ok" if ok else "failed", error or "")
                        for m, ts, uc, ok, error in batch
                    )
            files["reads"], rows["reads"] = writer.commit(), writer.rows
        finally:
            writer.abort()
    finally:
        conn.execute("ROLLBACK")
    return DayExport(files, rows)


def _code(name: str) -> str:
    found = lookup(name)
    return found.code if found is not None else UNCODED
