"""MQTT noun ReadingsReport, answered from the data store alone; no meter is touched.

``ReadingsReport`` (get), use case 11: per meter and period, expected vs received
intervals (``readSuccessRate``), the gaps as ranges, scheduled reads ok/failed and event
counts by EndDeviceEventType. Not a CIM noun (CIM has none for collection quality): a
gateway-specific report, documented in docs/schemas/readings-report.schema.json. ::

    {"EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}],
     "timeSchedule": {"start": ..., "end": ...}, "intervalSeconds": 900}

``intervalSeconds`` is optional: by default the capture period is inferred from the
stored stamps (the most common step). Reply ``{"ReadingsReport": [...]}``.

The bounds (the work, the retention, the reply) are those of
:mod:`~smmc_gateway.headend.commands.customer_meter_data_set`, whose window and helpers
this uses: without ``intervalSeconds`` the stored stamps are the work, so the scan stops,
and the request is refused, when the meters' stored stamps in the window exceed
``[commands] max_query_intervals``; a report that would pass ``max_reply_bytes`` ends where
the first gap left out starts and a ``Truncated`` error names where to start the next page.
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.headend.commands.customer_meter_data_set import (
    GAP_BYTES,
    REPORT_BYTES,
    get_problems,
    positive_int,
    stored_window,
)
from smmc_gateway.headend.datastore import TooMuchStored
from smmc_gateway.headend.paging import MIN_PART_BYTES, dumps, iso, reply_budget, truncated
from smmc_gateway.headend.request_limits import LimitExceeded, target_meters, work_problem
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.ops.config_model import CommandsConfig
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError


class ReadingsReportCommands:
    """``ReadingsReport get``: read success rate, gaps, reads and events per meter."""

    def __init__(self, headend: HeadEnd, commands: CommandsConfig | None = None) -> None:
        self.headend = headend
        self.commands = commands or CommandsConfig()

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        window = stored_window(self.headend, payload, problems)
        period = positive_int(payload, "intervalSeconds", None, 86400, problems)
        meters = target_meters(self.headend.fleet, payload, "payload", problems)
        bad = get_problems(verb, "ReadingsReport", problems)
        if bad is not None:
            return bad
        if period is not None:
            problem = work_problem(
                window.intervals(period) * len(meters),
                self.commands,
                f"payload: {window.text()} / intervalSeconds ({period}) x {len(meters)} meter(s)",
                f"narrow timeSchedule ({window.kept}), raise intervalSeconds or name fewer meters",
            )
            if problem is not None:
                raise LimitExceeded(problem)
        start, end = window.scan_start, window.end
        stamps_left = self.commands.max_query_intervals
        cap = f"commands.max_reply_bytes = {self.commands.max_reply_bytes}"
        left = reply_budget(self.commands.max_reply_bytes, len(meters))
        reports: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        for m in meters:
            if left < MIN_PART_BYTES:
                errors.append(truncated(m, "its report", None, f"the reply reached {cap}"))
                continue
            try:
                rep = await self.headend.datastore.report(
                    m,
                    start,
                    end,
                    period,
                    max_stamps=stamps_left,
                    max_gaps=max(1, (left - REPORT_BYTES) // GAP_BYTES),
                )
            except TooMuchStored:
                raise LimitExceeded(
                    f"payload: the stored interval stamps of {len(meters)} meter(s) in "
                    f"{iso(start)} .. {iso(end)} are more than commands.max_query_intervals "
                    f"= {self.commands.max_query_intervals} (reached at meter {m}): narrow "
                    "timeSchedule or name fewer meters"
                ) from None
            stamps_left -= rep.scanned
            doc = rep.as_json()
            left -= len(dumps(doc)) + 1
            reports.append(doc)
            if rep.truncated:
                errors.append(
                    truncated(
                        m,
                        f"report ends at {iso(rep.end)} after {len(rep.gaps)} gaps ({cap})",
                        rep.end,
                    )
                )
        result = "OK" if not errors else ("PARTIAL" if reports else "FAILED")
        return Outcome(result, {"ReadingsReport": reports} if reports else {}, errors)
