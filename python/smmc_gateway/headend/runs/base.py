"""What every head-end operation repeats: session, metrics, read outcome, events.

:meth:`Runner.session` opens a session at a priority through the scheduler; when the work
inside raises (a session error, a timeout, the gateway stopping, a cancellation), the
use case's metric ``read_done(use_case, ok=False)`` is counted and, for scheduled reads
(``note=True``), the failure is kept for the read-success report (use case 11); the
exception goes on to the caller unchanged (the dispatcher and the scheduler map it).
:meth:`Runner.done` counts success the same way; :func:`event` builds the EndDeviceEvent
each use case publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.uplink.envelope import Draft, Event, MeterReadingPart, Reading
from smmc_gateway.uplink.envelope import event as new_event
from smmc_gateway.uplink.store import StoreClosed
from smmc_gateway.uplink.topics import Topics

if TYPE_CHECKING:
    from smmc_gateway.headend.service import HeadEnd

log = structlog.get_logger("smmc_gateway.headend")

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

    async def publish_reading(
        self,
        meter: str,
        readings: Sequence[Reading] = (),
        interval_blocks: bytes | Sequence[Mapping[str, Any]] | None = None,
        message_id: str | None = None,
    ) -> str:
        """``message_id``: a caller-chosen, deterministic id (see uplink.envelope)."""

    async def publish_event(self, meter: str, events: Sequence[Event]) -> str: ...

    async def publish_bulk(self, parts: Sequence[MeterReadingPart]) -> str: ...

    topics: Topics

    async def publish(self, drafts: Sequence[Draft]) -> list[str]: ...


Job = Callable[[sqlite3.Connection], object]
"""A write to the fleet database (``Fleet.save_job``, ``BulkExporter.keep_job``, ...)."""


ALONE_ERRORS = (sqlite3.Error, ValueError, KeyError, TypeError)
"""How a write on its own may fail: the database refused it, or its data did not make rows."""


def _on_its_own(conn: sqlite3.Connection, write: Job) -> Exception | None:
    """``write`` inside its own savepoint: its failure is undone and returned, what the
    transaction wrote before stays."""
    conn.execute("SAVEPOINT on_its_own")
    try:
        write(conn)
    except ALONE_ERRORS as exc:
        conn.execute("ROLLBACK TO on_its_own")
        conn.execute("RELEASE on_its_own")
        return exc
    conn.execute("RELEASE on_its_own")
    return None


def event(name: str, reason: str, details: str, at: datetime | None = None) -> Event:
    """One EndDeviceEvent of the head-end (``at``: when it happened; default now)."""
    return new_event(name, reason=reason, details=details, created=at)


class Runner:
    """Base of the use-case runners: the head-end they serve and the shared steps."""

    def __init__(self, head: HeadEnd) -> None:
        self.head = head

    def done(self, use_case: str, ok: bool) -> None:
        """Count one run of ``use_case`` (``smmc_reads_total``-style metric)."""
        if self.head.metrics is not None:
            self.head.metrics.read_done(use_case, ok)

    async def note_read(self, meter_id: str, use_case: str, exc: BaseException | None) -> None:
        """A scheduled read's outcome, for the read-success report (use case 11)."""
        if isinstance(exc, GatewayStopping | asyncio.CancelledError):
            return
        try:
            await self.head.datastore.record_read(
                meter_id, use_case, exc is None, None if exc is None else repr(exc)
            )
        except (sqlite3.Error, StoreClosed) as err:
            log.error("datastore_write_failed", meter_id=meter_id, kind="read", error=str(err))

    async def succeeded(self, meter_id: str, use_case: str, *, note: bool = False) -> None:
        self.done(use_case, True)
        if note:
            await self.note_read(meter_id, use_case, None)

    async def succeeded_after(
        self,
        meter_id: str,
        use_case: str,
        writes: Sequence[Job],
        *,
        note: bool = True,
        alone: Sequence[tuple[str, Job]] = (),
    ) -> None:
        """``writes`` (jobs of the fleet database: a read's last writes), then the success
        as :meth:`succeeded` counts and notes it, all in one transaction (one commit
        instead of one per write). A failure of ``writes`` raises (nothing of it is
        written, the success is not counted). The writes of ``alone`` (kind, job: the
        data store's copies) and the noted outcome may each fail on their own: the
        failure is logged (``datastore_write_failed`` with its kind) and the rest is
        written."""
        own = list(alone)
        if note:
            own.append(("read", self.head.datastore.record_read_job(meter_id, use_case, True)))

        def job(conn: sqlite3.Connection) -> list[tuple[str, Exception]]:
            for write in writes:
                write(conn)
            failures = ((kind, _on_its_own(conn, write)) for kind, write in own)
            return [(kind, exc) for kind, exc in failures if exc is not None]

        failed: list[tuple[str, Exception]] = await self.head.fleet.store.submit(job)
        self.done(use_case, True)
        for kind, exc in failed:
            log.error("datastore_write_failed", meter_id=meter_id, kind=kind, error=str(exc))

    @contextlib.asynccontextmanager
    async def session(
        self,
        meter_id: str,
        priority: Priority,
        use_case: str | None = None,
        *,
        note: bool = False,
        save_success: bool = True,
    ) -> AsyncIterator[Any]:
        """A session on ``meter_id`` at ``priority``; what raises inside (or while opening
        it) counts ``use_case`` failed (none when None) and, with ``note``, is kept as a
        failed read; then it is raised on. ``save_success=False``: the meter's state after
        a successful session is saved by the caller (``Scheduler.session``)."""
        try:
            async with self.head.scheduler.session(
                meter_id, priority, save_success=save_success
            ) as s:
                yield s
        except BaseException as exc:
            if use_case is not None:
                self.done(use_case, False)
                if note:
                    await self.note_read(meter_id, use_case, exc)
            raise

    async def publish_events(self, meter_id: str, *events: Event) -> None:
        await self.head.publisher.publish_event(meter_id, list(events))
