"""The gateway's queryable data store (use cases 3 and 11): what was published, kept per meter.

Register readings, interval (load profile) readings, meter events and the outcome of
every scheduled read are kept in tables of the fleet database (``fleet.sqlite``, WAL,
``CREATE TABLE IF NOT EXISTS`` so an older state file simply gains them). Writes go
through the fleet's :class:`~smmc_gateway.uplink.store.Store`: one job per published
message (``executemany``), run on its writer thread and group-committed there, never on
the event loop. Rows older than the retention (``DEFAULT_RETENTION_DAYS`` = 90 days; no
config key exists for it yet) are pruned at most once a day, on the next write.

:class:`RecordingPublisher` wraps the uplink publisher of the head-end: every reading and
event handed to the uplink is recorded here first (one group commit, milliseconds), so
what a consumer saw published is already queryable, and the head-end's steps after a
publication keep their timing; a store failure is logged, never raised: it does not
stop the publication.

Customer queries (:meth:`DataStore.query`) and reports (:meth:`DataStore.report`) answer
from these tables only; the meter is never touched.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.uplink.envelope import Draft, Event, MeterReadingPart, Reading
from smmc_gateway.uplink.store import Store, StoreClosed
from smmc_gateway.uplink.topics import Topics

log = structlog.get_logger("smmc_gateway.datastore")

DEFAULT_RETENTION_DAYS = 90.0
PRUNE_EVERY_S = 86400.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS ds_register (
  meter_id TEXT NOT NULL, obis TEXT NOT NULL, ref TEXT NOT NULL, unit TEXT NOT NULL,
  ts REAL NOT NULL, value TEXT NOT NULL, PRIMARY KEY (meter_id, obis, ts));
CREATE TABLE IF NOT EXISTS ds_interval (
  meter_id TEXT NOT NULL, ref TEXT NOT NULL, obis TEXT, unit TEXT, ts REAL NOT NULL,
  value TEXT NOT NULL, qualities TEXT, PRIMARY KEY (meter_id, ref, ts));
CREATE TABLE IF NOT EXISTS ds_event (
  mrid TEXT PRIMARY KEY, meter_id TEXT NOT NULL, ts REAL NOT NULL, type_ref TEXT NOT NULL,
  reason TEXT, details TEXT);
CREATE INDEX IF NOT EXISTS ds_event_meter ON ds_event (meter_id, ts);
CREATE TABLE IF NOT EXISTS ds_read (
  meter_id TEXT NOT NULL, ts REAL NOT NULL, use_case TEXT NOT NULL, ok INTEGER NOT NULL,
  error TEXT);
CREATE INDEX IF NOT EXISTS ds_read_meter ON ds_read (meter_id, ts);
"""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class GapRange:
    """Intervals missing between ``start`` and ``end`` (both inclusive interval stamps)."""

    start: datetime
    end: datetime
    missing: int


def expected_stamps(start: datetime, end: datetime, period_s: int) -> int:
    """Interval ends aligned to ``period_s`` in ``[start, end)``."""
    first = -(-int(start.timestamp()) // period_s) * period_s
    last = int(end.timestamp())
    return 0 if first >= last else (last - 1 - first) // period_s + 1


def find_gaps(stamps: Sequence[float], start: datetime, end: datetime,
              period_s: int) -> list[GapRange]:
    """Expected aligned interval stamps in ``[start, end)`` that ``stamps`` lacks, as ranges."""
    have = {int(s) for s in stamps}
    first = -(-int(start.timestamp()) // period_s) * period_s
    gaps: list[GapRange] = []
    run: list[int] = []
    t = first
    while t < end.timestamp():
        if t in have:
            if run:
                gaps.append(GapRange(datetime.fromtimestamp(run[0], UTC),
                                     datetime.fromtimestamp(run[-1], UTC), len(run)))
                run = []
        else:
            run.append(t)
        t += period_s
    if run:
        gaps.append(GapRange(datetime.fromtimestamp(run[0], UTC),
                             datetime.fromtimestamp(run[-1], UTC), len(run)))
    return gaps


def infer_period(stamps: Sequence[float]) -> int | None:
    """The most common positive step between sorted stamps (the capture period)."""
    steps = Counter(int(b - a) for a, b in itertools.pairwise(stamps) if b > a)
    return steps.most_common(1)[0][0] if steps else None


@dataclass
class QueryResult:
    """Stored data of one meter in a range; ``next_start`` is set when truncated."""

    meter_id: str
    readings: list[Reading]
    blocks: list[dict[str, Any]]
    intervals: int
    truncated: bool = False
    next_start: datetime | None = None

    def part(self) -> MeterReadingPart:
        part = MeterReadingPart(meter=self.meter_id, readings=self.readings)
        if self.blocks:
            part["interval_blocks"] = self.blocks
        return part


@dataclass
class Report:
    """Read success and events of one meter over a period (use case 11)."""

    meter_id: str
    start: datetime
    end: datetime
    period_s: int | None
    expected: int
    received: int
    gaps: list[GapRange] = field(default_factory=list)
    reads_ok: int = 0
    reads_failed: int = 0
    events: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        rate = round(self.received / self.expected, 4) if self.expected else None
        return {
            "Meter": {"mRID": self.meter_id},
            "period": {"start": _iso(self.start.timestamp()), "end": _iso(self.end.timestamp())},
            "intervalSeconds": self.period_s,
            "expectedIntervals": self.expected, "receivedIntervals": self.received,
            "readSuccessRate": rate,
            "gaps": [{"start": _iso(g.start.timestamp()), "end": _iso(g.end.timestamp()),
                      "missing": g.missing} for g in self.gaps],
            "reads": {"ok": self.reads_ok, "failed": self.reads_failed},
            "eventCounts": dict(sorted(self.events.items())),
        }


def _interval_rows(meter: str, blocks: bytes | Sequence[Mapping[str, Any]]
                   ) -> list[tuple[Any, ...]]:
    parsed = json.loads(bytes(blocks)) if isinstance(blocks, bytes | bytearray) else blocks
    rows: list[tuple[Any, ...]] = []
    for block in parsed:
        rt = block.get("ReadingType", {})
        for iv in block.get("IntervalReadings", []):
            q = iv.get("ReadingQualities")
            rows.append((meter, rt.get("ref", "?"), rt.get("obis"), rt.get("unit"),
                         _epoch(iv["timeStamp"]), json.dumps(iv["value"]),
                         json.dumps(q) if q else None))
    return rows


class DataStore:
    """Readings, intervals, events and read outcomes per meter, over the fleet database."""

    def __init__(self, store: Store, *, retention_days: float = DEFAULT_RETENTION_DAYS,
                 clock: Callable[[], float] = time.time) -> None:
        if retention_days <= 0:
            raise ValueError(f"retention_days: {retention_days} must be > 0")
        self.store = store
        self.retention_s = retention_days * 86400.0
        self.clock = clock
        self._last_prune = 0.0
        self._ready = False

    async def _job(self, fn: Any) -> Any:
        if not self._ready:  # DDL on the writer thread too (idempotent), before the first job
            def ddl(conn: sqlite3.Connection) -> None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)

            await self.store.submit(ddl)
            self._ready = True
        return await self.store.submit(fn)

    async def _maybe_prune(self) -> None:
        now = self.clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            removed = await self.prune(datetime.fromtimestamp(now, UTC))
            if removed:
                log.info("datastore_pruned", rows=removed)

    # -- writes --------------------------------------------------------------------
    async def record_readings(self, meter: str, readings: Sequence[Reading],
                              interval_blocks: bytes | Sequence[Mapping[str, Any]] | None
                              ) -> None:
        regs = [(meter, r["obis"], r["ref"], r["unit"], r["timestamp"].timestamp(),
                 json.dumps(r["value"])) for r in readings]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO ds_register VALUES (?,?,?,?,?,?)", regs)
            if interval_blocks is not None:  # parsed here, on the writer thread
                conn.executemany("INSERT OR REPLACE INTO ds_interval VALUES (?,?,?,?,?,?,?)",
                                 _interval_rows(meter, interval_blocks))

        await self._job(job)
        await self._maybe_prune()

    async def record_events(self, meter: str, events: Sequence[Event]) -> None:
        rows = [(e.get("mrid"), meter, e["created"].timestamp(), e.get("type_ref", "?"),
                 e.get("reason"), e.get("details")) for e in events]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO ds_event VALUES (?,?,?,?,?,?)", rows)

        await self._job(job)

    async def record_read(self, meter: str, use_case: str, ok: bool,
                          error: str | None = None, at: datetime | None = None) -> None:
        ts = (at or datetime.now(UTC)).timestamp()

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO ds_read VALUES (?,?,?,?,?)",
                         (meter, ts, use_case, int(ok), error))

        await self._job(job)

    async def prune(self, now: datetime) -> int:
        """Delete rows older than the retention; returns how many."""
        cutoff = now.timestamp() - self.retention_s

        def job(conn: sqlite3.Connection) -> int:
            n = 0
            for table in ("ds_register", "ds_interval", "ds_event", "ds_read"):
                n += conn.execute(f"DELETE FROM {table} WHERE ts < ?", (cutoff,)).rowcount
            return n

        return int(await self._job(job))

    # -- reads ---------------------------------------------------------------------
    async def query(self, meter: str, start: datetime, end: datetime,
                    max_intervals: int = 2000) -> QueryResult:
        """Registers and intervals of ``meter`` stamped in ``[start, end)``, oldest first;
        at most ``max_intervals`` interval stamps (all reading types of one stamp together):
        when more are stored, ``truncated`` and ``next_start`` (the first stamp left out)."""
        a, b = start.timestamp(), end.timestamp()

        def job(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            stamps = [r[0] for r in conn.execute(
                "SELECT DISTINCT ts FROM ds_interval WHERE meter_id=? AND ts>=? AND ts<?"
                " ORDER BY ts LIMIT ?", (meter, a, b, max_intervals + 1))]
            upper = stamps[max_intervals] if len(stamps) > max_intervals else b
            ivs = list(conn.execute(
                "SELECT ref, obis, unit, ts, value, qualities FROM ds_interval"
                " WHERE meter_id=? AND ts>=? AND ts<? ORDER BY ref, ts", (meter, a, upper)))
            regs = list(conn.execute(
                "SELECT obis, ref, unit, ts, value FROM ds_register"
                " WHERE meter_id=? AND ts>=? AND ts<? ORDER BY ts, obis", (meter, a, upper)))
            return [stamps, upper], [ivs, regs]

        (stamps, upper), (ivs, regs) = await self._job(job)
        blocks: dict[str, dict[str, Any]] = {}
        for ref, obis, unit, ts, value, qualities in ivs:
            block = blocks.get(ref)
            if block is None:
                rt = {"ref": ref, **({"obis": obis} if obis else {}),
                      **({"unit": unit} if unit else {})}
                block = blocks[ref] = {"ReadingType": rt, "IntervalReadings": []}
            item: dict[str, Any] = {"timeStamp": _iso(ts), "value": json.loads(value)}
            if qualities:
                item["ReadingQualities"] = json.loads(qualities)
            block["IntervalReadings"].append(item)
        readings = [Reading(ref=ref, obis=obis, unit=unit,
                            timestamp=datetime.fromtimestamp(ts, UTC), value=json.loads(v))
                    for obis, ref, unit, ts, v in regs]
        truncated = len(stamps) > max_intervals
        return QueryResult(meter, readings, list(blocks.values()),
                           min(len(stamps), max_intervals), truncated,
                           datetime.fromtimestamp(upper, UTC) if truncated else None)

    async def report(self, meter: str, start: datetime, end: datetime,
                     period_s: int | None = None) -> Report:
        """Expected vs received intervals (period given or inferred from the stored
        stamps), the gaps, reads ok/failed and event counts by type, over ``[start, end)``."""
        a, b = start.timestamp(), end.timestamp()

        def job(conn: sqlite3.Connection) -> tuple[list[float], list[Any], list[Any]]:
            stamps = [r[0] for r in conn.execute(
                "SELECT DISTINCT ts FROM ds_interval WHERE meter_id=? AND ts>=? AND ts<?"
                " ORDER BY ts", (meter, a, b))]
            reads = list(conn.execute(
                "SELECT ok, COUNT(*) FROM ds_read WHERE meter_id=? AND ts>=? AND ts<?"
                " GROUP BY ok", (meter, a, b)))
            events = list(conn.execute(
                "SELECT type_ref, COUNT(*) FROM ds_event WHERE meter_id=? AND ts>=? AND ts<?"
                " GROUP BY type_ref", (meter, a, b)))
            return stamps, reads, events

        stamps, reads, events = await self._job(job)
        period = period_s or infer_period(stamps)
        expected = expected_stamps(start, end, period) if period else 0
        gaps = find_gaps(stamps, start, end, period) if period else []
        by_ok = {bool(ok): n for ok, n in reads}
        return Report(meter, start, end, period, expected, len(stamps), gaps,
                      by_ok.get(True, 0), by_ok.get(False, 0), {t: n for t, n in events})


class RecordingPublisher:
    """The head-end's publisher: the uplink's, plus a copy of readings and events here."""

    def __init__(self, inner: Any, data: DataStore) -> None:
        self.inner = inner
        self.data = data
        self.topics: Topics = inner.topics

    async def publish_reading(self, meter: str, readings: Sequence[Reading] = (),
                              interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
                              message_id: str | None = None) -> str:
        try:
            await self.data.record_readings(meter, readings, interval_blocks)
        except (sqlite3.Error, StoreClosed, ValueError, KeyError, TypeError) as exc:
            log.error("datastore_write_failed", meter_id=meter, kind="readings", error=str(exc))
        message: str = await self.inner.publish_reading(meter, readings, interval_blocks,
                                                        message_id=message_id)
        return message

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str:
        try:
            await self.data.record_events(meter, events)
        except (sqlite3.Error, StoreClosed, ValueError, KeyError, TypeError) as exc:
            log.error("datastore_write_failed", meter_id=meter, kind="events", error=str(exc))
        message: str = await self.inner.publish_event(meter, events)
        return message

    async def publish_bulk(self, parts: Sequence[MeterReadingPart]) -> str:
        message: str = await self.inner.publish_bulk(parts)
        return message

    async def publish(self, drafts: Sequence[Draft]) -> list[str]:
        ids: list[str] = await self.inner.publish(drafts)
        return ids
