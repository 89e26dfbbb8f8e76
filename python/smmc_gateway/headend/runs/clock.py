"""Use case 13: clock synchronisation and drift detection.

:meth:`ClockRuns.sync_clock` checks the meter's clock against the gateway's time source
and corrects it (``adjust_to_quarter``/``shift_time``/``set``, within ``shift_limit_s``),
reads it back, and on a correction reads the meter's "last clock synchronisation"
(0.0.96.2.12.255) for its event. A gateway whose own clock is not synchronised refuses
(``smmc.clock.syncRefused``); a correction that did not take is ``smmc.clock.syncFailed``.

Drift ("drift detected"): with ``drift_threshold_s`` a collection also reads the meter's
clock in its session (:meth:`ClockRuns.check`); a deviation above the threshold publishes
``smmc.clock.driftDetected`` and syncs that meter's clock right after the collection, at
most once per ``drift_min_interval_s`` per meter (kept in table ``clock_drift_sync``, so a
restart does not reset it).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from smmc_gateway.dlms.session import DataAccessError, ProtocolError, SessionError
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import (
    EV_CLOCK_ADJUSTED,
    EV_CLOCK_CHECKED,
    EV_CLOCK_DRIFT,
    EV_CLOCK_NOT_TAKEN,
    EV_CLOCK_REFUSED,
    Runner,
    event,
)
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.usecases import clock as clock_uc

if TYPE_CHECKING:
    from smmc_gateway.headend.service import HeadEnd

log = structlog.get_logger("smmc_gateway.headend")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


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


class ClockRuns(Runner):
    """Clock sync of one meter, and the drift check inside a collection."""

    def __init__(self, head: HeadEnd) -> None:
        super().__init__(head)
        self._drift_marks: dict[str, float] | None = None

    async def sync_clock(
        self, meter_id: str, priority: Priority = Priority.READ, force: bool = False
    ) -> SyncOutcome:
        head = self.head
        state = head.fleet.state(meter_id)
        model = head.model_of(meter_id)
        outcome = SyncOutcome(None)
        try:
            async with self.session(meter_id, priority, "clock") as s:
                result = await clock_uc.synchronise(
                    s,
                    meter_id,
                    head.time_source,
                    obis=head.obis(meter_id, "clock"),
                    tolerance_s=head.tolerance_s,
                    shift_limit_s=head.shift_limit_s,
                    force=force,
                    conventions=model.clock,
                    model=model.name,
                )
                if result.method != "none":
                    try:
                        outcome.last_sync = await clock_uc.read_last_sync(
                            s,
                            head.obis(meter_id, "last_clock_sync"),
                            conventions=model.clock,
                            model=model.name,
                        )
                    except (DataAccessError, ProtocolError) as exc:
                        outcome.last_sync_error = f"{type(exc).__name__}: {exc}"
        except clock_uc.ClockNotSynchronised as exc:  # counted failed by the session
            await self.publish_events(
                meter_id, event(EV_CLOCK_REFUSED, "concentratorClockUnsynchronised", str(exc))
            )
            return SyncOutcome(None, str(exc))
        state.clock_deviation_s = result.after_s if result.after_s is not None else result.before_s
        await head.fleet.save(state)
        if head.metrics is not None:
            head.metrics.clock_deviation.observe(abs(result.before_s))
            if result.method != "none":
                head.metrics.clock_adjustments.labels(method=result.method).inc()
        outcome.result = result
        text = clock_uc.describe(result) + outcome.last_sync_text()
        if not result.confirmed:
            outcome.failed = (
                f"the meter took {result.method} but its clock is still off by "
                f"{result.after_s:+.3f}s when read back (tolerance "
                f"{result.tolerance_s:g}s): {text}"
            )
            await self.publish_events(
                meter_id, event(EV_CLOCK_NOT_TAKEN, result.method, outcome.failed)
            )
            self.done("clock", False)
            return outcome
        kind = EV_CLOCK_ADJUSTED if result.method != "none" else EV_CLOCK_CHECKED
        await self.publish_events(meter_id, event(kind, result.method, text))
        self.done("clock", True)
        return outcome

    async def check(self, session: Any, meter_id: str) -> float | None:
        """In a collection's session: the clock's deviation when it is over the drift
        threshold and the meter may be synced again, else None."""
        head = self.head
        threshold = head.drift_threshold_s
        if threshold is None:
            return None
        try:
            model = head.model_of(meter_id)
            deviation, _, _ = await clock_uc.measure_deviation(
                session,
                head.time_source,
                head.obis(meter_id, "clock"),
                conventions=model.clock,
                model=model.name,
            )
        except (DataAccessError, ProtocolError, ValueError) as exc:
            log.warning("clock_check_failed", meter_id=meter_id, error=str(exc))
            return None
        head.fleet.state(meter_id).clock_deviation_s = deviation  # saved as the session ends
        if abs(deviation) <= threshold:
            return None
        marks = await self._load_drift_marks()
        last = marks.get(meter_id)
        now = time.time()
        if last is not None and now - last < head.drift_min_interval_s:
            log.info(
                "clock_drift_sync_rate_limited",
                meter_id=meter_id,
                deviation_s=round(deviation, 3),
                last_sync=last,
            )
            return None
        return deviation

    async def _load_drift_marks(self) -> dict[str, float]:
        if self._drift_marks is None:

            def load(conn: sqlite3.Connection) -> list[tuple[str, float]]:
                return list(conn.execute("SELECT meter_id, at FROM clock_drift_sync"))

            self._drift_marks = {m: float(t) for m, t in await self.head.fleet.store.submit(load)}
        return self._drift_marks

    async def drift_sync(self, meter_id: str, deviation: float) -> None:
        """A clock sync of ``meter_id``, after a collection saw ``deviation``."""
        marks = await self._load_drift_marks()
        now = time.time()
        marks[meter_id] = now

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO clock_drift_sync (meter_id, at) VALUES (?,?)",
                (meter_id, now),
            )

        await self.head.fleet.store.submit(mark)
        log.warning("clock_drift_detected", meter_id=meter_id, deviation_s=round(deviation, 3))
        await self.publish_events(
            meter_id,
            event(
                EV_CLOCK_DRIFT,
                "driftThreshold",
                f"deviation {deviation:+.3f}s over clock_drift_threshold "
                f"{self.head.drift_threshold_s:g}s: clock sync started",
            ),
        )
        try:
            await self.head.sync_clock(meter_id, Priority.READ)
        except (SessionError, OSError, TimeoutError, GatewayStopping) as exc:
            log.warning(
                "clock_drift_sync_failed", meter_id=meter_id, error=f"{type(exc).__name__}: {exc}"
            )
