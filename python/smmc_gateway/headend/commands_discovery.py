"""MQTT noun EndDeviceConfig, verb get (use case 1): the discovered configuration of meters.

::

    {"EndDevices": [{"mRID": "m1"}], "EndDeviceGroups": [{"mRID": "g"}], "refresh": false}

Per meter, the summary kept from the last discovery (object list, identification,
clock time zone, model mismatches; see :mod:`smmc_gateway.usecases.discovery`); a meter
never discovered, or every meter when ``refresh`` is true, is discovered now (and its
EndDeviceConfig published on ``meter/{meter}/config`` as after any discovery). Reply
``EndDeviceConfig``: one summary per meter that answered; meters that did not are named
in the errors (PARTIAL or FAILED).
"""

from __future__ import annotations

from typing import Any

from smmc_gateway.dlms.errors import SessionError
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import ReplyError

METER_ERRORS = (SessionError, OSError, TimeoutError)


def _target_meters(headend: HeadEnd, payload: dict[str, Any], problems: list[str]) -> list[str]:
    out: list[str] = []
    for key, group in (("EndDevices", False), ("EndDeviceGroups", True)):
        raw = payload.get(key, [])
        if not isinstance(raw, list):
            problems.append(f"payload.{key}: must be an array of {{\"mRID\": ...}}")
            continue
        for j, d in enumerate(raw):
            name = d.get("mRID") if isinstance(d, dict) else None
            if not isinstance(name, str) or not name:
                problems.append(f"payload.{key}[{j}].mRID: missing or not a string")
            elif group:
                members = headend.fleet.group(name)
                if not members:
                    problems.append(f"payload.{key}[{j}].mRID: {name!r} is not a configured "
                                    "group (no meter names it)")
                out.extend(m for m in members if m not in out)
            elif not headend.fleet.has(name):
                problems.append(f"payload.{key}[{j}].mRID: meter {name!r} is not configured "
                                "on this gateway")
            elif name not in out:
                out.append(name)
    if not out and not problems:
        problems.append("payload: names no meter (EndDevices and EndDeviceGroups are empty)")
    return out


class DiscoveryCommands:
    """``await DiscoveryCommands(headend)(verb, payload)`` -> the reply Outcome."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb != "get":
            problems.append(f"header.verb: {verb!r}; EndDeviceConfig takes get")
        refresh = payload.get("refresh", False)
        if not isinstance(refresh, bool):
            problems.append(f"payload.refresh: {refresh!r} is not true or false")
        meters = _target_meters(self.headend, payload, problems)
        if problems:
            return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p}
                                             for p in problems])
        items: list[dict[str, Any]] = []
        errors: list[ReplyError] = []
        for m in meters:
            summary = None if refresh else await self.headend.fleet.discovery(m)
            if summary is None:
                try:
                    summary = await self.headend.discover(m, Priority.COMMAND)
                except METER_ERRORS as exc:
                    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    errors.append({"code": "MeterFailed", "details": f"{m}: {text}"})
                    continue
            items.append(summary)
        result = "OK" if not errors else ("FAILED" if not items else "PARTIAL")
        return Outcome(result, {"EndDeviceConfig": items} if items else {}, errors)
