"""The gateway's queryable data store (use cases 3 and 11): what was published, kept per meter.

Register readings, interval (load profile) readings, meter events and the outcome of
every scheduled read are kept in tables of the fleet database (``fleet.sqlite``, WAL; the
tables are created by the migrations of :mod:`~smmc_gateway.headend.persistence`, which
also run :func:`migrate_reading_types` once on an older state file). Writes go
through the fleet's :class:`~smmc_gateway.uplink.store.Store`: one job per published
message (``executemany``), run on its writer thread and group-committed there, never on
the event loop. Rows older than the retention (``[datastore] retention``, default
``DEFAULT_RETENTION_DAYS`` = 90 days) are pruned at most once a day, on the next write.
``smmc-gateway export`` writes a day of these tables as CSV files
(:mod:`~smmc_gateway.headend.export_files`) over a read-only connection.

:class:`RecordingPublisher` wraps the uplink publisher of the head-end: every reading and
event handed to the uplink is recorded here first (one group commit, milliseconds), so
what a consumer saw published is already queryable, and the head-end's steps after a
publication keep their timing; a store failure is logged, never raised: it does not
stop the publication.

Customer queries (:meth:`DataStore.query`) and reports (:meth:`DataStore.report`) answer
from these tables only; the meter is never touched. Both are bounded before they run
and run entirely on the store's thread: a query reads at most ``max_intervals`` stamps
(indexes on (meter, ts) make the LIMIT bound the scan itself) and cuts its reply at a
byte budget; a report reads at most ``max_stamps`` stored stamps and computes the
expected count and the gaps arithmetically from them (O(stored stamps), never
O(window / period): a window of ten thousand years costs what its stored rows cost).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.cim.event_types import lookup
from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.headend.paging import cut_point, dumps
from smmc_gateway.uplink.envelope import Draft, Event, MeterReadingPart, Reading
from smmc_gateway.uplink.store import Store, StoreClosed
from smmc_gateway.uplink.topics import Topics

log = structlog.get_logger("smmc_gateway.datastore")

DEFAULT_RETENTION_DAYS = 90.0
PRUNE_EVERY_S = 86400.0

# Tables ds_register, ds_interval, ds_event, ds_read: created by the migrations of
# smmc_gateway.headend.persistence (the fleet database is migrated when it is opened).


_CODE = re.compile(r"-?\d+(\.-?\d+){17}")  # an 18-part ReadingType code


def migrate_reading_types(conn: sqlite3.Connection) -> int:
    """Rows stored before the IEC 61968-9 codes (a register name or ``obis:...`` as ref)
    get their ReadingType code, so that what the store answers matches the schema; the
    capture period of old interval rows is taken from their first two stamps. Idempotent
    (a store without such rows is untouched); returns the rows changed."""
    changed = 0
    for ref, obis, unit in conn.execute(
        "SELECT DISTINCT ref, obis, unit FROM ds_register"
    ).fetchall():
        if not _CODE.fullmatch(ref):
            changed += conn.execute(
                "UPDATE OR REPLACE ds_register SET ref=? WHERE ref=? AND obis=? AND unit=?",
                (reading_type(obis, unit), ref, obis, unit),
            ).rowcount
    for meter, ref, obis, unit in conn.execute(
        "SELECT DISTINCT meter_id, ref, obis, unit FROM ds_interval"
    ).fetchall():
        if _CODE.fullmatch(ref):
            continue
        stamps = [
            r[0]
            for r in conn.execute(
                "SELECT ts FROM ds_interval WHERE meter_id=? AND ref=? ORDER BY ts LIMIT 2",
                (meter, ref),
            )
        ]
        period = int(stamps[1] - stamps[0]) if len(stamps) == 2 else None
        code = reading_type(
            obis or ref.removeprefix("obis:"), unit or "", measuring_period_s=period
        )
        # a row already stored under the code for the same stamp wins (it is newer)
        changed += conn.execute(
            "UPDATE OR IGNORE ds_interval SET ref=? WHERE meter_id=? AND ref=?", (code, meter, ref)
        ).rowcount
        conn.execute("DELETE FROM ds_interval WHERE meter_id=? AND ref=?", (meter, ref))
    if changed:
        log.info("datastore_reading_types_migrated", rows=changed)
    return changed


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _iso_dt(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: str) -> float:
    """Epoch seconds of an ISO-8601 stamp. A stamp without an offset is UTC: never the
    host's time zone (the readings path publishes UTC stamps only; see
    usecases/meter_clock.py for meters whose date-times carry no deviation)."""
    moment = datetime.fromisoformat(text)  # (3.11 reads "Z" as UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class GapRange:
    """Intervals missing between ``start`` and ``end`` (both inclusive interval stamps)."""

    start: datetime
    end: datetime
    missing: int


def _first_aligned(start: datetime, period_s: int) -> int:
    """The first multiple of ``period_s`` (epoch seconds) at or after ``start``."""
    return -(-math.ceil(start.timestamp()) // period_s) * period_s


def _last_before(end: datetime) -> int:
    """The last whole second before ``end`` (exclusive)."""
    return math.ceil(end.timestamp()) - 1


def expected_stamps(start: datetime, end: datetime, period_s: int) -> int:
    """Interval ends aligned to ``period_s`` in ``[start, end)`` (arithmetic, O(1))."""
    first, last = _first_aligned(start, period_s), _last_before(end)
    return 0 if first > last else (last - first) // period_s + 1


def find_gaps(
    stamps: Sequence[float], start: datetime, end: datetime, period_s: int
) -> list[GapRange]:
    """Expected aligned interval stamps in ``[start, end)`` that ``stamps`` lacks, as ranges.

    O(len(stamps)): the gaps lie between consecutive stored aligned stamps (and before the
    first, after the last); the window's length never matters."""
    first, last = _first_aligned(start, period_s), _last_before(end)
    if first > last:
        return []
    have = sorted({int(s) for s in stamps if int(s) % period_s == 0 and first <= int(s) <= last})
    gaps: list[GapRange] = []
    before = first - period_s  # a stamp "just before" the window: no gap at its start
    for t in [*have, last - last % period_s + period_s]:
        if t - before > period_s:
            a, b = before + period_s, t - period_s
            gaps.append(
                GapRange(
                    datetime.fromtimestamp(a, UTC),
                    datetime.fromtimestamp(b, UTC),
                    (b - a) // period_s + 1,
                )
            )
        before = t
    return gaps


def infer_period(stamps: Sequence[float]) -> int | None:
    """The most common positive step between sorted stamps (the capture period)."""
    steps = Counter(int(b - a) for a, b in itertools.pairwise(stamps) if b > a)
    return steps.most_common(1)[0][0] if steps else None


@dataclass
class QueryResult:
    """Stored data of one meter in a range; ``next_start`` is set when truncated (by the
    number of stamps or by the reply bytes); ``size`` estimates the rendered bytes."""

    meter_id: str
    readings: list[Reading]
    blocks: list[dict[str, Any]]
    intervals: int
    truncated: bool = False
    next_start: datetime | None = None
    size: int = 0
    by_bytes: bool = False

    def part(self) -> MeterReadingPart:
        part = MeterReadingPart(meter=self.meter_id, readings=self.readings)
        if self.blocks:
            part["interval_blocks"] = self.blocks
        return part


@dataclass
class Report:
    """Read success and events of one meter over a period (use case 11); ``end`` is
    before the asked end when the report was cut (``truncated``: too many gaps)."""

    meter_id: str
    start: datetime
    end: datetime
    period_s: int | None
    expected: int
    received: int
    gaps: list[GapRange] = field(default_factory=list)
    reads_ok: int = 0
    reads_failed: int = 0
    events: dict[str, int] = field(default_factory=dict)  # stored event name -> count
    truncated: bool = False
    scanned: int = 0  # stored stamps read (before a cut)

    def as_json(self) -> dict[str, Any]:
        rate = round(self.received / self.expected, 4) if self.expected else None
        return {
            "Meter": {"mRID": self.meter_id},
            "period": {"start": _iso_dt(self.start), "end": _iso_dt(self.end)},
            "intervalSeconds": self.period_s,
            "expectedIntervals": self.expected,
            "receivedIntervals": self.received,
            "readSuccessRate": rate,
            "gaps": [
                {"start": _iso_dt(g.start), "end": _iso_dt(g.end), "missing": g.missing}
                for g in self.gaps
            ],
            "reads": {"ok": self.reads_ok, "failed": self.reads_failed},
            **event_counts(self.events),
        }


UNCODED = "0.0.0.0"
"""The ref counted for a stored event name without a code (IEC 61968-9: all parts NA)."""


def event_counts(by_name: Mapping[str, int]) -> dict[str, Any]:
    """``eventCounts`` (by IEC 61968-9 code, names sharing a code summed) and ``eventTypes``
    (code, name and count of each stored name) of a report."""
    counts: Counter[str] = Counter()
    types = []
    for name, n in sorted(by_name.items()):
        found = lookup(name)
        ref = found.code if found is not None else UNCODED
        counts[ref] += n
        types.append({"ref": ref, "name": name, "count": n})
    return {
        "eventCounts": dict(sorted(counts.items())),
        "eventTypes": sorted(types, key=lambda t: (t["ref"], t["name"])),
    }


class TooMuchStored(Exception):
    """More stored interval stamps in a report's window than its scan may read."""

    def __init__(self, meter: str, limit: int) -> None:
        super().__init__(f"{meter}: more than {limit} stored interval stamps in the window")
        self.meter = meter
        self.limit = limit


def _json_value(value: Any) -> str:
    """``json.dumps(value)``; finite floats and ints (every interval value of a profile)
    written as the JSON encoder writes them (their repr) without going through it."""
    kind = type(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)


def _interval_rows(
    meter: str, blocks: bytes | Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    parsed = json.loads(bytes(blocks)) if isinstance(blocks, bytes | bytearray) else blocks
    rows: list[tuple[Any, ...]] = []
    epochs: dict[str, float] = {}  # every column's block repeats the same stamps
    for block in parsed:
        rt = block.get("ReadingType", {})
        ref, obis, unit = rt.get("ref", "?"), rt.get("obis"), rt.get("unit")
        for iv in block.get("IntervalReadings", []):
            stamp = iv["timeStamp"]
            at = epochs.get(stamp)
            if at is None:
                at = epochs[stamp] = _epoch(stamp)
            q = iv.get("ReadingQualities")
            rows.append(
                (meter, ref, obis, unit, at, _json_value(iv["value"]), json.dumps(q) if q else None)
            )
    return rows


class DataStore:
    """Readings, intervals, events and read outcomes per meter, over the fleet database."""

    def __init__(
        self,
        store: Store,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention_days <= 0:
            raise ValueError(f"retention_days: {retention_days} must be > 0")
        self.store = store
        self.retention_s = retention_days * 86400.0
        self.clock = clock
        self._last_prune = 0.0

    async def _job(self, fn: Any) -> Any:
        return await self.store.submit(fn)

    async def _maybe_prune(self) -> None:
        now = self.clock()
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            removed = await self.prune(datetime.fromtimestamp(now, UTC))
            if removed:
                log.info("datastore_pruned", rows=removed)

    # -- writes --------------------------------------------------------------------
    async def record_readings(
        self,
        meter: str,
        readings: Sequence[Reading],
        interval_blocks: bytes | Sequence[Mapping[str, Any]] | None,
    ) -> None:
        await self._job(self.record_readings_job(meter, readings, interval_blocks))
        await self._maybe_prune()

    def record_readings_job(
        self,
        meter: str,
        readings: Sequence[Reading],
        interval_blocks: bytes | Sequence[Mapping[str, Any]] | None,
    ) -> Callable[[sqlite3.Connection], None]:
        """What :meth:`record_readings` writes, as a job for this data store's store (a
        collection writes it in its last transaction)."""
        regs = [
            (
                meter,
                r["obis"],
                r["ref"],
                r["unit"],
                r["timestamp"].timestamp(),
                _json_value(r["value"]),
            )
            for r in readings
        ]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO ds_register VALUES (?,?,?,?,?,?)", regs)
            if interval_blocks is not None:  # parsed here, on the writer thread
                conn.executemany(
                    "INSERT OR REPLACE INTO ds_interval VALUES (?,?,?,?,?,?,?)",
                    _interval_rows(meter, interval_blocks),
                )

        return job

    async def maybe_prune(self) -> None:
        """Delete what the retention no longer keeps, at most every PRUNE_EVERY_S; a
        failure is logged (tried again a period later), never raised."""
        try:
            await self._maybe_prune()
        except (sqlite3.Error, StoreClosed) as exc:
            log.error("datastore_prune_failed", error=str(exc))

    async def record_events(self, meter: str, events: Sequence[Event]) -> None:
        # ds_event.type_ref holds the event's name: its IEC 61968-9 code is a function of
        # the name (smmc_gateway.cim), looked up when a report counts by code
        rows = [
            (
                e.get("mrid"),
                meter,
                e["created"].timestamp(),
                e.get("name", "?"),
                e.get("reason"),
                e.get("details"),
            )
            for e in events
        ]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO ds_event VALUES (?,?,?,?,?,?)", rows)

        await self._job(job)

    async def record_read(
        self,
        meter: str,
        use_case: str,
        ok: bool,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        await self._job(self.record_read_job(meter, use_case, ok, error, at))

    def record_read_job(
        self,
        meter: str,
        use_case: str,
        ok: bool,
        error: str | None = None,
        at: datetime | None = None,
    ) -> Callable[[sqlite3.Connection], None]:
        """What :meth:`record_read` writes, as a job for this data store's store."""
        row = (meter, (at or datetime.now(UTC)).timestamp(), use_case, int(ok), error)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO ds_read VALUES (?,?,?,?,?)", row)

        return job

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
    def oldest_kept(self) -> datetime:
        """The oldest moment the retention keeps: rows before it are (or will soon be)
        pruned, so a query window starting earlier is answered from here."""
        return datetime.fromtimestamp(self.clock() - self.retention_s, UTC)

    async def query(
        self,
        meter: str,
        start: datetime,
        end: datetime,
        max_intervals: int = 2000,
        *,
        max_bytes: int | None = None,
        max_register_rows: int | None = None,
    ) -> QueryResult:
        """Registers and intervals of ``meter`` stamped in ``[start, end)``, oldest first;
        at most ``max_intervals`` interval stamps (all reading types of one stamp together),
        at most ``max_register_rows`` register rows (default 16 per interval stamp) and,
        with ``max_bytes``, about that many bytes rendered (the oldest stamp always). When
        more is stored: ``truncated`` and ``next_start`` (the first stamp left out).
        Everything, the SQL and the shaping of the rows, runs on the store's thread."""
        a, b = start.timestamp(), end.timestamp()
        reg_limit = max_register_rows if max_register_rows is not None else 16 * max_intervals

        def job(conn: sqlite3.Connection) -> QueryResult:
            stamps = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT ts FROM ds_interval WHERE meter_id=? AND ts>=? AND ts<?"
                    " ORDER BY ts LIMIT ?",
                    (meter, a, b, max_intervals + 1),
                )
            ]
            upper = stamps[max_intervals] if len(stamps) > max_intervals else b
            regs = list(
                conn.execute(
                    "SELECT obis, ref, unit, ts, value FROM ds_register"
                    " WHERE meter_id=? AND ts>=? AND ts<? ORDER BY ts, obis LIMIT ?",
                    (meter, a, upper, reg_limit + 1),
                )
            )
            if len(regs) > reg_limit:
                upper = regs[reg_limit][3]
            ivs = list(
                conn.execute(
                    "SELECT ref, obis, unit, ts, value, qualities FROM ds_interval"
                    " WHERE meter_id=? AND ts>=? AND ts<? ORDER BY ref, ts",
                    (meter, a, upper),
                )
            )
            items = [
                (ts, ref, obis, unit, _interval_item(ts, value, qualities))
                for ref, obis, unit, ts, value, qualities in ivs
            ]
            readings = [
                (
                    ts,
                    Reading(
                        ref=ref,
                        obis=obis,
                        unit=unit,
                        timestamp=datetime.fromtimestamp(ts, UTC),
                        value=json.loads(v),
                    ),
                )
                for obis, ref, unit, ts, v in regs
                if ts < upper
            ]
            costs = [(it[0], len(dumps(it[4])) + 1) for it in items]
            costs += [(ts, len(dumps({**r, "timestamp": ""})) + 40) for ts, r in readings]
            heads = sum(
                len(ref) + len(obis or "") + len(unit or "") + 80
                for ref, obis, unit in {(it[1], it[2], it[3]) for it in items}
            )
            by_bytes = False
            if max_bytes is not None:
                cut = cut_point(costs, max_bytes - heads - len(meter) - 60)
                if cut is not None:
                    upper, by_bytes = cut, True
            blocks: dict[str, dict[str, Any]] = {}
            size = heads + len(meter) + 60
            for ts, ref, obis, unit, item in items:
                if ts >= upper:
                    continue
                block = blocks.get(ref)
                if block is None:
                    rt = {
                        "ref": ref,
                        **({"obis": obis} if obis else {}),
                        **({"unit": unit} if unit else {}),
                    }
                    block = blocks[ref] = {"ReadingType": rt, "IntervalReadings": []}
                block["IntervalReadings"].append(item)
            size += sum(c for ts, c in costs if ts < upper)
            kept = sum(1 for ts in stamps[:max_intervals] if ts < upper)
            truncated = upper < b
            return QueryResult(
                meter,
                [r for ts, r in readings if ts < upper],
                list(blocks.values()),
                kept,
                truncated,
                datetime.fromtimestamp(upper, UTC) if truncated else None,
                size,
                by_bytes,
            )

        result: QueryResult = await self._job(job)
        return result

    async def report(
        self,
        meter: str,
        start: datetime,
        end: datetime,
        period_s: int | None = None,
        *,
        max_stamps: int | None = None,
        max_gaps: int | None = None,
    ) -> Report:
        """Expected vs received intervals (period given or inferred from the stored
        stamps), the gaps, reads ok/failed and event counts by type, over ``[start, end)``.

        At most ``max_stamps`` stored stamps are read (more: :class:`TooMuchStored`); with
        more than ``max_gaps`` gaps the report ends where the first gap left out starts
        (``truncated``, ``end`` moved there). The work is O(stored stamps), whatever the
        window's length, and all of it runs on the store's thread."""
        a = start.timestamp()

        def job(conn: sqlite3.Connection) -> Report:
            limit = -1 if max_stamps is None else max_stamps + 1
            stamps = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT ts FROM ds_interval WHERE meter_id=? AND ts>=? AND ts<?"
                    " ORDER BY ts LIMIT ?",
                    (meter, a, end.timestamp(), limit),
                )
            ]
            if max_stamps is not None and len(stamps) > max_stamps:
                raise TooMuchStored(meter, max_stamps)
            scanned = len(stamps)
            period = period_s or infer_period(stamps)
            upto = end
            gaps = find_gaps(stamps, start, end, period) if period else []
            truncated = max_gaps is not None and len(gaps) > max_gaps
            if truncated:
                assert max_gaps is not None
                upto = gaps[max_gaps].start
                gaps = gaps[:max_gaps]
                stamps = [t for t in stamps if t < upto.timestamp()]
            b = upto.timestamp()
            reads = list(
                conn.execute(
                    "SELECT ok, COUNT(*) FROM ds_read WHERE meter_id=? AND ts>=? AND ts<?"
                    " GROUP BY ok",
                    (meter, a, b),
                )
            )
            events = list(
                conn.execute(
                    "SELECT type_ref, COUNT(*) FROM ds_event WHERE meter_id=? AND ts>=? AND ts<?"
                    " GROUP BY type_ref",
                    (meter, a, b),
                )
            )
            expected = expected_stamps(start, upto, period) if period else 0
            by_ok = {bool(ok): n for ok, n in reads}
            return Report(
                meter,
                start,
                upto,
                period,
                expected,
                len(stamps),
                gaps,
                by_ok.get(True, 0),
                by_ok.get(False, 0),
                {t: n for t, n in events},
                truncated,
                scanned,
            )

        report: Report = await self._job(job)
        return report


def _interval_item(ts: float, value: str, qualities: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"timeStamp": _iso(ts), "value": json.loads(value)}
    if qualities:
        item["ReadingQualities"] = json.loads(qualities)
    return item


class RecordingPublisher:
    """The head-end's publisher: the uplink's, plus a copy of readings and events here."""

    def __init__(self, inner: Any, data: DataStore) -> None:
        self.inner = inner
        self.data = data
        self.topics: Topics = inner.topics

    async def publish_reading(
        self,
        meter: str,
        readings: Sequence[Reading] = (),
        interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
        message_id: str | None = None,
        *,
        record: bool = True,
    ) -> str:
        """Publish; with ``record`` also keep the copy here first (without: the caller
        writes :meth:`DataStore.record_readings_job` in its own transaction)."""
        if record:
            try:
                await self.data.record_readings(meter, readings, interval_blocks)
            except (sqlite3.Error, StoreClosed, ValueError, KeyError, TypeError) as exc:
                log.error("datastore_write_failed", meter_id=meter, kind="readings", error=str(exc))
        message: str = await self.inner.publish_reading(
            meter, readings, interval_blocks, message_id=message_id
        )
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
