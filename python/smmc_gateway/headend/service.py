"""The head-end service: the façade over the use-case runners (:mod:`~smmc_gateway.headend.runs`).

:class:`HeadEnd` is what both the scheduler's periodic jobs and the command dispatcher
call. Each operation takes a session slot from the
:class:`~smmc_gateway.headend.scheduler.Scheduler` at its priority, runs one use case,
updates the meter's persisted state and hands payloads to the uplink (readings, events);
the uplink stores them durably before anything else happens. The operations live in one
small runner per use case (:mod:`.runs.collection`, :mod:`.runs.clock`,
:mod:`.runs.switch`, :mod:`.runs.limiter`, :mod:`.runs.events`, :mod:`.runs.account`,
:mod:`.runs.discovery`) sharing :mod:`.runs.base` (session at a priority, metrics, read
outcomes, events); the methods here delegate to them, and the settings and shared parts
they use (fleet, scheduler, publisher, data store, bulk export, models, time source,
tolerances) are attributes of the façade, read at every run.

It also keeps what the daily bulk export needs (:mod:`~smmc_gateway.headend.bulk_export`,
published in bounded parts) and, per meter and event log, where event publishing stopped
(``event_marks``); drift detection (aspect 13) is described in :mod:`.runs.clock`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.headend.bulk_export import BulkExporter
from smmc_gateway.headend.datastore import DEFAULT_RETENTION_DAYS, DataStore, RecordingPublisher
from smmc_gateway.headend.fleet import Fleet
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.read_schedules import Reads, ReadSchedule
from smmc_gateway.headend.runs.account import AccountRuns
from smmc_gateway.headend.runs.base import (
    EV_ACCOUNT_STEP,
    EV_CLOCK_ADJUSTED,
    EV_CLOCK_CHECKED,
    EV_CLOCK_DRIFT,
    EV_CLOCK_NOT_TAKEN,
    EV_CLOCK_REFUSED,
    EV_CONNECTED,
    EV_DISCONNECTED,
    EV_EMERGENCY_SET,
    EV_FINAL_READ,
    EV_LIMIT_SET,
    EV_MODEL_MISMATCH,
    EV_OPENING_READ,
    EV_READING_GAP,
    Publisher,
)
from smmc_gateway.headend.runs.clock import ClockRuns, SyncOutcome
from smmc_gateway.headend.runs.collection import Collection
from smmc_gateway.headend.runs.discovery import DiscoveryRuns
from smmc_gateway.headend.runs.events import EventRuns
from smmc_gateway.headend.runs.limiter import LimiterRuns
from smmc_gateway.headend.runs.switch import SwitchRuns
from smmc_gateway.headend.scheduler import Scheduler
from smmc_gateway.ops.config_model import ExportConfig, ModelConfig, RegisterSpec
from smmc_gateway.ops.metrics import GatewayMetrics
from smmc_gateway.uplink.envelope import Event, Reading
from smmc_gateway.usecases import account as account_uc
from smmc_gateway.usecases import clock as clock_uc
from smmc_gateway.usecases import connect as connect_uc
from smmc_gateway.usecases import limiter as limiter_uc
from smmc_gateway.usecases import oms as oms_uc
from smmc_gateway.usecases.readings import ReadingsResult, ReadingsUseCase

# Tables clock_drift_sync and event_marks (kept by runs/clock.py and runs/events.py):
# created by the migrations of smmc_gateway.headend.persistence.

__all__ = [
    "EV_ACCOUNT_STEP",
    "EV_CLOCK_ADJUSTED",
    "EV_CLOCK_CHECKED",
    "EV_CLOCK_DRIFT",
    "EV_CLOCK_NOT_TAKEN",
    "EV_CLOCK_REFUSED",
    "EV_CONNECTED",
    "EV_DISCONNECTED",
    "EV_EMERGENCY_SET",
    "EV_FINAL_READ",
    "EV_LIMIT_SET",
    "EV_MODEL_MISMATCH",
    "EV_OPENING_READ",
    "EV_READING_GAP",
    "HeadEnd",
    "Publisher",
    "SyncOutcome",
]


class HeadEnd:
    """Use cases over scheduled sessions, results to the uplink."""

    def __init__(
        self,
        fleet: Fleet,
        scheduler: Scheduler,
        publisher: Publisher,
        models: Mapping[str, ModelConfig],
        *,
        time_source: clock_uc.TimeSource,
        tolerance_s: float = 2.0,
        shift_limit_s: float = 900.0,
        metrics: GatewayMetrics | None = None,
        first_read_s: float = 86400.0,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        export: ExportConfig | None = None,
        drift_threshold_s: float | None = None,
        drift_min_interval_s: float = 86400.0,
    ) -> None:
        self.fleet = fleet
        self.scheduler = scheduler
        # use cases 3 and 11: what is published, kept
        self.datastore = DataStore(fleet.store, retention_days=retention_days)
        self.recording = RecordingPublisher(publisher, self.datastore)
        self.publisher: Publisher = self.recording
        e = export or ExportConfig()
        self.bulk = BulkExporter(
            fleet.store,
            self.publisher,
            max_bytes=e.part_max_bytes,
            directory=e.directory,
            formats=e.formats,
        )
        self.drift_threshold_s = drift_threshold_s
        self.drift_min_interval_s = drift_min_interval_s
        self.models = models
        self.time_source = time_source
        self.tolerance_s = tolerance_s
        self.shift_limit_s = shift_limit_s
        self.metrics = metrics
        self.readings = ReadingsUseCase(first_read_s=first_read_s)
        self.first_read_s = first_read_s
        # the runners, one per use case
        self.collection = Collection(self)
        self.clock = ClockRuns(self)
        self.switching = SwitchRuns(self)
        self.limiter = LimiterRuns(self)
        self.events = EventRuns(self)
        self.account = AccountRuns(self)
        self.discovery = DiscoveryRuns(self)

    def model_of(self, meter_id: str) -> ModelConfig:
        return self.models[self.fleet.meter(meter_id).model]

    def obis(self, meter_id: str, name: str) -> str:
        return self.model_of(meter_id).obis[name]

    # -- use cases 2 and 3: collection and reads (runs/collection.py) -------------------
    async def collect(
        self,
        meter_id: str,
        priority: Priority = Priority.READ,
        *,
        registers: Sequence[RegisterSpec] | None = None,
        use_case: str = "collect",
    ) -> ReadingsResult:
        """The load profile from the saved progress and the registers (``registers``, or
        the model's); with drift detection on, the clock's deviation too."""
        return await self.collection.collect(
            meter_id, priority, registers=registers, use_case=use_case
        )

    async def read_registers(
        self,
        meter_id: str,
        registers: Sequence[RegisterSpec] | None = None,
        use_case: str = "registers",
    ) -> list[Reading]:
        """The scheduled register read: ``registers``, or the model's."""
        return await self.collection.read_registers(meter_id, registers, use_case)

    async def scheduled_read(self, schedule: ReadSchedule, meter_id: str, reads: Reads) -> None:
        """One run of a MeterReadSchedule for one meter."""
        await self.collection.scheduled_read(schedule, meter_id, reads)

    async def read_on_demand(
        self,
        meter_id: str,
        obis: Sequence[str] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> ReadingsResult:
        return await self.collection.read_on_demand(meter_id, obis, start, end)

    async def bulk_export(self, up_to: date | None = None) -> int:
        """Publish the pending days up to ``up_to`` (inclusive, default today) in parts;
        returns the number of meters exported."""
        return await self.collection.bulk_export(up_to)

    # -- use case 13: clock (runs/clock.py) ------------------------------------------------
    async def sync_clock(
        self, meter_id: str, priority: Priority = Priority.READ, force: bool = False
    ) -> SyncOutcome:
        return await self.clock.sync_clock(meter_id, priority, force)

    # -- use cases 6 and 7: connect / disconnect, OMS poll (runs/switch.py) ---------------
    async def switch(
        self, meter_id: str, operation: connect_uc.Operation
    ) -> connect_uc.SwitchResult:
        return await self.switching.switch(meter_id, operation)

    async def poll(
        self, meter_ids: Sequence[str], timeout_s: float = 30.0
    ) -> list[oms_uc.PollResult]:
        return await self.switching.poll(meter_ids, timeout_s)

    # -- use case 14 / 8 (DR): limiter (runs/limiter.py) ----------------------------------
    async def limit(
        self,
        meter_id: str,
        threshold_w: int | None,
        min_over_s: int | None,
        min_under_s: int | None,
        off: bool = False,
    ) -> limiter_uc.LimiterState:
        return await self.limiter.limit(meter_id, threshold_w, min_over_s, min_under_s, off)

    async def emergency(
        self, meter_id: str, profile_id: int, start: datetime, duration_s: int, threshold_w: int
    ) -> limiter_uc.EmergencyState:
        return await self.limiter.emergency(meter_id, profile_id, start, duration_s, threshold_w)

    # -- use case 7: event logs and alarm pushes (runs/events.py) -------------------------
    async def poll_events(self, meter_id: str, priority: Priority = Priority.READ) -> list[Event]:
        """New rows of every event log of the meter, published as EndDeviceEvents."""
        return await self.events.poll_events(meter_id, priority)

    def schedule_events(self, every_s: float, jitter_s: float = 0.0) -> None:
        """Poll every meter's event logs every ``every_s`` (``schedules.events_every``)."""
        self.events.schedule_events(every_s, jitter_s)

    def alarm_events(self, push: PushEvent) -> list[Event]:
        """Named events decoded from an alarm push; empty for other pushes."""
        return self.events.alarm_events(push)

    # -- use case 12: account move (runs/account.py) --------------------------------------
    async def move(self, meter_id: str, move: account_uc.Move) -> account_uc.MoveResult:
        """Move-out (final read, then disconnect) or move-in (reconnect, opening read)."""
        return await self.account.move(meter_id, move)

    # -- use case 1: registration and discovery (runs/discovery.py) -----------------------
    async def discover(self, meter_id: str, priority: Priority = Priority.READ) -> dict[str, Any]:
        """Object list, identification and time zone of the meter, kept and published."""
        return await self.discovery.discover(meter_id, priority)
