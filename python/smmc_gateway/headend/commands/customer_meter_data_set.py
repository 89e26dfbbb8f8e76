"""MQTT noun CustomerMeterDataSet, answered from the data store alone (use case 3); no meter
is touched.

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
above): :class:`~smmc_gateway.headend.commands.meter_readings.StoredOrLiveReadings` routes
it here, any other MeterReadings request to the on-demand read. That form works with
uplinks whose noun list predates this noun.

``ReadingsReport`` (get, use case 11) is :mod:`~smmc_gateway.headend.commands.readings_report`;
it shares the window, the bounds and the helpers here.

Bounds (issue 7), all checked before the store is read; a request over them is answered
FAILED ``LimitExceeded`` naming the limit and the count:

* the work, ``[commands] max_query_intervals``, counts the window as asked (its end no
  later than tomorrow: nothing is stored later): CustomerMeterDataSet (and MeterReadings
  fromStore) window / the model's capture period per meter, summed over the meters
  (and at most ``maxIntervals`` stamps per meter in one reply); ReadingsReport with
  ``intervalSeconds`` window / intervalSeconds per meter, summed; without it the period
  is inferred from the stored stamps, so the stored stamps are the work: the scan stops,
  and the request is refused, when the meters' stored stamps in the window exceed it;
* the retention: a window reaching back past what the store keeps (90 days) is
  answered from the oldest data kept (the report's ``period.start`` says so); one that
  ends before it is refused (InvalidRequest: nothing is kept there);
* the reply, ``[commands] max_reply_bytes``: a part that would make the reply larger is
  cut at a stamp (CustomerMeterDataSet: the newest intervals; ReadingsReport: the
  report ends where the first gap left out starts) and a ``Truncated`` error names
  where to start the next page; meters for which no room is left are named too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.headend.paging import MIN_PART_BYTES, iso, reply_budget, truncated
from smmc_gateway.headend.request_limits import (
    FUTURE_SLACK_S,
    LimitExceeded,
    parse_utc,
    show,
    target_meters,
    work_problem,
)
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError, meter_readings_payload

MAX_INTERVALS = 2000
#: Rendered bytes of one gap in a ReadingsReport (a little more than the longest).
GAP_BYTES = 110
#: Rendered bytes of a ReadingsReport entry without its gaps and event counts.
REPORT_BYTES = 600


@dataclass(frozen=True)
class StoredWindow:
    """A request's ``[start, end)``; ``scan_start``: no earlier than the oldest data kept;
    ``bound_end``: no later than tomorrow (nothing is stored later)."""

    start: datetime
    end: datetime
    scan_start: datetime
    bound_end: datetime
    kept: str  # "the store keeps 90 days, from ..."

    def intervals(self, period_s: float) -> int:
        """Intervals of ``period_s`` in ``[start, bound_end)``: the work bound counts the
        window as asked (up to tomorrow), not the part the retention still keeps."""
        seconds = self.bound_end.timestamp() - self.start.timestamp()
        return max(0, math.ceil(seconds / max(1.0, period_s)))

    def text(self) -> str:
        return f"timeSchedule {iso(self.start)} .. {iso(self.bound_end)}"


def stored_window(headend: HeadEnd, payload: dict[str, Any], problems: list[str]) -> StoredWindow:
    """The request's window, ``end`` by default now."""
    ts = payload.get("timeSchedule")
    store = headend.datastore
    now = datetime.fromtimestamp(store.clock(), UTC)
    oldest = store.oldest_kept()
    kept = f"the store keeps {store.retention_s / 86400:g} days, from {iso(oldest)}"
    nothing = StoredWindow(now, now, now, now, kept)
    if not isinstance(ts, dict):
        problems.append(
            'payload.timeSchedule: missing; give {"start": ..., "end": ...} in UTC ISO-8601 with Z'
        )
        return nothing
    before = len(problems)
    start = parse_utc(ts.get("start"), "payload.timeSchedule.start", problems)
    end = parse_utc(ts["end"], "payload.timeSchedule.end", problems) if "end" in ts else now
    if start is None or end is None or len(problems) > before:
        return nothing
    if start >= end:
        problems.append(f"payload.timeSchedule: start {iso(start)} is not before end {iso(end)}")
        return nothing
    if end <= oldest:
        problems.append(
            f"payload.timeSchedule.end: {iso(end)} is before the oldest data kept "
            f"({kept}); nothing to answer"
        )
        return nothing
    tomorrow = now + timedelta(seconds=FUTURE_SLACK_S)
    return StoredWindow(start, end, max(start, oldest), min(end, max(start, tomorrow)), kept)


def positive_int(
    payload: dict[str, Any], key: str, default: int | None, ceiling: int, problems: list[str]
) -> int | None:
    raw = payload.get(key, default)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= ceiling:
        problems.append(f"payload.{key}: {show(raw)} is not an integer 1..{ceiling}")
        return default
    return raw


def get_problems(verb: str, noun: str, problems: list[str]) -> Outcome | None:
    if verb != "get":
        problems.insert(0, f"header.verb: {show(verb)}; {noun} takes get")
    if problems:
        return Outcome(
            "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
        )
    return None


class CustomerDataCommands:
    """``CustomerMeterDataSet get``: stored readings of meters in a range."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig | None = None) -> None:
        self.headend = headend
        self.commands = commands or CommandsConfig()

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        window = stored_window(self.headend, payload, problems)
        limit = positive_int(payload, "maxIntervals", MAX_INTERVALS, MAX_INTERVALS, problems)
        meters = target_meters(self.headend.fleet, payload, "payload", problems)
        bad = get_problems(verb, "CustomerMeterDataSet", problems)
        if bad is not None:
            return bad
        assert limit is not None
        work = sum(window.intervals(self.headend.model_of(m).capture_period_s) for m in meters)
        problem = work_problem(
            work,
            self.commands,
            f"payload: {window.text()} / the capture period x {len(meters)} meter(s)",
            f"narrow timeSchedule ({window.kept}) or name fewer meters",
        )
        if problem is not None:
            raise LimitExceeded(problem)
        start, end = window.scan_start, window.end
        cap = f"commands.max_reply_bytes = {self.commands.max_reply_bytes}"
        left = reply_budget(self.commands.max_reply_bytes, len(meters))
        parts = []
        errors: list[ReplyError] = []
        for m in meters:
            if left < MIN_PART_BYTES:
                errors.append(truncated(m, "its data", None, f"the reply reached {cap}"))
                continue
            found = await self.headend.datastore.query(m, start, end, limit, max_bytes=left)
            left -= found.size
            parts.append(found.part())
            if found.truncated and found.next_start is not None:
                why = cap if found.by_bytes else f"maxIntervals = {limit}"
                errors.append(
                    truncated(
                        m,
                        f"{found.intervals} interval(s) returned, more stored ({why})",
                        found.next_start,
                    )
                )
        if not parts:
            return Outcome("FAILED", errors=errors)
        body = json.loads(meter_readings_payload(parts))
        return Outcome("PARTIAL" if errors else "OK", body, errors)
