"""The head-end service: use cases run on scheduled or commanded sessions, results out.

:class:`HeadEnd` is what both the scheduler's periodic jobs and the command
dispatcher call. Each operation takes a session slot from the
:class:`~smmc_gateway.headend.scheduler.Scheduler` at its priority, runs one use
case, updates the meter's persisted state and hands payloads to the uplink
(readings, events); the uplink stores them durably before anything else happens.
It also keeps what the daily bulk export needs (``bulk_pending`` in fleet.sqlite).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import structlog

from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.scheduler import GatewayStopping, Scheduler
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.ops.metrics import GatewayMetrics
from smmc_gateway.uplink.envelope import Event, MeterReadingPart, Reading
from smmc_gateway.usecases import clock as clock_uc
from smmc_gateway.usecases import connect as connect_uc
from smmc_gateway.usecases import oms as oms_uc
from smmc_gateway.usecases.readings import ReadingsResult, ReadingsUseCase, registers_for

log = structlog.get_logger("smmc_gateway.headend")

BULK_SCHEMA = """
CREATE TABLE IF NOT EXISTS bulk_pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, meter_id TEXT NOT NULL,
  blocks BLOB, readings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_done (day TEXT PRIMARY KEY, exported REAL NOT NULL);
"""

# EndDeviceEventType refs published by the gateway (documented in docs/schemas additions).
EV_CLOCK_ADJUSTED = "smmc.clock.adjusted"
EV_CLOCK_CHECKED = "smmc.clock.checked"
EV_CLOCK_REFUSED = "smmc.clock.syncRefused"
EV_READING_GAP = "smmc.readings.gap"
EV_DISCONNECTED = "smmc.switch.disconnected"
EV_CONNECTED = "smmc.switch.connected"


class Publisher(Protocol):
    """The part of the uplink the head-end uses."""

    async def publish_reading(self, meter: str, readings: Sequence[Reading] = (),
                              interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None
                              ) -> str: ...

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str: ...

    async def publish_bulk(self, parts: Sequence[MeterReadingPart]) -> str: ...


@dataclass
class SyncOutcome:
    result: clock_uc.ClockResult | None
    refused: str | None = None


def _event(type_ref: str, reason: str, details: str, at: datetime | None = None) -> Event:
    return Event(mrid=str(uuid.uuid4()), created=at or datetime.now(UTC), type_ref=type_ref,
                 reason=reason, details=details)


class HeadEnd:
    """Use cases over scheduled sessions, results to the uplink."""

    def __init__(self, fleet: Fleet, scheduler: Scheduler, publisher: Publisher,
                 models: Mapping[str, ModelConfig], *, time_source: clock_uc.TimeSource,
                 tolerance_s: float = 2.0, shift_limit_s: float = 900.0,
                 metrics: GatewayMetrics | None = None, first_read_s: float = 86400.0) -> None:
        self.fleet = fleet
        self.scheduler = scheduler
        self.publisher = publisher
        self.models = models
        self.time_source = time_source
        self.tolerance_s = tolerance_s
        self.shift_limit_s = shift_limit_s
        self.metrics = metrics
        self.readings = ReadingsUseCase(first_read_s=first_read_s)
        self._bulk_ready = False

    def model_of(self, meter_id: str) -> ModelConfig:
        return self.models[self.fleet.meter(meter_id).model]

    def obis(self, meter_id: str, name: str) -> str:
        return self.model_of(meter_id).obis[name]

    def _done(self, use_case: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.read_done(use_case, ok)

    # -- use case 2: scheduled collection ------------------------------------------
    async def collect(self, meter_id: str, priority: Priority = Priority.READ) -> ReadingsResult:
        state = self.fleet.state(meter_id)
        model = self.model_of(meter_id)
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                result = await self.readings.collect(s, meter_id, model, state.last_entry)
        except BaseException:
            self._done("collect", False)
            raise
        profile = result.profile
        await self.publisher.publish_reading(
            meter_id, result.readings, profile.interval_blocks if profile else None)
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
        log.info("meter_collected", meter_id=meter_id,
                 rows=profile.rows if profile else 0, registers=len(result.readings))
        return result

    async def read_registers(self, meter_id: str) -> list[Reading]:
        """The scheduled register read (between two profile collections)."""
        model = self.model_of(meter_id)
        try:
            async with self.scheduler.session(meter_id, Priority.READ) as s:
                regs = await self.readings.read_registers(s, model.registers, datetime.now(UTC))
        except BaseException:
            self._done("registers", False)
            raise
        if regs:
            await self.publisher.publish_reading(meter_id, regs)
        self._done("registers", True)
        return regs

    async def read_on_demand(self, meter_id: str, obis: Sequence[str] | None,
                             start: datetime | None, end: datetime | None) -> ReadingsResult:
        model = self.model_of(meter_id)
        now = datetime.now(UTC)
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            regs = await self.readings.read_registers(s, registers_for(model, obis), now)
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
                blist.append(bytes(blocks).strip()[1:-1])
            for r in json.loads(regs):
                r["timestamp"] = datetime.fromisoformat(r["timestamp"])
                rlist.append(Reading(ref=r["ref"], obis=r["obis"], unit=r["unit"],
                                     timestamp=r["timestamp"], value=r["value"]))
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

