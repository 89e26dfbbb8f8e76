"""MQTT nouns answered from the data store alone (use cases 3 and 11); no meter is touched.

``CustomerMeterDataSet`` (get), use case 3: a customer's or portal's query of what was
collected. A noun of its own rather than a flag on ``MeterReadings get`` because the two
differ in kind: ``MeterReadings get`` reads the meter now (a session at command priority,
fails when the meter does not answer), this one never opens a session and answers even
when the meter is off; USE-CASES row 3 names this noun. ::

    {"EndDevices": [{"mRID": "m1"}],
     "timeSchedule": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
     "maxIntervals": 2000}

Reply: a MeterReadings payload (docs/schemas/meter-readings.schema.json), one
MeterReading per meter, registers and IntervalBlocks stamped in ``[start, end)``. At
most ``maxIntervals`` (default and ceiling :data:`MAX_INTERVALS`) interval stamps per
meter: when more are stored the result is PARTIAL with an error ``Truncated`` naming the
first stamp left out; repeat the request with that as ``timeSchedule.start`` to page.

The same query is also ``MeterReadings get`` with ``"fromStore": true`` (and the payload
above): :class:`StoredOrLiveReadings` routes it here, any other MeterReadings request to
the on-demand read. That form works with uplinks whose noun list predates this noun.

``ReadingsReport`` (get), use case 11: per meter and period, expected vs received
intervals (``readSuccessRate``), the gaps as ranges, scheduled reads ok/failed and event
counts by EndDeviceEventType. Not a CIM noun (CIM has none for collection quality): a
gateway-specific report, documented in docs/schemas/readings-report.schema.json. ::

    {"EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}],
     "timeSchedule": {"start": ..., "end": ...}, "intervalSeconds": 900}

``intervalSeconds`` is optional: by default the capture period is inferred from the
stored stamps (the most common step). Reply ``{"ReadingsReport": [...]}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from smmc_gateway.headend.commands_discovery import _target_meters
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError, meter_readings_payload

MAX_INTERVALS = 2000
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _window(payload: dict[str, Any], problems: list[str]) -> tuple[datetime, datetime]:
    ts = payload.get("timeSchedule")
    now = datetime.now(UTC)
    if not isinstance(ts, dict):
        problems.append("payload.timeSchedule: missing; give {\"start\": ..., \"end\": ...}"
                        " in UTC ISO-8601 with Z")
        return now, now
    out: list[datetime] = []
    for key in ("start", "end"):
        raw = ts.get(key, None if key == "start" else _iso(now))
        if not isinstance(raw, str) or not _ISO.match(raw):
            problems.append(f"payload.timeSchedule.{key}: {raw!r} is not UTC ISO-8601"
                            " (e.g. 2026-11-01T00:00:00Z)")
            out.append(now)
        else:
            out.append(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    start, end = out
    if not problems and start >= end:
        problems.append(f"payload.timeSchedule: start {_iso(start)} is not before end {_iso(end)}")
    return start, end


def _positive(payload: dict[str, Any], key: str, default: int | None, ceiling: int,
              problems: list[str]) -> int | None:
    raw = payload.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= ceiling:
        problems.append(f"payload.{key}: {raw!r} is not an integer 1..{ceiling}")
        return default
    return raw


def _invalid(verb: str, noun: str, problems: list[str]) -> Outcome | None:
    if verb != "get":
        problems.insert(0, f"header.verb: {verb!r}; {noun} takes get")
    if problems:
        return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p}
                                         for p in problems])
    return None


class CustomerDataCommands:
    """``CustomerMeterDataSet get``: stored readings of meters in a range."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        start, end = _window(payload, problems)
        limit = _positive(payload, "maxIntervals", MAX_INTERVALS, MAX_INTERVALS, problems)
        meters = _target_meters(self.headend, payload, problems)
        bad = _invalid(verb, "CustomerMeterDataSet", problems)
        if bad is not None:
            return bad
        assert limit is not None
        parts = []
        errors: list[ReplyError] = []
        for m in meters:
            found = await self.headend.datastore.query(m, start, end, limit)
            parts.append(found.part())
            if found.truncated and found.next_start is not None:
                errors.append({"code": "Truncated", "details": (
                    f"{m}: {found.intervals} interval(s) returned, more stored; repeat with "
                    f"timeSchedule.start = {_iso(found.next_start)} for the next page")})
        body = meter_readings_payload(parts)
        return Outcome("PARTIAL" if errors else "OK", json.loads(body), errors)


class ReadingsReportCommands:
    """``ReadingsReport get``: read success rate, gaps, reads and events per meter."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        start, end = _window(payload, problems)
        period = _positive(payload, "intervalSeconds", None, 86400, problems)
        meters = _target_meters(self.headend, payload, problems)
        bad = _invalid(verb, "ReadingsReport", problems)
        if bad is not None:
            return bad
        reports = [(await self.headend.datastore.report(m, start, end, period)).as_json()
                   for m in meters]
        return Outcome("OK", {"ReadingsReport": reports})


class StoredOrLiveReadings:
    """``MeterReadings``: ``fromStore: true`` -> the stored data (as CustomerMeterDataSet),
    otherwise ``live(verb, payload)``, the on-demand read of the meter."""

    def __init__(self, headend: HeadEnd,
                 live: Callable[[str, dict[str, Any]], Awaitable[Outcome]]) -> None:
        self.stored = CustomerDataCommands(headend)
        self.live = live

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        flag = payload.get("fromStore", False)
        if not isinstance(flag, bool):
            return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details":
                                              f"payload.fromStore: {flag!r} is not true or false"}])
        if not flag:
            return await self.live(verb, payload)
        return await self.stored(verb, {k: v for k, v in payload.items() if k != "fromStore"})
