"""The head-end service: use cases run on scheduled or commanded sessions, results out.

:class:`HeadEnd` is what both the scheduler's periodic jobs and the command
dispatcher call. Each operation takes a session slot from the
:class:`~smmc_gateway.headend.scheduler.Scheduler` at its priority, runs one use
case, updates the meter's persisted state and hands payloads to the uplink
(readings, events); the uplink stores them durably before anything else happens.
It also keeps what the daily bulk export needs (:mod:`~smmc_gateway.headend.bulk_export`,
published in bounded parts) and, per meter and event log, where event publishing stopped
(``event_marks``).

Drift (aspect 13, "drift detected"): with ``drift_threshold_s`` a collection also reads
the meter's clock (one GET in its session); a deviation above the threshold publishes
``smmc.clock.driftDetected`` and syncs that meter's clock right after the collection, at
most once per ``drift_min_interval_s`` per meter (kept in ``clock_drift_sync``, so a
restart does not reset it). Every sync that adjusts a clock reads back the meter's "last
clock synchronisation" (0.0.96.2.12.255) and reports it in its event.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import structlog

from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.dlms.session import DataAccessError, ProtocolError, SessionError
from smmc_gateway.headend.bulk_export import BulkExporter
from smmc_gateway.headend.datastore import DEFAULT_RETENTION_DAYS, DataStore, RecordingPublisher
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.read_schedules import Reads, ReadSchedule
from smmc_gateway.headend.scheduler import GatewayStopping, Scheduler
from smmc_gateway.ops.config_model import ExportConfig, ModelConfig, RegisterSpec
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

# Tables clock_drift_sync and event_marks: created by the migrations of
# smmc_gateway.headend.persistence (the fleet database is migrated when it is opened).

# Event names published by the gateway; each has its IEC 61968-9 EndDeviceEventType code in
# smmc_gateway.cim.event_types (docs/event-codes.md), published beside it.
EV_CLOCK_ADJUSTED = "smmc.clock.adjusted"
EV_CLOCK_CHECKED = "smmc.clock.checked"
EV_CLOCK_REFUSED = "smmc.clock.syncRefused"
EV_CLOCK_NOT_TAKEN = "smmc.clock.syncFailed"
EV_CLOCK_DRIFT = "smmc.clock.driftDetected"
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
    last_sync: datetime | None = None
    """The meter's "last clock synchronisation" read back after an adjustment."""
    last_sync_error: str | None = None
    failed: str | None = None
    """Set when the correction did not take (read back still off): why."""

    def last_sync_text(self) -> str:
        if self.last_sync is not None:
            return f", last_clock_sync {_iso(self.last_sync)}"
        if self.last_sync_error is not None:
            return f", last_clock_sync not read: {self.last_sync_error}"
        return ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _event(name: str, reason: str, details: str, at: datetime | None = None) -> Event:
    return new_event(name, reason=reason, details=details, created=at)


class HeadEnd:
    """Use cases over scheduled sessions, results to the uplink."""

    def __init__(self, fleet: Fleet, scheduler: Scheduler, publisher: Publisher,
                 models: Mapping[str, ModelConfig], *, time_source: clock_uc.TimeSource,
                 tolerance_s: float = 2.0, shift_limit_s: float = 900.0,
                 metrics: GatewayMetrics | None = None, first_read_s: float = 86400.0,
                 retention_days: float = DEFAULT_RETENTION_DAYS,
                 export: ExportConfig | None = None, drift_threshold_s: float | None = None,
                 drift_min_interval_s: float = 86400.0) -> None:
        self.fleet = fleet
        self.scheduler = scheduler
        # use cases 3 and 11: what is published, kept
        self.datastore = DataStore(fleet.store, retention_days=retention_days)
        self.publisher: Publisher = RecordingPublisher(publisher, self.datastore)
        e = export or ExportConfig()
        self.bulk = BulkExporter(fleet.store, self.publisher, max_bytes=e.part_max_bytes,
                                 directory=e.directory, formats=e.formats)
        self.drift_threshold_s = drift_threshold_s
        self.drift_min_interval_s = drift_min_interval_s
        self._drift_marks: dict[str, float] | None = None
        self.models = models
        self.time_source = time_source
        self.tolerance_s = tolerance_s
        self.shift_limit_s = shift_limit_s
        self.metrics = metrics
        self.readings = ReadingsUseCase(first_read_s=first_read_s)
        self.first_read_s = first_read_s
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
    async def collect(self, meter_id: str, priority: Priority = Priority.READ, *,
                      registers: Sequence[RegisterSpec] | None = None,
                      use_case: str = "collect") -> ReadingsResult:
        """The load profile from the saved progress and the registers (``registers``, or
        the model's); with drift detection on, the clock's deviation too."""
        state = self.fleet.state(meter_id)
        model = self.model_of(meter_id)
        drift: float | None = None
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                result = await self.readings.collect(s, meter_id, model, state.last_entry,
                                                     registers=registers is None)
                if registers:
                    result.readings = await self.readings.read_registers(
                        s, registers, datetime.now(UTC))
                drift = await self._clock_check(s, meter_id)
        except BaseException as exc:
            self._done(use_case, False)
            await self._note_read(meter_id, use_case, exc)
            raise
        profile = result.profile
        if result.readings or (profile is not None and profile.rows):  # else: nothing new
            await self.publisher.publish_reading(
                meter_id, result.readings, profile.interval_blocks if profile else None,
                message_id=self._collect_id(meter_id, state.last_entry, result))
        if profile is not None and profile.gaps:
            await self.publisher.publish_event(meter_id, [
                _event(EV_READING_GAP, "loadProfileGap",
                       f"{g.missing} interval(s) missing from {g.start.isoformat()} "
                       f"to {g.end.isoformat()}") for g in profile.gaps])
        await self.bulk.keep(meter_id, datetime.now(UTC).date(),
                             profile.interval_blocks if profile else None, result.readings)
        if profile is not None and profile.newest is not None:
            state.last_entry = profile.newest
            await self.fleet.save(state)
        self._done(use_case, True)
        await self._note_read(meter_id, use_case, None)
        log.info("meter_collected", meter_id=meter_id,
                 rows=profile.rows if profile else 0, registers=len(result.readings))
        if drift is not None:
            await self._drift_sync(meter_id, drift)
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

    async def read_registers(self, meter_id: str,
                             registers: Sequence[RegisterSpec] | None = None,
                             use_case: str = "registers") -> list[Reading]:
        """The scheduled register read (between two profile collections): ``registers``,
        or the model's."""
        model = self.model_of(meter_id)
        specs = model.registers if registers is None else registers
        try:
            async with self.scheduler.session(meter_id, Priority.READ) as s:
                regs = await self.readings.read_registers(s, specs, datetime.now(UTC),
                                                          model=model.name)
        except BaseException as exc:
            self._done(use_case, False)
            await self._note_read(meter_id, use_case, exc)
            raise
        if regs:
            at = regs[0]["timestamp"]
            await self.publisher.publish_reading(meter_id, regs, message_id=reading_message_id(
                self.publisher.topics.gateway, meter_id, "registers", at, at))
        self._done(use_case, True)
        await self._note_read(meter_id, use_case, None)
        return regs

    async def scheduled_read(self, schedule: ReadSchedule, meter_id: str, reads: Reads) -> None:
        """One run of a MeterReadSchedule (issue 11 item 3) for one meter: with the load
        profile a collection (its registers those of the schedule), else a register read;
        published like the configured reads, outcome kept as use case ``schedule``."""
        if reads.profile:
            await self.collect(meter_id, registers=reads.registers, use_case="schedule")
        elif reads.registers:
            await self.read_registers(meter_id, reads.registers, use_case="schedule")
        else:
            log.warning("read_schedule_reads_nothing", mrid=schedule.mrid, meter_id=meter_id)

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
    async def bulk_export(self, up_to: date | None = None) -> int:
        """Publish the pending days up to ``up_to`` (inclusive, default today) in parts
        (:mod:`~smmc_gateway.headend.bulk_export`), finishing any export a crash cut
        short first; returns the number of meters exported."""
        return await self.bulk.export(up_to or datetime.now(UTC).date())

    # -- use case 13: clock ------------------------------------------------------------
    async def sync_clock(self, meter_id: str, priority: Priority = Priority.READ,
                         force: bool = False) -> SyncOutcome:
        state = self.fleet.state(meter_id)
        model = self.model_of(meter_id)
        outcome = SyncOutcome(None)
        try:
            async with self.scheduler.session(meter_id, priority) as s:
                result = await clock_uc.synchronise(
                    s, meter_id, self.time_source, obis=self.obis(meter_id, "clock"),
                    tolerance_s=self.tolerance_s, shift_limit_s=self.shift_limit_s, force=force,
                    conventions=model.clock, model=model.name)
                if result.method != "none":
                    try:
                        outcome.last_sync = await clock_uc.read_last_sync(
                            s, self.obis(meter_id, "last_clock_sync"),
                            conventions=model.clock, model=model.name)
                    except (DataAccessError, ProtocolError) as exc:
                        outcome.last_sync_error = f"{type(exc).__name__}: {exc}"
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
        outcome.result = result
        text = clock_uc.describe(result) + outcome.last_sync_text()
        if not result.confirmed:
            outcome.failed = (f"the meter took {result.method} but its clock is still off by "
                              f"{result.after_s:+.3f}s when read back (tolerance "
                              f"{result.tolerance_s:g}s): {text}")
            await self.publisher.publish_event(meter_id, [
                _event(EV_CLOCK_NOT_TAKEN, result.method, outcome.failed)])
            self._done("clock", False)
            return outcome
        kind = EV_CLOCK_ADJUSTED if result.method != "none" else EV_CLOCK_CHECKED
        await self.publisher.publish_event(meter_id, [_event(kind, result.method, text)])
        self._done("clock", True)
        return outcome

    # -- use case 13: drift detected -------------------------------------------------------
    async def _clock_check(self, session: Any, meter_id: str) -> float | None:
        """In a collection's session: the clock's deviation when it is over the drift
        threshold and the meter may be synced again, else None."""
        threshold = self.drift_threshold_s
        if threshold is None:
            return None
        try:
            model = self.model_of(meter_id)
            deviation, _, _ = await clock_uc.measure_deviation(
                session, self.time_source, self.obis(meter_id, "clock"),
                conventions=model.clock, model=model.name)
        except (DataAccessError, ProtocolError, ValueError) as exc:
            log.warning("clock_check_failed", meter_id=meter_id, error=str(exc))
            return None
        self.fleet.state(meter_id).clock_deviation_s = deviation  # saved as the session ends
        if abs(deviation) <= threshold:
            return None
        marks = await self._load_drift_marks()
        last = marks.get(meter_id)
        now = time.time()
        if last is not None and now - last < self.drift_min_interval_s:
            log.info("clock_drift_sync_rate_limited", meter_id=meter_id,
                     deviation_s=round(deviation, 3), last_sync=last)
            return None
        return deviation

    async def _load_drift_marks(self) -> dict[str, float]:
        if self._drift_marks is None:
            def load(conn: sqlite3.Connection) -> list[tuple[str, float]]:
                return list(conn.execute("SELECT meter_id, at FROM clock_drift_sync"))

            self._drift_marks = {m: float(t) for m, t in await self.fleet.store.submit(load)}
        return self._drift_marks

    async def _drift_sync(self, meter_id: str, deviation: float) -> None:
        """A clock sync of ``meter_id``, after a collection saw ``deviation``."""
        marks = await self._load_drift_marks()
        now = time.time()
        marks[meter_id] = now

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO clock_drift_sync (meter_id, at) VALUES (?,?)",
                         (meter_id, now))

        await self.fleet.store.submit(mark)
        log.warning("clock_drift_detected", meter_id=meter_id, deviation_s=round(deviation, 3))
        await self.publisher.publish_event(meter_id, [_event(
            EV_CLOCK_DRIFT, "driftThreshold",
            f"deviation {deviation:+.3f}s over clock_drift_threshold "
            f"{self.drift_threshold_s:g}s: clock sync started")])
        try:
            await self.sync_clock(meter_id, Priority.READ)
        except (SessionError, OSError, TimeoutError, GatewayStopping) as exc:
            log.warning("clock_drift_sync_failed", meter_id=meter_id,
                        error=f"{type(exc).__name__}: {exc}")

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
                min_over_s=min_over_s, min_under_s=min_under_s, off=off,
                model=self.model_of(meter_id))
        await self.publisher.publish_event(meter_id, [
            _event(EV_LIMIT_SET, "limitOff" if off else "limit", state.describe())])
        return state

    async def emergency(self, meter_id: str, profile_id: int, start: datetime,
                        duration_s: int, threshold_w: int) -> limiter_uc.EmergencyState:
        async with self.scheduler.session(meter_id, Priority.COMMAND) as s:
            state = await limiter_uc.schedule_emergency(
                s, self.obis(meter_id, "limiter"), profile_id=profile_id, start=start,
                duration_s=duration_s, threshold_w=threshold_w,
                clock_obis=self.obis(meter_id, "clock"), model=self.model_of(meter_id))
        await self.publisher.publish_event(meter_id, [
            _event(EV_EMERGENCY_SET, "demandResponse", state.describe())])
        return state

    # -- use case 7: event logs and alarm pushes ------------------------------------------
    async def _load_marks(self) -> dict[tuple[str, str], events_uc.LogMark]:
        if self._marks is None:
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
                            now, self.first_read_s, model)
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
        try:
            model: ModelConfig | None = self.model_of(push.meter_id)
        except KeyError:  # a meter (or model) removed by a reload since: the base model
            model = None
        named = events_uc.decode_alarms(push.body, model, self._alarm_bits, push.meter_id,
                                        push.attribute)
        at = push.meter_time or push.received_at
        return [_event(kind, reason, details, at) for kind, reason, details in named]

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
