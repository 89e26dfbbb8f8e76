"""The head-end service: use cases run on scheduled or commanded sessions, results out.

:class:`HeadEnd` is what both the scheduler's periodic jobs and the command
dispatcher call. Each operation takes a session slot from the
:class:`~smmc_gateway.headend.scheduler.Scheduler` at its priority, runs one use
case, updates the meter's persisted state and hands payloads to the uplink
(readings, events); the uplink stores them durably before anything else happens.
It also keeps what the daily bulk export needs (``bulk_pending`` in fleet.sqlite) and,
per meter and event log, where event publishing stopped (``event_marks``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import structlog

from smmc_gateway.cim.reading_types import reading_type
from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.headend.datastore import DataStore, RecordingPublisher
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.scheduler import GatewayStopping, Scheduler
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.ops.metrics import GatewayMetrics
from smmc_gateway.uplink.envelope import (
    Draft,
    Event,
    MessageClass,
    MeterReadingPart,
    Reading,
    reading_message_id,
)
from smmc_gateway.uplink.envelope import event as new_event
from smmc_gateway.uplink.store import StoreClosed
from smmc_gateway.uplink.topics import Topics
from smmc_gateway.usecases import account as account_uc
from smmc_gateway.usecases import clock as clock_uc
from smmc_gateway.usecases import connect as connect_uc
from smmc_gateway.usecases import discovery as discovery_uc
from smmc_gateway.usecases import events as events_uc
from smmc_gateway.usecases import limiter as limiter_uc
from smmc_gateway.usecases import oms as oms_uc
from smmc_gateway.usecases.readings import ReadingsResult, ReadingsUseCase, registers_for

log = structlog.get_logger("smmc_gateway.headend")
_CODE = re.compile(r"-?\d+(\.-?\d+){17}")  # an 18-part ReadingType code

BULK_SCHEMA = """
CREATE TABLE IF NOT EXISTS bulk_pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, meter_id TEXT NOT NULL,
  blocks BLOB, readings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_done (day TEXT PRIMARY KEY, exported REAL NOT NULL);
"""
EVENT_MARKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_marks (
  meter_id TEXT NOT NULL, log TEXT NOT NULL, stamp REAL, count INTEGER NOT NULL,
  PRIMARY KEY (meter_id, log));
"""

# Event names published by the gateway; each has its IEC 61968-9 EndDeviceEventType code in
# smmc_gateway.cim.event_types (docs/event-codes.md), published beside it.
EV_CLOCK_ADJUSTED = "smmc.clock.adjusted"
EV_CLOCK_CHECKED = "smmc.clock.checked"
EV_CLOCK_REFUSED = "smmc.clock.syncRefused"
EV_READING_GAP = "smmc.readings.gap"
EV_DISCONNECTED = "smmc.switch.disconnected"
EV_CONNECTED = "smmc.switch.connected"
EV_LIMIT_SET = "smmc.limiter.configured"
EV_EMERGENCY_SET = "smmc.limiter.emergencyScheduled"
EV_ACCOUNT_STEP = "smmc.account.step"
EV_FINAL_READ = "smmc.account.finalRead"
EV_OPENING_READ = "smmc.account.openingRead"
EV_MODEL_MISMATCH = "smmc.discovery.modelMismatch"


class Publisher(Protocol):
    """The part of the uplink the head-end uses."""

    async def publish_reading(self, meter: str, readings: Sequence[Reading] = (),
                              interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
                              message_id: str | None = None) -> str:
        """``message_id``: a caller-chosen, deterministic id (see uplink.envelope)."""

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str: ...

    async def publish_bulk(self, parts: Sequence[MeterReadingPart]) -> str: ...

    topics: Topics

    async def publish(self, drafts: Sequence[Draft]) -> list[str]: ...


@dataclass
class SyncOutcome:
    result: clock_uc.ClockResult | None
    refused: str | None = None


def _event(name: str, reason: str, details: str, at: datetime | None = None) -> Event:
    return new_event(name, reason=reason, details=details, created=at)


def _kept_reading(r: dict[str, Any]) -> Reading:
    """A register reading kept for the bulk export (JSON) back as a Reading. One kept by a
    gateway before the IEC 61968-9 codes has its register name as ``ref``: it gets its
    code, the old ref becomes its name."""
    ref, name = str(r["ref"]), r.get("name")
    if not _CODE.fullmatch(ref):
        ref, name = reading_type(r["obis"], r["unit"]), name or ref
    reading = Reading(ref=ref, obis=r["obis"], unit=r["unit"],
                      timestamp=datetime.fromisoformat(r["timestamp"]), value=r["value"])
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
            rt["ref"] = reading_type(str(rt.get("obis", rt["ref"][5:])), str(rt.get("unit", "")),
                                     measuring_period_s=period)
    return json.dumps(parsed, separators=(",", ":")).encode()


class HeadEnd:
    """Use cases over scheduled sessions, results to the uplink."""

    def __init__(self, fleet: Fleet, scheduler: Scheduler, publisher: Publisher,
                 models: Mapping[str, ModelConfig], *, time_source: clock_uc.TimeSource,
                 tolerance_s: float = 2.0, shift_limit_s: float = 900.0,
                 metrics: GatewayMetrics | None = None, first_read_s: float = 86400.0) -> None:
        self.fleet = fleet
        self.scheduler = scheduler
        self.datastore = DataStore(fleet.store)  # use cases 3 and 11: what is published, kept
        self.publisher: Publisher = RecordingPublisher(publisher, self.datastore)
        self.models = models
        self.time_source = time_source
        self.tolerance_s = tolerance_s
        self.shift_limit_s = shift_limit_s
        self.metrics = metrics
        self.readings = ReadingsUseCase(first_read_s=first_read_s)
        self.first_read_s = first_read_s
        self._bulk_ready = False
        self._marks: dict[tuple[str, str], events_uc.LogMark] | None = None
        self._alarm_bits: dict[str, int] = {}

    def model_of(self, meter_id: str) -> ModelConfig:
        return self.models[self.fleet.meter(meter_id).model]

    def obis(self, meter_id: str, name: str) -> str:
        return self.model_of(meter_id).obis[name]

    def _done(self, use_case: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.read_done(use_case, ok)

    async def _note_read(self, meter_id: str, use_case: str, exc: BaseException | None) -> None:
        """A scheduled read's outcome, for the read-success report (use case 11)."""
        if isinstance(exc, GatewayStopping | asyncio.CancelledError):
            return
        try:
            await self.datastore.record_read(meter_id, use_case, exc is None,
                                             None if exc is None else repr(exc))
        except (sqlite3.Error, StoreClosed) as err:
            log.error("datastore_write_failed", meter_id=meter_id, kind="read", error=str(err))

    # -- use case 2: scheduled collection ------------------------------------------
    async def collect(self, meter_id: str, priority: Priority = Priority.READ) -> ReadingsResult:
        state = self.fleet.state(meter_id)
        model = self.model_of(meter_id)
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                result = await self.readings.collect(s, meter_id, model, state.last_entry)
        except BaseException as exc:
            self._done("collect", False)
            await self._note_read(meter_id, "collect", exc)
            raise
        profile = result.profile
        await self.publisher.publish_reading(
            meter_id, result.readings, profile.interval_blocks if profile else None,
            message_id=self._collect_id(meter_id, state.last_entry, result))
        if profile is not None and profile.gaps:
            await self.publisher.publish_event(meter_id, [
                _event(EV_READING_GAP, "loadProfileGap",
                       f"{g.missing} interval(s) missing from {g.start.isoformat()} "
                       f"to {g.end.isoformat()}") for g in profile.gaps])
        await self._keep_for_bulk(meter_id, result)
        if profile is not None and profile.newest is not None:
            state.last_entry = profile.newest
            await self.fleet.save(state)
        self._done("collect", True)
        await self._note_read(meter_id, "collect", None)
        log.info("meter_collected", meter_id=meter_id,
                 rows=profile.rows if profile else 0, registers=len(result.readings))
        return result

    def _collect_id(self, meter_id: str, since: datetime | None, result: ReadingsResult) -> str:
        """Deterministic messageId of a scheduled collection (see uplink.envelope).

        With profile rows, the id names the interval data: rows after ``since`` (the
        saved progress) up to the newest row, and their count; a re-read after a crash
        before the progress was saved gives the same id, more rows a different one. The
        register snapshot in the same message is not part of the id. Without rows, the
        id names the registers' capture time."""
        gateway = self.publisher.topics.gateway
        profile = result.profile
        if profile is not None and profile.rows and profile.newest is not None:
            return reading_message_id(gateway, meter_id, "profile", since, profile.newest,
                                      str(profile.rows))
        at = result.readings[0]["timestamp"] if result.readings else None
        return reading_message_id(gateway, meter_id, "registers", at, at)

    async def read_registers(self, meter_id: str) -> list[Reading]:
        """The scheduled register read (between two profile collections)."""
        model = self.model_of(meter_id)
        try:
            async with self.scheduler.session(meter_id, Priority.READ) as s:
                regs = await self.readings.read_registers(s, model.registers, datetime.now(UTC),
                                                          model=model.name)
        except BaseException as exc:
            self._done("registers", False)
            await self._note_read(meter_id, "registers", exc)
            raise
        if regs:
            at = regs[0]["timestamp"]
            await self.publisher.publish_reading(meter_id, regs, message_id=reading_message_id(
                self.publisher.topics.gateway, meter_id, "registers", at, at))
        self._done("registers", True)
        await self._note_read(meter_id, "registers", None)
        return regs

    async def read_on_demand(self, meter_id: str, obis: Sequence[str] | None,
                             start: datetime | None, end: datetime | None) -> ReadingsResult:
        model = self.model_of(meter_id)
        now = datetime.now(UTC)
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            regs = await self.readings.read_registers(s, registers_for(model, obis), now,
                                                      model=model.name)
            profile = None
            if start is not None:
                profile = await self.readings.read_profile(
                    s, model, start - timedelta(seconds=1), end or now)
        self._done("on_demand", True)
        return ReadingsResult(meter_id, regs, profile)

    # -- bulk export -----------------------------------------------------------------
    async def _bulk_store(self) -> None:
        if not self._bulk_ready:
            self.fleet.store.execute_script(BULK_SCHEMA)
            self._bulk_ready = True

    async def _keep_for_bulk(self, meter_id: str, result: ReadingsResult) -> None:
        await self._bulk_store()
        day = datetime.now(UTC).date().isoformat()
        blocks = result.profile.interval_blocks if result.profile else None
        regs = json.dumps([{**r, "timestamp": r["timestamp"].isoformat()}
                           for r in result.readings])

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO bulk_pending (day, meter_id, blocks, readings)"
                         " VALUES (?,?,?,?)", (day, meter_id, blocks, regs))

        await self.fleet.store.submit(job)

    async def bulk_export(self, up_to: date | None = None) -> int:
        """Publish one bulk MeterReadings per pending day up to ``up_to`` (inclusive);
        returns the number of meters exported. Rows are deleted in the same order."""
        await self._bulk_store()
        last = (up_to or datetime.now(UTC).date()).isoformat()

        def take(conn: sqlite3.Connection) -> list[tuple[str, str, bytes | None, str]]:
            return list(conn.execute("SELECT day, meter_id, blocks, readings FROM bulk_pending"
                                     " WHERE day <= ? ORDER BY id", (last,)))

        rows = await self.fleet.store.submit(take)
        if not rows:
            return 0
        by_day: dict[str, dict[str, tuple[list[bytes], list[Reading]]]] = {}
        for day, meter_id, blocks, regs in rows:
            blist, rlist = by_day.setdefault(day, {}).setdefault(meter_id, ([], []))
            if blocks:
                blist.append(_kept_blocks(bytes(blocks)).strip()[1:-1])
            for r in json.loads(regs):
                rlist.append(_kept_reading(r))
        count = 0
        for day, meters in sorted(by_day.items()):
            parts: list[MeterReadingPart] = []
            for meter_id, (blist, rlist) in meters.items():
                latest: dict[str, Reading] = {}
                for r in rlist:  # the newest value of each register of the day
                    latest[r["obis"]] = r
                part = MeterReadingPart(meter=meter_id, readings=list(latest.values()))
                joined = b",".join(b for b in blist if b)
                if joined:
                    part["interval_blocks"] = b"[" + joined + b"]"
                parts.append(part)
            await self.publisher.publish_bulk(parts)
            count += len(parts)

            def done(conn: sqlite3.Connection, d: str = day) -> None:
                conn.execute("DELETE FROM bulk_pending WHERE day = ?", (d,))
                conn.execute("INSERT OR REPLACE INTO bulk_done (day, exported) VALUES (?,?)",
                             (d, time.time()))

            await self.fleet.store.submit(done)
            log.info("bulk_exported", day=day, meters=len(parts))
        return count

    # -- use case 13: clock ------------------------------------------------------------
    async def sync_clock(self, meter_id: str, priority: Priority = Priority.READ,
                         force: bool = False) -> SyncOutcome:
        state = self.fleet.state(meter_id)
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                result = await clock_uc.synchronise(
                    s, meter_id, self.time_source, obis=self.obis(meter_id, "clock"),
                    tolerance_s=self.tolerance_s, shift_limit_s=self.shift_limit_s, force=force)
        except clock_uc.ClockNotSynchronised as exc:
            await self.publisher.publish_event(meter_id, [
                _event(EV_CLOCK_REFUSED, "concentratorClockUnsynchronised", str(exc))])
            self._done("clock", False)
            return SyncOutcome(None, str(exc))
        except BaseException:
            self._done("clock", False)
            raise
        state.clock_deviation_s = result.after_s if result.after_s is not None else \
            result.before_s
        await self.fleet.save(state)
        if self.metrics is not None:
            self.metrics.clock_deviation.observe(abs(result.before_s))
            if result.method != "none":
                self.metrics.clock_adjustments.labels(method=result.method).inc()
        kind = EV_CLOCK_ADJUSTED if result.method != "none" else EV_CLOCK_CHECKED
        await self.publisher.publish_event(meter_id, [
            _event(kind, result.method, clock_uc.describe(result))])
        self._done("clock", True)
        return SyncOutcome(result)

    # -- use case 6: connect / disconnect ------------------------------------------------
    async def switch(self, meter_id: str,
                     operation: connect_uc.Operation) -> connect_uc.SwitchResult:
        state = self.fleet.state(meter_id)
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            result = await connect_uc.operate(s, meter_id, operation,
                                              obis=self.obis(meter_id, "disconnect_control"))
        state.energised = result.after.output_state
        await self.fleet.save(state)
        kind = EV_DISCONNECTED if operation == "disconnect" else EV_CONNECTED
        await self.publisher.publish_event(meter_id, [_event(
            kind, operation, f"output_state {result.before.output_state} -> "
            f"{result.after.output_state}, control_state {result.before.control_state} -> "
            f"{result.after.control_state}")])
        return result

    # -- use case 7: OMS poll ------------------------------------------------------------
    async def poll(self, meter_ids: Sequence[str],
                   timeout_s: float = 30.0) -> list[oms_uc.PollResult]:
        if self.scheduler.stopping:
            raise GatewayStopping("the gateway is stopping; the poll is served after restart")

        def open_session(m: str) -> Any:
            return self.scheduler.session(m, Priority.COMMAND)

        results = await oms_uc.poll(
            open_session, meter_ids, clock_obis=lambda m: self.obis(m, "clock"),
            disconnect_obis=lambda m: self.obis(m, "disconnect_control"), timeout_s=timeout_s)
        for r in results:
            st = self.fleet.state(r.meter_id)
            if r.state != "unreachable":
                st.energised = r.state == "energised"
        await self.fleet.save(*(self.fleet.state(r.meter_id) for r in results))
        return results


    # -- use case 14 / 8 (DR): limiter ---------------------------------------------------
    async def limit(self, meter_id: str, threshold_w: int | None, min_over_s: int | None,
                    min_under_s: int | None, off: bool = False) -> limiter_uc.LimiterState:
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            state = await limiter_uc.set_limit(
                s, self.obis(meter_id, "limiter"), threshold_w=threshold_w,
                min_over_s=min_over_s, min_under_s=min_under_s, off=off)
        await self.publisher.publish_event(meter_id, [
            _event(EV_LIMIT_SET, "limitOff" if off else "limit", state.describe())])
        return state

    async def emergency(self, meter_id: str, profile_id: int, start: datetime,
                        duration_s: int, threshold_w: int) -> limiter_uc.EmergencyState:
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            state = await limiter_uc.schedule_emergency(
                s, self.obis(meter_id, "limiter"), profile_id=profile_id, start=start,
                duration_s=duration_s, threshold_w=threshold_w,
                clock_obis=self.obis(meter_id, "clock"))
        await self.publisher.publish_event(meter_id, [
            _event(EV_EMERGENCY_SET, "demandResponse", state.describe())])
        return state

    # -- use case 7: event logs and alarm pushes ------------------------------------------
    async def _load_marks(self) -> dict[tuple[str, str], events_uc.LogMark]:
        if self._marks is None:
            self.fleet.store.execute_script(EVENT_MARKS_SCHEMA)

            def load(conn: sqlite3.Connection) -> list[tuple[str, str, float | None, int]]:
                return list(conn.execute("SELECT meter_id, log, stamp, count FROM event_marks"))

            self._marks = {
                (m, log_key): events_uc.LogMark(
                    None if t is None else datetime.fromtimestamp(t, UTC), int(c))
                for m, log_key, t, c in await self.fleet.store.submit(load)}
        return self._marks

    async def poll_events(self, meter_id: str, priority: Priority = Priority.READ
                          ) -> list[Event]:
        """New rows of every event log of the meter, published as EndDeviceEvents; each
        log's mark is stored only after its events are in the outbox."""
        marks = await self._load_marks()
        model = self.model_of(meter_id)
        now = datetime.now(UTC)
        found: list[tuple[str, list[events_uc.MeterEvent], events_uc.LogMark]] = []
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                for key in events_uc.LOGS:
                    obis = model.obis[key]
                    try:
                        evs, mark = await events_uc.read_log(
                            s, key, obis, marks.get((meter_id, key), events_uc.LogMark()),
                            now, self.first_read_s)
                    except events_uc.LogMissing as exc:
                        log.warning("event_log_missing", meter_id=meter_id, log=str(exc))
                        continue
                    found.append((key, evs, mark))
        except BaseException:
            self._done("events", False)
            raise
        published: list[Event] = []
        for key, evs, mark in found:
            if evs:
                batch = [_event(e.name, e.log, e.details, e.at) for e in evs]
                await self.publisher.publish_event(meter_id, batch)
                published.extend(batch)
            if marks.get((meter_id, key)) != mark:
                marks[(meter_id, key)] = mark
                await self._save_mark(meter_id, key, mark)
        self._done("events", True)
        log.info("events_polled", meter_id=meter_id, events=len(published))
        return published

    async def _save_mark(self, meter_id: str, key: str, mark: events_uc.LogMark) -> None:
        row = (meter_id, key, None if mark.stamp is None else mark.stamp.timestamp(), mark.count)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO event_marks (meter_id, log, stamp, count)"
                         " VALUES (?,?,?,?)", row)

        await self.fleet.store.submit(job)

    def schedule_events(self, every_s: float, jitter_s: float = 0.0) -> None:
        """Poll every meter's event logs every ``every_s`` (``schedules.events_every``)."""
        async def job(meter_id: str) -> None:
            await self.poll_events(meter_id)

        self.scheduler.every("events", every_s, job, jitter_s=jitter_s)

    def alarm_events(self, push: PushEvent) -> list[Event]:
        """Named events (outage, restoration, limiter trip...) decoded from an alarm push;
        empty for other pushes. Bits already reported are not reported again while the
        meter keeps them set (see :func:`~smmc_gateway.usecases.events.named_alarms`)."""
        bits = events_uc.alarm_bits(push.body)
        if bits is None:
            return []
        previous = self._alarm_bits.get(push.meter_id, 0)
        self._alarm_bits[push.meter_id] = bits
        at = push.meter_time or push.received_at
        return [_event(kind, reason, f"alarm register 0x{bits:08x}: bit {bit}", at)
                for kind, reason, bit in events_uc.named_alarms(bits, previous)]

    # -- use case 12: account move ------------------------------------------------------
    async def move(self, meter_id: str, move: account_uc.Move) -> account_uc.MoveResult:
        """Move-out (final read published as MeterReadings, then disconnect) or move-in
        (reconnect, opening read); one event per step, naming the readings message."""
        model = self.model_of(meter_id)
        state = self.fleet.state(meter_id)
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            if move == "moveOut":
                result = await account_uc.move_out(s, meter_id, model, self.readings)
            else:
                result = await account_uc.move_in(s, meter_id, model, self.readings)
        if result.switch is not None:
            state.energised = result.switch.after.output_state
            await self.fleet.save(state)
        message = await self.publisher.publish_reading(meter_id, result.readings)  # even on error
        kind = EV_FINAL_READ if move == "moveOut" else EV_OPENING_READ
        evs = [_event(EV_ACCOUNT_STEP, move, step) for step in result.steps]
        evs.append(_event(kind, move, f"MeterReadings message {message}: "
                          f"{len(result.readings)} register(s)"
                          + (f"; last billing entry {json.dumps(result.billing_row)}"
                             if result.billing_row else "")))
        if result.switch is not None:
            evs.append(_event(EV_DISCONNECTED if move == "moveOut" else EV_CONNECTED, move,
                              f"control_state {result.switch.before.control_state} -> "
                              f"{result.switch.after.control_state}"))
        await self.publisher.publish_event(meter_id, evs)
        return result

    # -- use case 1: registration and discovery ------------------------------------------
    async def discover(self, meter_id: str, priority: Priority = Priority.READ
                       ) -> dict[str, Any]:
        """Object list, identification and time zone of the meter: kept in the fleet state,
        published as EndDeviceConfig (verb created) on ``meter/{meter}/config``, plus one
        ``smmc.discovery.modelMismatch`` event naming the model objects the meter lacks.

        The summary has its own retained topic rather than the events topic: it is the
        meter's current configuration, not an occurrence, so a consumer that subscribes
        later gets the latest one from the broker at once, and the events topic keeps
        carrying EndDeviceEvents only (what its consumers and schema expect)."""
        model = self.model_of(meter_id)
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                found = await discovery_uc.discover(s, meter_id, model, datetime.now(UTC))
        except BaseException:
            self._done("discovery", False)
            raise
        summary = found.summary()
        await self.fleet.save_discovery(meter_id, found.at, summary)
        body = json.dumps({"EndDeviceConfig": [summary]}, separators=(",", ":")).encode()
        await self.publisher.publish([Draft(
            MessageClass.EVENT, self.publisher.topics.config(meter_id), "created",
            "EndDeviceConfig", body, retain=True)])
        if found.mismatches:
            await self.publisher.publish_event(meter_id, [_event(
                EV_MODEL_MISMATCH, "modelMismatch",
                f"model {model.name!r}: " + "; ".join(m.describe() for m in found.mismatches),
                found.at)])
            log.warning("model_mismatch", meter_id=meter_id, model=model.name,
                        missing=[m.obis for m in found.mismatches])
        self._done("discovery", True)
        log.info("meter_discovered", meter_id=meter_id, objects=len(found.objects),
                 device_id=found.identification.get("deviceId"))
        return summary
