"""MQTT noun MeterReadings (get): the on-demand read of meters, or the stored data.

Live (the default): ``EndDevices[].mRID``: registers (all of the model's, or
``ReadingTypes[].obis``) and, with ``timeSchedule.start`` (and ``end``), the load profile
in that range, read now at command priority. A live profile read is bounded before any
session opens: window / the model's capture period, summed over the meters, against
``[commands] max_query_intervals`` (FAILED ``LimitExceeded`` naming the count). The reply
is a MeterReadings payload kept under ``max_reply_bytes`` (a load profile cut is PARTIAL
with a ``Truncated`` error naming where the next page starts). With ``fromStore: true``
the stored data instead, never the meter: :class:`StoredOrLiveReadings` routes it to
:mod:`~smmc_gateway.headend.commands.customer_meter_data_set`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.commands.common import Invalid, NounHandler
from smmc_gateway.headend.commands.common import error_text as _error_text
from smmc_gateway.headend.commands.customer_meter_data_set import CustomerDataCommands
from smmc_gateway.headend.paging import MIN_PART_BYTES, fit_blocks, iso, reply_budget, truncated
from smmc_gateway.headend.request_limits import (
    EARLIEST,
    FUTURE_SLACK_S,
    MAX_READING_TYPES,
    LimitExceeded,
    parse_utc,
    show,
    work_problem,
)
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import MeterReadingPart, ReplyError, meter_readings_payload

_OBIS = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", re.ASCII)


class LiveReadings(NounHandler):
    """``MeterReadings get`` read from the meters now."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig) -> None:
        super().__init__(headend)
        self.commands = commands

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        return await self._readings(verb, payload)

    async def _readings(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb != "get":
            problems.append(f"header.verb: {show(verb)}; MeterReadings takes get")
        meters = self._meters(payload, "payload", problems)
        obis: list[str] = []
        types = payload.get("ReadingTypes", [])
        if not isinstance(types, list):
            problems.append('payload.ReadingTypes: must be an array of {"obis": ...}')
            types = []
        elif len(types) > MAX_READING_TYPES:
            problems.append(
                f"payload.ReadingTypes: {len(types)} entries; at most {MAX_READING_TYPES}"
            )
            types = []
        for j, rt in enumerate(types):
            o = rt.get("obis") if isinstance(rt, dict) else None
            if not isinstance(o, str) or not _OBIS.fullmatch(o):
                problems.append(
                    f"payload.ReadingTypes[{j}].obis: {show(o)} is not an OBIS "
                    "code like 1.0.1.8.0.255"
                )
            else:
                obis.append(o)
        start, end = _schedule(payload, problems)
        if problems:
            raise Invalid(problems)
        if start is not None:
            # the work bound first (a window back to year 1 is over it), then the dates a
            # profile read can take
            self._check_profile_work(meters, start, end)
            for key, moment in (("start", start), ("end", end)):
                if moment is not None and moment < EARLIEST:
                    problems.append(
                        f"payload.timeSchedule.{key}: {iso(moment)} is before "
                        f"{iso(EARLIEST)}; no meter holds a profile that old"
                    )
            if problems:
                raise Invalid(problems)
        parts: list[MeterReadingPart] = []
        errors: list[ReplyError] = []
        cap = f"commands.max_reply_bytes = {self.commands.max_reply_bytes}"
        left = reply_budget(self.commands.max_reply_bytes, len(meters))
        for m in meters:
            if left < MIN_PART_BYTES:
                errors.append(truncated(m, "its readings", None, f"the reply reached {cap}"))
                continue
            try:
                r = await self.headend.read_on_demand(m, obis or None, start, end)
            except (SessionError, OSError, TimeoutError) as exc:
                errors.append({"code": "MeterFailed", "details": f"{m}: {_error_text(exc)}"})
                continue
            part = MeterReadingPart(meter=m, readings=r.readings)
            left -= len(meter_readings_payload([part]))
            if r.profile is not None and r.profile.interval_blocks is not None:
                # up to max_query_intervals rows: parsed and cut off the event loop
                blocks, cut = await asyncio.to_thread(_fit_profile, r.profile.interval_blocks, left)
                part["interval_blocks"] = blocks
                left -= sum(len(json.dumps(b, separators=(",", ":"))) for b in blocks)
                if cut is not None:
                    errors.append(truncated(m, f"load profile cut ({cap})", cut))
            parts.append(part)
        if not parts:
            return Outcome("FAILED", {}, errors)
        body = json.loads(meter_readings_payload(parts))
        return Outcome("PARTIAL" if errors else "OK", body, errors)

    def _check_profile_work(self, meters: list[str], start: datetime, end: datetime | None) -> None:
        """A live profile read asks each meter for window / its capture period intervals
        (the window up to now, or tomorrow at the latest: a meter holds nothing later):
        bounded by ``max_query_intervals`` before any session is opened."""
        latest = datetime.now(UTC) + timedelta(seconds=FUTURE_SLACK_S)
        end = min(end, latest) if end is not None else datetime.now(UTC)
        seconds = max(0.0, (end - start).total_seconds())
        work = sum(
            math.ceil(seconds / max(1.0, self.headend.model_of(m).capture_period_s)) for m in meters
        )
        problem = work_problem(
            work,
            self.commands,
            f"payload.timeSchedule: {iso(start)} .. {iso(end)} / the capture "
            f"period x {len(meters)} meter(s)",
            "narrow timeSchedule or name fewer meters",
        )
        if problem is not None:
            raise LimitExceeded(problem)


class StoredOrLiveReadings:
    """``MeterReadings``: ``fromStore: true`` -> the stored data (as CustomerMeterDataSet),
    otherwise ``live(verb, payload)``, the on-demand read of the meter."""

    def __init__(
        self,
        headend: HeadEnd,
        live: Callable[[str, dict[str, Any]], Awaitable[Outcome]],
        commands: CommandsConfig | None = None,
    ) -> None:
        self.stored = CustomerDataCommands(headend, commands)
        self.live = live

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        flag = payload.get("fromStore", False)
        if not isinstance(flag, bool):
            return Outcome(
                "FAILED",
                errors=[
                    {
                        "code": "InvalidRequest",
                        "details": f"payload.fromStore: {show(flag)} is not true or false",
                    }
                ],
            )
        if not flag:
            return await self.live(verb, payload)
        return await self.stored(verb, {k: v for k, v in payload.items() if k != "fromStore"})


def _fit_profile(raw: bytes, budget: int) -> tuple[list[dict[str, Any]], datetime | None]:
    return fit_blocks(json.loads(raw), budget)


def _schedule(
    payload: dict[str, Any], problems: list[str]
) -> tuple[datetime | None, datetime | None]:
    """``timeSchedule`` of a live read: start and optional end, both inclusive (the
    profile entries stamped in [start, end]; end = start is the one entry then, which
    is where the last page of a cut profile may start); without an end the read runs to
    now, so a start in the future is a problem too."""
    sched = payload.get("timeSchedule")
    if sched is None:
        return None, None
    if not isinstance(sched, dict):
        problems.append("payload.timeSchedule: must be an object with start/end")
        return None, None
    where = "payload.timeSchedule"
    if "start" not in sched:
        problems.append(f"{where}.start: missing")
        return None, None
    start = parse_utc(sched["start"], f"{where}.start", problems)
    end = (
        parse_utc(sched["end"], f"{where}.end", problems) if sched.get("end") is not None else None
    )
    if start is None:
        return None, None
    if end is not None and end < start:
        problems.append(f"{where}.end: {iso(end)} is before start {iso(start)}")
    elif end is None and start >= datetime.now(UTC):
        problems.append(
            f"{where}.start: {iso(start)} is in the future; with no end the read runs up to now"
        )
    return start, end
