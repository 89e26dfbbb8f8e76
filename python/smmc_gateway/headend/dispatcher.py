"""Command dispatch: an inbound request (noun, verb, payload) -> use cases -> one Outcome.

The uplink has already parsed the envelope, journaled the request and will publish
exactly one reply with what this returns. Here the payload is validated against
what the noun needs (every problem named with its JSON path) before any meter is
touched; a request that fails validation gets a FAILED reply and does nothing.

Served:

* ``EndDeviceControls`` (create/execute): ``EndDeviceControl[].EndDeviceControlType.ref``
  one of ``connect``, ``disconnect``, ``ping`` (OMS poll; ``EndDeviceGroups`` may name
  configured groups: multicast), ``clockSync``; ``EndDevices[].mRID`` configured meters.
  Reply: one entry per control and meter with ``result`` OK/FAILED and ``details``
  (``state`` for ping: energised | disconnected | unreachable).
* ``MeterReadings`` (get): on-demand read of ``EndDevices[].mRID``: registers (all of the
  model's, or ``ReadingTypes[].obis``) and, with ``timeSchedule.start`` (and ``end``),
  the load profile in that range. Reply: a MeterReadings payload.

Other nouns of the contract get a FAILED reply ``NotImplemented`` naming the noun.
A request that arrives while the gateway is stopping is not answered now: it stays in
the journal and is served after the restart.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from smmc_gateway.dlms.session import SessionError
from smmc_gateway.headend.scheduler import GatewayStopping
from smmc_gateway.headend.service import HeadEnd
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import MeterReadingPart, ReplyError, meter_readings_payload
from smmc_gateway.usecases.clock import describe as describe_clock
from smmc_gateway.usecases.connect import SwitchNotConfirmed

log = structlog.get_logger("smmc_gateway.dispatcher")

CONTROL_TYPES = ("connect", "disconnect", "ping", "clockSync")
_OBIS = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


class Invalid(Exception):
    """The request payload is invalid; ``problems`` name path and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def failed(code: str, details: str) -> Outcome:
    return Outcome("FAILED", errors=[{"code": code, "details": details}])


@dataclass(frozen=True)
class _Control:
    index: int
    mrid: str | None
    kind: str
    meters: list[str]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Dispatcher:
    """The uplink's command handler: ``await dispatcher(noun, verb, payload)``."""

    def __init__(self, headend: HeadEnd, *, poll_timeout_s: float = 30.0) -> None:
        self.headend = headend
        self.poll_timeout_s = poll_timeout_s
        self._nouns: dict[str, Callable[[str, dict[str, Any]], Awaitable[Outcome]]] = {
            "EndDeviceControls": self._controls,
            "MeterReadings": self._readings,
        }

    async def __call__(self, noun: str, verb: str, payload: dict[str, Any]) -> Outcome:
        handler = self._nouns.get(noun)
        if handler is None:
            return failed("NotImplemented", f"noun {noun!r} is not served by this gateway yet; "
                          f"served: {', '.join(sorted(self._nouns))}")
        try:
            return await handler(verb, payload)
        except Invalid as exc:
            return Outcome("FAILED", errors=[{"code": "InvalidRequest", "details": p}
                                             for p in exc.problems])
        except GatewayStopping:
            # Checkpoint: leave it journaled and unreplied; the uplink cancels this task as
            # it stops, and the next start dispatches the request again (one reply in all).
            log.info("command_parked_for_restart", noun=noun)
            await asyncio.Event().wait()
            raise AssertionError("unreachable") from None

    # -- validation helpers ------------------------------------------------------------
    def _meters(self, item: dict[str, Any], where: str, problems: list[str],
                groups: bool = False) -> list[str]:
        out: list[str] = []
        devices = item.get("EndDevices", [])
        if not isinstance(devices, list):
            problems.append(f"{where}.EndDevices: must be an array of {{\"mRID\": ...}}")
            devices = []
        for j, d in enumerate(devices):
            mrid = d.get("mRID") if isinstance(d, dict) else None
            if not isinstance(mrid, str) or not mrid:
                problems.append(f"{where}.EndDevices[{j}].mRID: missing or not a string")
            elif not self.headend.fleet.has(mrid):
                problems.append(f"{where}.EndDevices[{j}].mRID: meter {mrid!r} is not "
                                "configured on this gateway")
            else:
                out.append(mrid)
        raw_groups = item.get("EndDeviceGroups", []) if groups else []
        if not isinstance(raw_groups, list):
            problems.append(f"{where}.EndDeviceGroups: must be an array of {{\"mRID\": ...}}")
            raw_groups = []
        for j, g in enumerate(raw_groups):
            name = g.get("mRID") if isinstance(g, dict) else None
            members = self.headend.fleet.group(name) if isinstance(name, str) else []
            if not members:
                problems.append(f"{where}.EndDeviceGroups[{j}].mRID: {name!r} is not a "
                                "configured group (no meter names it)")
            out.extend(m for m in members if m not in out)
        if not out and not any(p.startswith(where) for p in problems):
            problems.append(f"{where}: names no meter (EndDevices"
                            f"{' or EndDeviceGroups' if groups else ''} is empty)")
        return out

    # -- EndDeviceControls ---------------------------------------------------------------
    def _parse_controls(self, verb: str, payload: dict[str, Any]) -> list[_Control]:
        problems: list[str] = []
        if verb not in ("create", "execute"):
            problems.append(f"header.verb: {verb!r}; EndDeviceControls takes create or execute")
        items = payload.get("EndDeviceControl")
        if not isinstance(items, list) or not items:
            raise Invalid([*problems, "payload.EndDeviceControl: must be a non-empty array"])
        controls: list[_Control] = []
        for i, item in enumerate(items):
            where = f"payload.EndDeviceControl[{i}]"
            if not isinstance(item, dict):
                problems.append(f"{where}: must be an object")
                continue
            ctype = item.get("EndDeviceControlType")
            ref = ctype.get("ref") if isinstance(ctype, dict) else None
            if ref not in CONTROL_TYPES:
                problems.append(f"{where}.EndDeviceControlType.ref: {ref!r} is not one of "
                                f"{', '.join(CONTROL_TYPES)}")
            meters = self._meters(item, where, problems, groups=ref == "ping")
            mrid = item.get("mRID") if isinstance(item.get("mRID"), str) else None
            controls.append(_Control(i, mrid, str(ref), meters))
        if problems:
            raise Invalid(problems)
        return controls

    async def _controls(self, verb: str, payload: dict[str, Any]) -> Outcome:
        controls = self._parse_controls(verb, payload)
        entries: list[dict[str, Any]] = []
        for c in controls:
            if c.kind == "ping":
                results = await self.headend.poll(c.meters, self.poll_timeout_s)
                for r in results:
                    entries.append(self._entry(c, r.meter_id, r.state != "unreachable",
                                               r.details, state=r.state))
                continue
            outcomes = await asyncio.gather(*(self._one(c.kind, m) for m in c.meters))
            for m, (ok, details) in zip(c.meters, outcomes, strict=True):
                entries.append(self._entry(c, m, ok, details))
        good = sum(1 for e in entries if e["result"] == "OK")
        result = "OK" if good == len(entries) else ("FAILED" if good == 0 else "PARTIAL")
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{e['EndDevices'][0]['mRID']}: {e['details']}"}
            for e in entries if e["result"] != "OK"]
        return Outcome(result, {"EndDeviceControl": entries}, errors)

    @staticmethod
    def _entry(c: _Control, meter: str, ok: bool, details: str, **extra: Any) -> dict[str, Any]:
        e: dict[str, Any] = {"EndDeviceControlType": {"ref": c.kind},
                             "EndDevices": [{"mRID": meter}],
                             "result": "OK" if ok else "FAILED", "details": details, **extra}
        if c.mrid is not None:
            e["mRID"] = c.mrid
        return e

    async def _one(self, kind: str, meter: str) -> tuple[bool, str]:
        try:
            if kind in ("connect", "disconnect"):
                r = await self.headend.switch(meter, kind)  # type: ignore[arg-type]
                return True, (f"output_state {r.after.output_state}, control_state "
                              f"{r.after.control_state}")
            from smmc_gateway.headend.gates import Priority

            out = await self.headend.sync_clock(meter, Priority.COMMAND, force=False)
            if out.result is None:
                return False, f"refused: {out.refused}"
            return True, describe_clock(out.result)
        except (SessionError, OSError, TimeoutError, SwitchNotConfirmed) as exc:
            return False, _error_text(exc)

    # -- MeterReadings get -----------------------------------------------------------
    async def _readings(self, verb: str, payload: dict[str, Any]) -> Outcome:
        problems: list[str] = []
        if verb != "get":
            problems.append(f"header.verb: {verb!r}; MeterReadings takes get")
        meters = self._meters(payload, "payload", problems)
        obis: list[str] = []
        for j, rt in enumerate(payload.get("ReadingTypes", []) or []):
            o = rt.get("obis") if isinstance(rt, dict) else None
            if not isinstance(o, str) or not _OBIS.match(o):
                problems.append(f"payload.ReadingTypes[{j}].obis: {o!r} is not an OBIS code "
                                "like 1.0.1.8.0.255")
            else:
                obis.append(o)
        start = end = None
        sched = payload.get("timeSchedule")
        if sched is not None:
            if not isinstance(sched, dict):
                problems.append("payload.timeSchedule: must be an object with start/end")
            else:
                start = _time(sched, "start", problems, required=True)
                end = _time(sched, "end", problems, required=False)
                if start and end and end <= start:
                    problems.append("payload.timeSchedule.end: must be after start")
        if problems:
            raise Invalid(problems)
        parts: list[MeterReadingPart] = []
        errors: list[ReplyError] = []
        for m in meters:
            try:
                r = await self.headend.read_on_demand(m, obis or None, start, end)
            except (SessionError, OSError, TimeoutError) as exc:
                errors.append({"code": "MeterFailed", "details": f"{m}: {_error_text(exc)}"})
                continue
            part = MeterReadingPart(meter=m, readings=r.readings)
            if r.profile is not None and r.profile.interval_blocks is not None:
                part["interval_blocks"] = r.profile.interval_blocks
            parts.append(part)
        if not parts:
            return Outcome("FAILED", {}, errors)
        body = json.loads(meter_readings_payload(parts))
        return Outcome("PARTIAL" if errors else "OK", body, errors)


def _time(t: dict[str, Any], key: str, problems: list[str], required: bool) -> datetime | None:
    raw = t.get(key)
    if raw is None:
        if required:
            problems.append(f"payload.timeSchedule.{key}: missing")
        return None
    if not isinstance(raw, str) or not _ISO.match(raw):
        problems.append(f"payload.timeSchedule.{key}: {raw!r} is not UTC ISO-8601 like "
                        "2026-11-27T12:00:00Z")
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def meters_of(entries: Sequence[dict[str, Any]]) -> list[str]:
    return [e["EndDevices"][0]["mRID"] for e in entries]
