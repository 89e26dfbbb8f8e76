"""The daily bulk export in bounded parts (issue 11 item 4).

What each scheduled collection read is kept in ``bulk_pending`` (fleet.sqlite). An export
takes one day's rows and publishes them on ``bulk/readings`` as MeterReadings messages no
larger than ``[export] part_max_bytes`` each, *the whole message* (envelope included):
part k of n, all with one ``exportId`` (``payload.BulkExport``: ``exportId``, ``day``,
``part``, ``parts``). A meter's data (its newest value of each register, then its
interval blocks) fills parts in meter order; when it does not fit, it goes on in the next
part, in an entry of the same meter (``Readings`` empty there), and an interval block
too large for one part is split by intervals into blocks of the same ReadingType.

Resumable without duplicates: the export is planned first (the rows it covers, the part
boundaries, the size used) and the plan is stored before part 1 is published; each part
has a deterministic messageId (a name hash of the exportId and k) and the next part to
publish is stored after each part. After a crash the plan is taken up again: the part
that was being published is published again under the same messageId, which the outbox
stores only once while it is pending (a part that was already delivered in the
milliseconds before the crash is delivered again under the same messageId: consumers keep
(exportId, part) and drop repeats), then the parts after it. Only when every part is in
the outbox (and the files are written, with ``[export] directory``) are the day's rows
deleted, in one transaction with the export's "finished" mark.

Files (``[export] directory``): ``{gateway}_{day}_{exportId}_readings.csv``, the same
readings as rows (:mod:`~smmc_gateway.headend.export_files`), written atomically.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.headend.export_files import (
    READING_COLUMNS,
    AtomicCsv,
    interval_rows,
    reading_rows,
)
from smmc_gateway.headend.paging import dumps
from smmc_gateway.uplink.envelope import (
    Draft,
    MessageClass,
    MeterReadingPart,
    Reading,
    meter_readings_payload,
    render,
)
from smmc_gateway.uplink.store import Store
from smmc_gateway.uplink.topics import Topics

log = structlog.get_logger("smmc_gateway.bulk_export")
_CODE = re.compile(r"-?\d+(\.-?\d+){17}")  # an 18-part ReadingType code

# Tables bulk_pending, bulk_done, bulk_export: created by the migrations of
# smmc_gateway.headend.persistence (the fleet database is migrated when it is opened).
EXPORT_NAMESPACE = uuid.UUID("8d1c7c3e-43a9-5b52-a1f4-6f0e2b9c5d17")
"""uuid5 namespace of exportIds and part messageIds (fixed: changing it changes ids)."""
_MID = b'],"IntervalBlocks":['
_CLOSE = b"]}"
_METERS_PER_LOAD = 200


def _uuid(name: str) -> str:
    # uuid5's name hash stamped version 4, as the envelope schema's messageId pattern wants
    return str(uuid.UUID(bytes=uuid.uuid5(EXPORT_NAMESPACE, name).bytes, version=4))


def export_id(gateway: str, day: str, upto: int) -> str:
    return _uuid(f"export\x1f{gateway}\x1f{day}\x1f{upto}")


def part_message_id(export: str, part: int) -> str:
    return _uuid(f"part\x1f{export}\x1f{part}")


def _kept_reading(r: dict[str, Any]) -> Reading:
    """A register reading kept for the bulk export (JSON) back as a Reading. One kept by a
    gateway before the IEC 61968-9 codes has its register name as ``ref``: it gets its
    code, the old ref becomes its name."""
    ref, name = str(r["ref"]), r.get("name")
    if not _CODE.fullmatch(ref):
        ref, name = reading_type(r["obis"], r["unit"]), name or ref
    reading = Reading(
        ref=ref,
        obis=r["obis"],
        unit=r["unit"],
        timestamp=datetime.fromisoformat(r["timestamp"]),
        value=r["value"],
    )
    if name:
        reading["name"] = str(name)
    return reading


def _kept_blocks(blocks: bytes) -> bytes:
    """Interval blocks kept for the bulk export, as kept; blocks kept by a gateway before
    the IEC 61968-9 codes (ref ``obis:...``) get their code, the capture period taken from
    their first two stamps."""
    if b'"ref":"obis:' not in blocks:
        return blocks
    parsed = json.loads(blocks)
    for block in parsed:
        rt = block.get("ReadingType", {})
        if str(rt.get("ref", "")).startswith("obis:"):
            stamps = [iv.get("timeStamp") for iv in block.get("IntervalReadings", [])[:2]]
            period = None
            if len(stamps) == 2 and all(isinstance(t, str) for t in stamps):
                a, b = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in stamps)
                period = int((b - a).total_seconds())
            rt["ref"] = reading_type(
                str(rt.get("obis", rt["ref"][5:])),
                str(rt.get("unit", "")),
                measuring_period_s=period,
            )
    return json.dumps(parsed, separators=(",", ":")).encode()


class BulkPublisher(Protocol):
    topics: Topics

    async def publish(self, drafts: Sequence[Draft]) -> list[str]: ...


@dataclass(frozen=True)
class Unit:
    """One piece of a meter's data in a part: a reading (``r``) or an interval block
    (``b``), rendered."""

    kind: str
    body: bytes


@dataclass
class MeterData:
    meter: str
    units: list[Unit]
    readings: list[dict[str, Any]]
    blocks: list[dict[str, Any]]


def _entry_open(meter: str) -> bytes:
    return b'{"Meter":' + dumps({"mRID": meter}) + b',"Readings":['


def _overhead(meter: str) -> int:
    return len(_entry_open(meter)) + len(_MID) + len(_CLOSE)


def split_block(block: Mapping[str, Any], cap: int) -> list[dict[str, Any]]:
    """``block`` as blocks of the same ReadingType, each rendered in at most ``cap`` bytes."""
    items = list(block.get("IntervalReadings", []))
    empty = len(dumps({**block, "IntervalReadings": []}))
    out: list[dict[str, Any]] = []
    chunk: list[Any] = []
    size = empty
    for item in items:
        cost = len(dumps(item)) + (1 if chunk else 0)
        if chunk and size + cost > cap:
            out.append({**block, "IntervalReadings": chunk})
            chunk, size, cost = [], empty, cost - 1
        if empty + cost > cap:
            raise ValueError(
                f"one interval reading of {cost} bytes does not fit a part "
                f"({cap} bytes for it): raise [export] part_max_bytes"
            )
        chunk.append(item)
        size += cost
    if chunk or not out:
        out.append({**block, "IntervalReadings": chunk})
    return out


def meter_data(meter: str, rows: Sequence[tuple[bytes | None, str]], unit_cap: int) -> MeterData:
    """A meter's units of one day from its ``bulk_pending`` rows (oldest first)."""
    latest: dict[str, Reading] = {}
    blocks: list[dict[str, Any]] = []
    for raw_blocks, regs in rows:
        for r in json.loads(regs):  # the newest value of each register of the day
            reading = _kept_reading(r)
            latest[reading["obis"]] = reading
        if raw_blocks:
            blocks.extend(json.loads(_kept_blocks(bytes(raw_blocks))))
    rendered = json.loads(
        meter_readings_payload([MeterReadingPart(meter=meter, readings=list(latest.values()))])
    )["MeterReading"][0]["Readings"]
    units = []
    for r in rendered:
        body = dumps(r)
        if len(body) > unit_cap:
            raise ValueError(
                f"meter {meter}: one reading of {len(body)} bytes does not fit a "
                "part: raise [export] part_max_bytes"
            )
        units.append(Unit("r", body))
    split: list[dict[str, Any]] = []
    for block in blocks:
        body = dumps(block)
        pieces = [block] if len(body) <= unit_cap else split_block(block, unit_cap)
        split.extend(pieces)
        units.extend(Unit("b", dumps(p)) for p in pieces)
    return MeterData(meter, units, rendered, split)


class Packer:
    """Decides where parts start: exact byte counts of the payload pieces."""

    def __init__(self, budget: int, base: int) -> None:
        self.budget = budget
        self.base = base
        self.starts: list[tuple[int, int]] = []  # (meter index, unit index) of each part
        self._size = 0
        self._meter: int | None = None
        self._entries = 0
        self._r = self._b = 0

    def _new_part(self, meter: int, unit: int) -> None:
        self.starts.append((meter, unit))
        self._size, self._meter, self._entries = self.base, None, 0

    def add(self, index: int, meter: str, unit_index: int, unit: Unit) -> None:
        if not self.starts:
            self._new_part(index, unit_index)
        cost = self._cost(index, meter, unit)
        if self._size + cost > self.budget and self._entries:
            self._new_part(index, unit_index)
            cost = self._cost(index, meter, unit)
        if self._meter != index:
            self._meter, self._entries, self._r, self._b = index, self._entries + 1, 0, 0
        if unit.kind == "r":
            self._r += 1
        else:
            self._b += 1
        self._size += cost

    def _cost(self, index: int, meter: str, unit: Unit) -> int:
        cost = len(unit.body)
        if self._meter != index:
            cost += _overhead(meter) + (1 if self._entries else 0)
        elif self._r if unit.kind == "r" else self._b:
            cost += 1
        return cost


def render_part(info: Mapping[str, Any], pieces: Sequence[tuple[str, list[Unit]]]) -> bytes:
    """The payload of one part: BulkExport and one MeterReading entry per (meter, units)."""
    entries = []
    for meter, units in pieces:
        regs = b",".join(u.body for u in units if u.kind == "r")
        blocks = b",".join(u.body for u in units if u.kind == "b")
        entries.append(_entry_open(meter) + regs + _MID + blocks + _CLOSE)
    return b'{"BulkExport":' + dumps(dict(info)) + b',"MeterReading":[' + b",".join(entries) + b"]}"


@dataclass
class Plan:
    export_id: str
    day: str
    upto: int
    max_bytes: int
    parts: int
    starts: list[tuple[int, int]]
    next_part: int
    meters: list[str]


class BulkExporter:
    """Keeps what collections read and exports it in parts (and files)."""

    def __init__(
        self,
        store: Store,
        publisher: BulkPublisher,
        *,
        max_bytes: int = 256 << 10,
        directory: Path | None = None,
        formats: Sequence[str] = ("csv",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.max_bytes = max_bytes
        self.directory = directory
        self.formats = tuple(formats)
        self.clock = clock
        self._lock = asyncio.Lock()  # one export at a time (the daily one, the start's)

    async def keep(
        self, meter_id: str, day: date, blocks: bytes | None, readings: Sequence[Reading]
    ) -> None:
        await self.store.submit(self.keep_job(meter_id, day, blocks, readings))

    def keep_job(
        self, meter_id: str, day: date, blocks: bytes | None, readings: Sequence[Reading]
    ) -> Callable[[sqlite3.Connection], None]:
        """What :meth:`keep` writes, as a job for this exporter's store (for a caller that
        writes it in one transaction with other rows of the same database)."""
        regs = json.dumps([{**r, "timestamp": r["timestamp"].isoformat()} for r in readings])
        row = (day.isoformat(), meter_id, blocks, regs)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO bulk_pending (day, meter_id, blocks, readings) VALUES (?,?,?,?)", row
            )

        return job

    # -- sizes ---------------------------------------------------------------------------
    def _overheads(self, plan_bytes: int, day: str) -> tuple[int, int]:
        """(budget for the payload, bytes of the payload's fixed part) for parts of at most
        ``plan_bytes`` in all: the envelope measured by rendering one with the longest
        values it can take."""
        topics = self.publisher.topics
        probe = Draft(MessageClass.BULK, topics.bulk_readings(), "created", "MeterReadings", b"")
        envelope = len(
            render(
                probe,
                message_id="0" * 36,
                seq=2**63 - 1,
                timestamp=datetime(2000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
                source=topics.gateway,
            )
        )
        info = {"exportId": "0" * 36, "day": day, "part": 10**9, "parts": 10**9}
        base = len(render_part(info, []))
        return plan_bytes - envelope, base

    # -- export --------------------------------------------------------------------------
    async def export(self, up_to: date) -> int:
        """Finish unfinished exports, then export every pending day up to ``up_to``
        (inclusive); returns the meters exported."""
        async with self._lock:
            return await self._export(up_to)

    async def _export(self, up_to: date) -> int:
        count = 0
        for plan in await self._unfinished():
            count += await self._run(plan)
        last = up_to.isoformat()

        def days(conn: sqlite3.Connection) -> list[str]:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT day FROM bulk_pending WHERE day <= ? ORDER BY day", (last,)
                )
            ]

        for day in await self.store.submit(days):
            planned = await self._plan(day)
            if planned is not None:
                count += await self._run(planned)
        return count

    async def _unfinished(self) -> list[Plan]:
        def job(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return list(
                conn.execute(
                    "SELECT export_id, day, upto, max_bytes, parts, starts, next_part FROM "
                    "bulk_export WHERE finished IS NULL ORDER BY created, day"
                )
            )

        plans = []
        for eid, day, upto, size, parts, starts, nxt in await self.store.submit(job):
            meters = await self._meters(day, upto)
            bounds = [(int(a), int(b)) for a, b in json.loads(starts)]
            plans.append(Plan(eid, day, upto, size, parts, bounds, nxt, meters))
            log.info("bulk_export_resumed", export_id=eid, day=day, next_part=nxt, parts=parts)
        return plans

    async def _meters(self, day: str, upto: int) -> list[str]:
        def job(conn: sqlite3.Connection) -> list[str]:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT meter_id FROM bulk_pending WHERE day=? AND id<=? ORDER BY "
                    "meter_id",
                    (day, upto),
                )
            ]

        meters: list[str] = await self.store.submit(job)
        return meters

    async def _load(
        self, day: str, upto: int, meters: Sequence[str], unit_cap: int
    ) -> list[MeterData]:
        def job(conn: sqlite3.Connection) -> dict[str, list[tuple[bytes | None, str]]]:
            marks = ",".join("?" * len(meters))
            out: dict[str, list[tuple[bytes | None, str]]] = {m: [] for m in meters}
            for m, blocks, regs in conn.execute(
                f"SELECT meter_id, blocks, readings FROM bulk_pending WHERE day=? AND "
                f"id<=? AND meter_id IN ({marks}) ORDER BY meter_id, id",
                (day, upto, *meters),
            ):
                out[m].append((blocks, regs))
            return out

        rows = await self.store.submit(job)
        return await asyncio.to_thread(lambda: [meter_data(m, rows[m], unit_cap) for m in meters])

    async def _batches(
        self, plan: Plan, first: int = 0, last: int | None = None
    ) -> AsyncIterator[tuple[int, MeterData]]:
        budget, base = self._overheads(plan.max_bytes, plan.day)
        cap = budget - base - max((_overhead(m) for m in plan.meters), default=0)
        end = len(plan.meters) if last is None else last + 1
        for i in range(first, end, _METERS_PER_LOAD):
            chunk = plan.meters[i : min(i + _METERS_PER_LOAD, end)]
            for j, data in enumerate(await self._load(plan.day, plan.upto, chunk, cap)):
                yield i + j, data

    async def _plan(self, day: str) -> Plan | None:
        def job(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT MAX(id) FROM bulk_pending WHERE day=?", (day,)).fetchone()
            return None if row[0] is None else int(row[0])

        upto = await self.store.submit(job)
        if upto is None:
            return None
        meters = await self._meters(day, upto)
        plan = Plan(
            export_id(self.publisher.topics.gateway, day, upto),
            day,
            upto,
            self.max_bytes,
            0,
            [],
            1,
            meters,
        )
        budget, base = self._overheads(plan.max_bytes, day)
        packer = Packer(budget, base)
        async for index, data in self._batches(plan):
            for k, unit in enumerate(data.units):
                packer.add(index, data.meter, k, unit)
            if not data.units:  # a meter with nothing kept still gets its (empty) entry
                packer.add(index, data.meter, 0, Unit("r", b""))
        plan.starts = packer.starts
        plan.parts = len(packer.starts)
        row = (
            plan.export_id,
            day,
            upto,
            plan.max_bytes,
            plan.parts,
            json.dumps(plan.starts),
            len(meters),
            self.clock(),
        )

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO bulk_export (export_id, day, upto, max_bytes, "
                "parts, starts, next_part, meters, created) VALUES (?,?,?,?,?,?,1,?,?)",
                row,
            )

        await self.store.submit(save)
        log.info(
            "bulk_export_planned",
            export_id=plan.export_id,
            day=day,
            meters=len(meters),
            parts=plan.parts,
            max_bytes=plan.max_bytes,
        )
        return plan

    async def _run(self, plan: Plan) -> int:
        for k in range(plan.next_part, plan.parts + 1):
            payload = await self._part(plan, k)
            draft = Draft(
                MessageClass.BULK,
                self.publisher.topics.bulk_readings(),
                "created",
                "MeterReadings",
                payload,
                message_id=part_message_id(plan.export_id, k),
            )
            await self.publisher.publish([draft])

            def step(conn: sqlite3.Connection, nxt: int = k + 1) -> None:
                conn.execute(
                    "UPDATE bulk_export SET next_part=? WHERE export_id=?", (nxt, plan.export_id)
                )

            await self.store.submit(step)
        if self.directory is not None and "csv" in self.formats:
            await self._files(plan)

        def done(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM bulk_pending WHERE day=? AND id<=?", (plan.day, plan.upto))
            conn.execute(
                "UPDATE bulk_export SET finished=? WHERE export_id=?",
                (self.clock(), plan.export_id),
            )
            conn.execute(
                "INSERT OR REPLACE INTO bulk_done (day, exported) VALUES (?,?)",
                (plan.day, self.clock()),
            )

        await self.store.submit(done)
        log.info(
            "bulk_exported",
            export_id=plan.export_id,
            day=plan.day,
            meters=len(plan.meters),
            parts=plan.parts,
        )
        return len(plan.meters)

    async def _part(self, plan: Plan, k: int) -> bytes:
        start = plan.starts[k - 1]
        end = plan.starts[k] if k < plan.parts else (len(plan.meters), 0)
        last = end[0] if end[1] > 0 else end[0] - 1
        pieces: list[tuple[str, list[Unit]]] = []
        async for index, data in self._batches(plan, start[0], min(last, len(plan.meters) - 1)):
            lo = start[1] if index == start[0] else 0
            hi = end[1] if index == end[0] else len(data.units)
            pieces.append((data.meter, data.units[lo:hi]))
        info = {"exportId": plan.export_id, "day": plan.day, "part": k, "parts": plan.parts}
        payload = render_part(info, pieces)
        budget, _ = self._overheads(plan.max_bytes, plan.day)
        if len(payload) > budget:  # the packer's arithmetic is exact: this is a bug
            log.error(
                "bulk_part_over_budget",
                export_id=plan.export_id,
                part=k,
                size=len(payload),
                budget=budget,
            )
        return payload

    async def _files(self, plan: Plan) -> None:
        assert self.directory is not None
        gateway = self.publisher.topics.gateway
        path = self.directory / f"{gateway}_{plan.day}_{plan.export_id}_readings.csv"
        if await asyncio.to_thread(path.exists):
            return  # written before a crash that came before the export's finished mark
        writer = await asyncio.to_thread(AtomicCsv, path, READING_COLUMNS)
        try:
            async for _, data in self._batches(plan):
                rows = [
                    *reading_rows(data.meter, data.readings),
                    *interval_rows(data.meter, data.blocks),
                ]
                await asyncio.to_thread(writer.write, rows)
            await asyncio.to_thread(writer.commit)
        finally:
            await asyncio.to_thread(writer.abort)
        log.info("bulk_export_file_written", path=str(path), rows=writer.rows)
