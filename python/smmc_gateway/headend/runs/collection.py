"""Use cases 2 and 3: scheduled collection, register reads, schedule runs, on-demand reads.

A collection reads the load profile from the meter's saved progress (missed intervals
are back-filled) and the registers, publishes them with a deterministic messageId (a
re-read after a crash before the progress was saved gives the same id), publishes a
``smmc.readings.gap`` event per gap, keeps what the daily bulk export needs
(:mod:`~smmc_gateway.headend.bulk_export`) and only then moves the progress on. With drift
detection on, the same session reads the clock (:mod:`.clock`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import structlog

from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.read_schedules import Reads, ReadSchedule
from smmc_gateway.headend.runs.base import EV_READING_GAP, Job, Runner, event
from smmc_gateway.ops.config_model import RegisterSpec
from smmc_gateway.uplink.envelope import Reading, reading_message_id
from smmc_gateway.uplink.store import StoreClosed
from smmc_gateway.usecases.readings import ReadingsResult, registers_for

log = structlog.get_logger("smmc_gateway.headend")


class Collection(Runner):
    """Scheduled and on-demand reads of registers and the load profile."""

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
        head = self.head
        state = head.fleet.state(meter_id)
        model = head.model_of(meter_id)
        # the session's success is saved with the read's last writes (one transaction)
        async with self.session(meter_id, priority, use_case, note=True, save_success=False) as s:
            result = await head.readings.collect(
                s, meter_id, model, state.last_entry, registers=registers is None
            )
            if registers:
                result.readings = await head.readings.read_registers(
                    s, registers, datetime.now(UTC)
                )
            drift = await head.clock.check(s, meter_id)
        profile = result.profile
        try:
            await self._publish(meter_id, state.last_entry, result)
        except BaseException:
            try:  # the session's success, as the scheduler saves it; the first error goes on
                await head.fleet.save(state)
            except (sqlite3.Error, StoreClosed) as exc:
                log.error("meter_state_save_failed", meter_id=meter_id, error=str(exc))
            raise
        # what the bulk export needs, the meter's state (the session's success and the
        # progress), the data store's copy and the read's outcome: one transaction, so the
        # progress moves on only with the kept data (the copy and the outcome may fail on
        # their own: logged, the rest written)
        previous = state.last_entry
        if profile is not None and profile.newest is not None:
            state.last_entry = profile.newest
        writes = [
            head.bulk.keep_job(
                meter_id,
                datetime.now(UTC).date(),
                profile.interval_blocks if profile else None,
                result.readings,
            ),
            head.fleet.save_job(state),
        ]
        copy: list[tuple[str, Job]] = []
        if result.readings or (profile is not None and profile.rows):  # what was published
            blocks = profile.interval_blocks if profile else None
            copy.append(
                ("readings", head.datastore.record_readings_job(meter_id, result.readings, blocks))
            )
        try:
            await self.succeeded_after(meter_id, use_case, writes, alone=copy)
        except BaseException:
            state.last_entry = previous  # not written: the next collection reads them again
            raise
        await head.datastore.maybe_prune()
        log.info(
            "meter_collected",
            meter_id=meter_id,
            rows=profile.rows if profile else 0,
            registers=len(result.readings),
        )
        if drift is not None:
            await head.clock.drift_sync(meter_id, drift)
        return result

    async def _publish(self, meter_id: str, since: datetime | None, result: ReadingsResult) -> None:
        """The readings (when there is anything new) and an event per gap."""
        profile = result.profile
        if result.readings or (profile is not None and profile.rows):  # else: nothing new
            await self.head.recording.publish_reading(
                meter_id,
                result.readings,
                profile.interval_blocks if profile else None,
                message_id=self.collect_id(meter_id, since, result),
                record=False,  # the data store's copy joins the read's last transaction
            )
        if profile is not None and profile.gaps:
            await self.publish_events(
                meter_id,
                *(
                    event(
                        EV_READING_GAP,
                        "loadProfileGap",
                        f"{g.missing} interval(s) missing from {g.start.isoformat()} "
                        f"to {g.end.isoformat()}",
                    )
                    for g in profile.gaps
                ),
            )

    def collect_id(self, meter_id: str, since: datetime | None, result: ReadingsResult) -> str:
        """Deterministic messageId of a scheduled collection (see uplink.envelope).

        With profile rows, the id names the interval data: rows after ``since`` (the
        saved progress) up to the newest row, and their count; a re-read after a crash
        before the progress was saved gives the same id, more rows a different one. The
        register snapshot in the same message is not part of the id. Without rows, the
        id names the registers' capture time."""
        gateway = self.head.publisher.topics.gateway
        profile = result.profile
        if profile is not None and profile.rows and profile.newest is not None:
            return reading_message_id(
                gateway, meter_id, "profile", since, profile.newest, str(profile.rows)
            )
        at = result.readings[0]["timestamp"] if result.readings else None
        return reading_message_id(gateway, meter_id, "registers", at, at)

    async def read_registers(
        self,
        meter_id: str,
        registers: Sequence[RegisterSpec] | None = None,
        use_case: str = "registers",
    ) -> list[Reading]:
        """The scheduled register read (between two profile collections): ``registers``,
        or the model's."""
        head = self.head
        model = head.model_of(meter_id)
        specs = model.registers if registers is None else registers
        async with self.session(meter_id, Priority.READ, use_case, note=True) as s:
            regs = await head.readings.read_registers(s, specs, datetime.now(UTC), model=model.name)
        if regs:
            at = regs[0]["timestamp"]
            await head.publisher.publish_reading(
                meter_id,
                regs,
                message_id=reading_message_id(
                    head.publisher.topics.gateway, meter_id, "registers", at, at
                ),
            )
        await self.succeeded(meter_id, use_case, note=True)
        return regs

    async def scheduled_read(self, schedule: ReadSchedule, meter_id: str, reads: Reads) -> None:
        """One run of a MeterReadSchedule (issue 11 item 3) for one meter: with the load
        profile a collection (its registers those of the schedule), else a register read;
        published like the configured reads, outcome kept as use case ``schedule``."""
        if reads.profile:
            await self.head.collect(meter_id, registers=reads.registers, use_case="schedule")
        elif reads.registers:
            await self.head.read_registers(meter_id, reads.registers, use_case="schedule")
        else:
            log.warning("read_schedule_reads_nothing", mrid=schedule.mrid, meter_id=meter_id)

    async def read_on_demand(
        self,
        meter_id: str,
        obis: Sequence[str] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> ReadingsResult:
        head = self.head
        model = head.model_of(meter_id)
        now = datetime.now(UTC)
        async with self.session(meter_id, Priority.COMMAND) as s:
            regs = await head.readings.read_registers(
                s, registers_for(model, obis), now, model=model.name
            )
            profile = None
            if start is not None:
                profile = await head.readings.read_profile(
                    s, model, start - timedelta(seconds=1), end or now
                )
        self.done("on_demand", True)
        return ReadingsResult(meter_id, regs, profile)

    async def bulk_export(self, up_to: date | None = None) -> int:
        """Publish the pending days up to ``up_to`` (inclusive, default today) in parts
        (:mod:`~smmc_gateway.headend.bulk_export`), finishing any export a crash cut
        short first; returns the number of meters exported."""
        return await self.head.bulk.export(up_to or datetime.now(UTC).date())
