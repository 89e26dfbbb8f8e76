"""MQTT noun MeterReadSchedule (issue 11 item 3): create, change, delete and get read schedules.

create / change (the whole schedule; change replaces one that exists, create refuses an
``mRID`` in use)::

    {"mRID": "night-registers",
     "EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "feeder-12"}],
     "ReadingTypes": [{"obis": "1.0.1.8.0.255"},
                      {"ref": "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"},
                      {"obis": "1.0.99.1.0.255"}],
     "TimeSchedule": {"recurrencePeriod": 3600, "window": {"start": "00:00", "end": "04:00"}}}

``ReadingTypes``: registers by OBIS or by their ReadingType code (a register of the meter's
model), the load profile by the model's ``load_profile`` OBIS. ``recurrencePeriod`` in
seconds (``[commands] min_read_interval``..86400); ``window`` optional, UTC time of day (see
:mod:`~smmc_gateway.headend.read_schedules` for when each meter is read). delete:
``{"mRID": ...}``. get: ``{}`` (every schedule) or ``{"mRID": ...}``.

Reply ``{"MeterReadSchedule": [...]}``: each schedule as given plus ``meters`` (how many
it reaches now, groups expanded), ``nextRun`` (the earliest next read), ``createdDateTime``
and ``changedDateTime``; delete answers ``{"mRID": ..., "deleted": true}``.

Bounds, checked before anything is stored: the meters a request names (groups expanded)
by ``max_meters_per_request`` (the dispatcher), the schedules kept by
``max_read_schedules``, the schedules reaching one meter by
``max_read_schedules_per_meter``, the period by ``min_read_interval`` (all ``[commands]``);
over one: FAILED ``LimitExceeded`` naming it. A get reply is kept under
``max_reply_bytes`` (schedules left out are named in a ``Truncated`` error).
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.headend.paging import dumps, reply_budget
from smmc_gateway.headend.read_schedules import (
    OWNED_PREFIX,
    ReadSchedule,
    ReadSchedules,
    iso,
    parse,
    resolve,
)
from smmc_gateway.headend.request_limits import (
    MAX_READING_TYPES,
    LimitExceeded,
    show,
    target_meters,
)
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError

VERBS = ("create", "change", "delete", "get")


def _invalid(problems: list[str]) -> Outcome:
    return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems])


class ReadScheduleCommands:
    """``await ReadScheduleCommands(schedules, commands)(verb, payload)`` -> the reply."""

    def __init__(self, schedules: ReadSchedules, commands: CommandsConfig) -> None:
        self.schedules = schedules
        self.commands = commands

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        if verb in ("create", "change"):
            return await self._put(verb, payload)
        if verb == "delete":
            return await self._delete(payload)
        if verb == "get":
            return self._get(payload)
        return _invalid([f"header.verb: {show(verb)}; MeterReadSchedule takes {', '.join(VERBS)}"])

    def view(self, s: ReadSchedule) -> dict[str, Any]:
        nxt = self.schedules.next_runs(s)
        return {
            **s.spec(),
            "meters": len(self.schedules.meters_of(s)),
            "nextRun": iso(nxt) if nxt is not None else None,
            "createdDateTime": iso(s.created),
            "changedDateTime": iso(s.changed),
        }

    async def _put(self, verb: str, payload: dict[str, Any]) -> Outcome:
        c = self.commands
        problems: list[str] = []
        schedule = parse(
            payload, problems, min_period_s=c.min_read_interval_s, max_types=MAX_READING_TYPES
        )
        meters = target_meters(self.schedules.fleet, payload, "payload", problems)
        if schedule is not None and schedule.mrid.startswith(OWNED_PREFIX):
            problems.append(
                f"payload.mRID: {show(schedule.mrid)}: ids starting "
                f"{OWNED_PREFIX!r} are provisioned meters' own schedules, changed "
                "with EndDeviceConfig (the item's schedule)"
            )
        elif schedule is not None:
            old = self.schedules.get(schedule.mrid)
            if verb == "create" and old is not None:
                problems.append(
                    f"payload.mRID: schedule {show(schedule.mrid)} exists; "
                    "replace it with verb change (or delete it first)"
                )
            elif verb == "change" and old is None:
                problems.append(
                    f"payload.mRID: no schedule {show(schedule.mrid)}; make it with verb create"
                )
            seen: set[str] = set()
            for m in meters:
                model = self.schedules.model_of(m)
                if model.name not in seen:
                    seen.add(model.name)
                    resolve(model, schedule.reading_types, problems=problems)
        if problems or schedule is None:
            return _invalid(problems)
        if verb == "create" and len(self.schedules.all()) >= c.max_read_schedules:
            raise LimitExceeded(
                f"payload: this gateway keeps {len(self.schedules.all())} read "
                "schedules; at most commands.max_read_schedules = "
                f"{c.max_read_schedules}: delete one first"
            )
        cap = c.max_read_schedules_per_meter
        have = self.schedules.per_meter(excluding=schedule.mrid)
        over = [m for m in meters if have[m] + 1 > cap]
        if over:
            more = f" and {len(over) - 5} more" if len(over) > 5 else ""
            raise LimitExceeded(
                f"payload: meter(s) {', '.join(over[:5])}{more} would be read by "
                f"more than commands.max_read_schedules_per_meter = {cap} "
                "schedules; delete one of theirs or name fewer meters"
            )
        kept = await self.schedules.put(schedule)
        return Outcome("OK", {"MeterReadSchedule": [self.view(kept)]})

    async def _delete(self, payload: dict[str, Any]) -> Outcome:
        mrid = payload.get("mRID")
        if not isinstance(mrid, str) or not mrid:
            return _invalid([f"payload.mRID: {show(mrid)} is not a schedule id"])
        if self.schedules.get(mrid) is None:
            return Outcome(
                "FAILED",
                errors=[{"code": "NotFound", "details": f"payload.mRID: no schedule {show(mrid)}"}],
            )
        if mrid.startswith(OWNED_PREFIX):
            return _invalid(
                [
                    f"payload.mRID: {show(mrid)} is meter "
                    f"{mrid.removeprefix(OWNED_PREFIX)}'s own schedule: drop it with "
                    'EndDeviceConfig change ("schedule": null)'
                ]
            )
        await self.schedules.delete(mrid)
        return Outcome("OK", {"MeterReadSchedule": [{"mRID": mrid, "deleted": True}]})

    def _get(self, payload: dict[str, Any]) -> Outcome:
        mrid = payload.get("mRID")
        if mrid is not None:
            if not isinstance(mrid, str):
                return _invalid([f"payload.mRID: {show(mrid)} is not a schedule id"])
            one = self.schedules.get(mrid)
            if one is None:
                return Outcome(
                    "FAILED",
                    errors=[
                        {"code": "NotFound", "details": f"payload.mRID: no schedule {show(mrid)}"}
                    ],
                )
            found = [one]
        else:
            found = self.schedules.all()
        left = reply_budget(self.commands.max_reply_bytes, 1)
        items: list[dict[str, Any]] = []
        cut: list[str] = []
        for s in found:
            item = self.view(s)
            size = len(dumps(item)) + 1
            if size > left or cut:
                cut.append(s.mrid)
                continue
            left -= size
            items.append(item)
        errors: list[ReplyError] = []
        if cut:
            errors.append(
                {
                    "code": "Truncated",
                    "details": f"{len(cut)} schedule(s) left out "
                    f"(commands.max_reply_bytes = {self.commands.max_reply_bytes}), "
                    f"ask for each by mRID: {', '.join(cut[:20])}",
                }
            )
        return Outcome("PARTIAL" if cut else "OK", {"MeterReadSchedule": items}, errors)
