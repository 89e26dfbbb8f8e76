"""Use case 7: the meter's event logs polled, its alarm pushes named.

:meth:`EventRuns.poll_events` reads the new rows of every event log of the meter and
publishes them as EndDeviceEvents; each log's mark (table ``event_marks``: the newest
stamp and the count read) is stored only after its events are in the outbox, so a crash
republishes rather than loses. :meth:`EventRuns.alarm_events` names the bits of an alarm
push (outage, restoration, limiter trip...) by the meter's model.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from smmc_gateway.dlms.push import PushEvent
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.runs.base import Runner, event
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.uplink.envelope import Event
from smmc_gateway.usecases import events as events_uc

if TYPE_CHECKING:
    from smmc_gateway.headend.service import HeadEnd

log = structlog.get_logger("smmc_gateway.headend")


class EventRuns(Runner):
    """Event-log polls with their persisted marks, and alarm pushes decoded."""

    def __init__(self, head: HeadEnd) -> None:
        super().__init__(head)
        self._marks: dict[tuple[str, str], events_uc.LogMark] | None = None
        self._alarm_bits: dict[str, int] = {}

    async def _load_marks(self) -> dict[tuple[str, str], events_uc.LogMark]:
        if self._marks is None:

            def load(conn: sqlite3.Connection) -> list[tuple[str, str, float | None, int]]:
                return list(conn.execute("SELECT meter_id, log, stamp, count FROM event_marks"))

            self._marks = {
                (m, log_key): events_uc.LogMark(
                    None if t is None else datetime.fromtimestamp(t, UTC), int(c)
                )
                for m, log_key, t, c in await self.head.fleet.store.submit(load)
            }
        return self._marks

    async def poll_events(self, meter_id: str, priority: Priority = Priority.READ) -> list[Event]:
        """New rows of every event log of the meter, published as EndDeviceEvents; each
        log's mark is stored only after its events are in the outbox."""
        head = self.head
        marks = await self._load_marks()
        model = head.model_of(meter_id)
        now = datetime.now(UTC)
        found: list[tuple[str, list[events_uc.MeterEvent], events_uc.LogMark]] = []
        async with self.session(meter_id, priority, "events") as s:
            for key in events_uc.LOGS:
                obis = model.obis[key]
                try:
                    evs, mark = await events_uc.read_log(
                        s,
                        key,
                        obis,
                        marks.get((meter_id, key), events_uc.LogMark()),
                        now,
                        head.first_read_s,
                        model,
                    )
                except events_uc.LogMissing as exc:
                    log.warning("event_log_missing", meter_id=meter_id, log=str(exc))
                    continue
                found.append((key, evs, mark))
        published: list[Event] = []
        for key, evs, mark in found:
            if evs:
                batch = [event(e.name, e.log, e.details, e.at) for e in evs]
                await self.publish_events(meter_id, *batch)
                published.extend(batch)
            if marks.get((meter_id, key)) != mark:
                marks[(meter_id, key)] = mark
                await self._save_mark(meter_id, key, mark)
        self.done("events", True)
        log.info("events_polled", meter_id=meter_id, events=len(published))
        return published

    async def _save_mark(self, meter_id: str, key: str, mark: events_uc.LogMark) -> None:
        row = (meter_id, key, None if mark.stamp is None else mark.stamp.timestamp(), mark.count)

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO event_marks (meter_id, log, stamp, count) VALUES (?,?,?,?)",
                row,
            )

        await self.head.fleet.store.submit(job)

    def schedule_events(self, every_s: float, jitter_s: float = 0.0) -> None:
        """Poll every meter's event logs every ``every_s`` (``schedules.events_every``)."""

        async def job(meter_id: str) -> None:
            await self.head.poll_events(meter_id)

        self.head.scheduler.every("events", every_s, job, jitter_s=jitter_s)

    def alarm_events(self, push: PushEvent) -> list[Event]:
        """Named events (outage, restoration, limiter trip...) decoded from an alarm push;
        empty for other pushes. Bits already reported are not reported again while the
        meter keeps them set (see :func:`~smmc_gateway.usecases.events.named_alarms`)."""
        try:
            model: ModelConfig | None = self.head.model_of(push.meter_id)
        except KeyError:  # a meter (or model) removed by a reload since: the base model
            model = None
        named = events_uc.decode_alarms(
            push.body, model, self._alarm_bits, push.meter_id, push.attribute
        )
        at = push.meter_time or push.received_at
        return [event(kind, reason, details, at) for kind, reason, details in named]
