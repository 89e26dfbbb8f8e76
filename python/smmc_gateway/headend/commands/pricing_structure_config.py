"""MQTT noun PricingStructureConfig (use case 8, tariff calendar): request validation,
the calendar written to each meter and read back, one reply.

``PricingStructureConfig`` (verb create or change)::

    {"PricingStructure": {…calendar, see usecases/tariff.py…},
     "EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}]}

Reply ``PricingStructureConfig``: per meter the calendar names read back (active and
passive), activate_passive_calendar_time and the active tariff register.

Invalid requests get a FAILED reply (code ``InvalidRequest``) per problem, each naming
the JSON path and what is allowed; no meter is touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.headend.commands.meter_config import (
    METER_ERRORS,
    check_verb,
    error_text,
    invalid,
    overall,
    target_meters,
)
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError
from smmc_gateway.usecases import tariff


class PricingCommands:
    """``await PricingCommands(headend)(verb, payload)`` -> the reply Outcome."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        check_verb(verb, ("create", "change"), "PricingStructureConfig", problems)
        cal = tariff.parse_calendar(
            payload.get("PricingStructure"), "payload.PricingStructure", problems
        )
        meters = target_meters(self.headend, payload, "payload", problems)
        if problems or cal is None:
            return invalid(problems)
        entries = await asyncio.gather(*(self._meter(m, cal) for m in meters))
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{e['EndDevices'][0]['mRID']}: {e['details']}"}
            for e in entries
            if e["result"] != "OK"
        ]
        return overall(list(entries), errors, {"PricingStructureConfig": list(entries)})

    async def _meter(self, meter: str, cal: tariff.Calendar) -> dict[str, Any]:
        e: dict[str, Any] = {"EndDevices": [{"mRID": meter}]}
        try:
            async with self.headend.scheduler.session(meter, Priority.COMMAND) as s:
                r = await tariff.write_calendar(
                    s,
                    cal,
                    obis=self.headend.obis(meter, "activity_calendar"),
                    active_tariff=self.headend.obis(meter, "active_tariff"),
                    special_days=self.headend.obis(meter, "special_days"),
                )
        except DataAccessError as exc:
            return {**e, "result": "FAILED", "details": f"the meter refused {exc}"}
        except METER_ERRORS as exc:
            return {**e, "result": "FAILED", "details": error_text(exc)}
        return {
            **e,
            "result": "OK",
            "details": "calendar written and read back",
            "activeCalendar": r.active_name,
            "passiveCalendar": r.passive_name,
            "activationTime": r.activation_time,
            "activeTariff": r.active_tariff,
            "specialDays": r.special_days,
        }
