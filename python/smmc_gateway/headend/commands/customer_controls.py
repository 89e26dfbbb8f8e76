"""EndDeviceControls for the customer side (use cases 4 and 8): what the meter shows the
customer and whether it feeds the in-home display.

IEC 61968-9 sends display messages, prices and demand response events to a premise's
devices as EndDeviceControls (their EndDeviceAction kinds PanDisplay, PanPricing and
PanDemandResponse), so these are EndDeviceControls with their own control types; the
dispatcher hands a request to this module when its controls are of these types (a request
mixing them with connect/limit/... controls is refused: send them apart)::

    {"EndDeviceControl": [
      {"EndDeviceControlType": {"ref": "displayMessage"}, "EndDevices": [{"mRID": "m1"}],
       "textMessage": "Corte programado el 12/03 de 9:00 a 13:00", "messageCode": "17"},
      {"EndDeviceControlType": {"ref": "priceSignal"}, "EndDeviceGroups": [{"mRID": "g"}],
       "PanPricingDetail": [{"priceTier": 1, "price": 152.3}, {"priceTier": 2, "price": 98}],
       "scheduledInterval": {"start": "2026-04-01T04:00:00Z"}},
      {"EndDeviceControlType": {"ref": "demandResponseEvent"}, "EndDevices": [...],
       "scheduledInterval": {"start": "...Z", "end": "...Z"}, "drProgramLevel": 2,
       "demandLimit": {"value": 3, "unit": "kW"}, "textMessage": "...", "messageCode": "..."},
      {"EndDeviceControlType": {"ref": "customerInterface"}, "EndDevices": [...],
       "enabled": false}]}

* ``displayMessage``: the consumer message text (UTF-8, at most 1024 bytes; "" clears it)
  and code (printable ASCII, at most 8; default "") — 0.0.96.13.0/1.255.
* ``priceSignal``: the price per kWh of each tariff (``priceTier`` 1..99 = the tariff
  number the active tariff register shows; ``price`` a number, held exactly or refused) in
  the Charge 0.0.19.20.0.255; active at once, or at ``scheduledInterval.start``.
* ``demandResponseEvent``: ``scheduledInterval`` start and end, ``drProgramLevel`` 0..255
  (IEC 61968-9: 0 is an emergency) shown to the customer as the consumer message
  (``textMessage`` / ``messageCode``, by default an announcement and "DR" + the level);
  with ``demandLimit`` (W or kW) the meter also enforces it: the Limiter's emergency
  profile (``emergencyProfileId``, default 1) for that window.
* ``customerInterface``: ``enabled`` true/false switches the meter's customer interface
  (the consumer information push that feeds the display).

Everything written is read back; the reply entry per control and meter carries what was
read (``consumerMessage``, ``PanPricingDetail`` with ``activeTariff`` and
``activationTime``, ``demandResponseEvent`` and ``limiter``, ``customerInterface``).
Each confirmed control is also an event (``smmc.customer.displayUpdated``,
``smmc.customer.interfaceEnabled`` / ``interfaceDisabled``, and
``smmc.limiter.emergencyScheduled`` for an enforced DR event).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smmc_gateway.dlms.errors import DataAccessError, SessionError
from smmc_gateway.headend.commands.common import control_items
from smmc_gateway.headend.gates import Priority
from smmc_gateway.headend.request_limits import EARLIEST, iso, parse_utc, show, target_meters
from smmc_gateway.headend.service import EV_EMERGENCY_SET, HeadEnd
from smmc_gateway.ops.config_model import DEFAULT_OBIS
from smmc_gateway.uplink.client import Outcome
from smmc_gateway.uplink.envelope import Event, ReplyError, event
from smmc_gateway.usecases import customer as uc
from smmc_gateway.usecases.limiter import LimiterNotConfirmed

TYPES = ("displayMessage", "priceSignal", "demandResponseEvent", "customerInterface")
EV_DISPLAY = "smmc.customer.displayUpdated"
EV_INTERFACE_ON = "smmc.customer.interfaceEnabled"
EV_INTERFACE_OFF = "smmc.customer.interfaceDisabled"
MAX_TIERS = 16
_U32 = 0xFFFFFFFF
_POWER = {"W": 1, "kW": 1000}
_ERRORS = (SessionError, OSError, TimeoutError, uc.CustomerNotConfirmed, LimiterNotConfirmed)


@dataclass(frozen=True)
class _Control:
    index: int
    mrid: str | None
    kind: str
    meters: list[str]
    params: dict[str, Any]


def claims(payload: dict[str, Any]) -> bool:
    """Whether an EndDeviceControls request has a control of these types."""
    items = payload.get("EndDeviceControl")
    return isinstance(items, list) and any(
        isinstance(i, dict)
        and isinstance(i.get("EndDeviceControlType"), dict)
        and i["EndDeviceControlType"].get("ref") in TYPES
        for i in items
    )


def _text(item: dict[str, Any], where: str, problems: list[str], *, required: bool) -> str | None:
    raw = item.get("textMessage")
    if raw is None and not required:
        return None
    if not isinstance(raw, str) or len(raw.encode("utf-8", "surrogatepass")) > uc.MAX_TEXT_BYTES:
        problems.append(
            f"{where}.textMessage: {show(raw)} is not a text of at most "
            f"{uc.MAX_TEXT_BYTES} UTF-8 bytes"
        )
        return None
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(f"{where}.textMessage: holds a lone surrogate (not UTF-8)")
        return None
    return raw


def _code(item: dict[str, Any], where: str, problems: list[str]) -> str | None:
    raw = item.get("messageCode")
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > uc.MAX_CODE or not all(" " <= c <= "~" for c in raw):
        problems.append(
            f"{where}.messageCode: {show(raw)} is not 0..{uc.MAX_CODE} printable ASCII characters"
        )
        return None
    return raw


def _watts(item: dict[str, Any], where: str, problems: list[str]) -> int | None:
    dl = item.get("demandLimit")
    if dl is None:
        return None
    value = dl.get("value") if isinstance(dl, dict) else None
    unit = dl.get("unit") if isinstance(dl, dict) else None
    if (
        unit not in _POWER
        or not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 1 <= round(value * _POWER[str(unit)]) < _U32
    ):
        problems.append(
            f"{where}.demandLimit: {show(dl)} is not {{value, unit W|kW}} "
            f"within 1 W .. {_U32 - 1} W"
        )
        return None
    return round(value * _POWER[str(unit)])


def _params(kind: str, item: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    if kind == "displayMessage":
        text = _text(item, where, problems, required=True)
        return {"message": uc.ConsumerMessage(text or "", _code(item, where, problems) or "")}
    if kind == "customerInterface":
        enabled = item.get("enabled")
        if not isinstance(enabled, bool):
            problems.append(f"{where}.enabled: {show(enabled)} is not true or false")
        return {"enabled": enabled is True}
    sched = item.get("scheduledInterval")
    if kind == "priceSignal":
        start = None
        if sched is not None:
            start = parse_utc(
                sched.get("start") if isinstance(sched, dict) else None,
                f"{where}.scheduledInterval.start",
                problems,
                earliest=EARLIEST,
            )
        rows = item.get("PanPricingDetail")
        prices: list[uc.Price] = []
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_TIERS:
            problems.append(
                f"{where}.PanPricingDetail: must be an array of 1..{MAX_TIERS} {{priceTier, price}}"
            )
            return {}
        for j, row in enumerate(rows):
            w = f"{where}.PanPricingDetail[{j}]"
            tier = row.get("priceTier") if isinstance(row, dict) else None
            price = uc.parse_price(row.get("price")) if isinstance(row, dict) else None
            if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 99:
                problems.append(f"{w}.priceTier: {show(tier)} is not a tariff number 1..99")
            elif price is None:
                problems.append(f"{w}.price: {show(row.get('price'))} is not a number")
            elif any(p.tier == tier for p in prices):
                problems.append(f"{w}.priceTier: tier {tier} is given twice")
            else:
                prices.append(uc.Price(tier, price))
        if prices and len(prices) == len(rows):
            scaled = uc.price_scale(prices)
            if isinstance(scaled, str):
                problems.append(f"{where}.PanPricingDetail: {scaled}")
        return {"prices": prices, "start": start}
    # demandResponseEvent
    level = item.get("drProgramLevel")
    if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 255:
        problems.append(f"{where}.drProgramLevel: {show(level)} is not an integer 0..255")
        level = 0
    pid = item.get("emergencyProfileId", 1)
    if not isinstance(pid, int) or isinstance(pid, bool) or not 1 <= pid <= 0xFFFF:
        problems.append(f"{where}.emergencyProfileId: {show(pid)} is not 1..65535")
        pid = 1
    if not isinstance(sched, dict):
        problems.append(
            f"{where}.scheduledInterval: missing; an object with start and end "
            "(UTC ISO-8601 like 2026-11-27T18:00:00Z)"
        )
        return {}
    start = parse_utc(
        sched.get("start"), f"{where}.scheduledInterval.start", problems, earliest=EARLIEST
    )
    end = parse_utc(sched.get("end"), f"{where}.scheduledInterval.end", problems, earliest=EARLIEST)
    if start is not None and end is not None:
        if end <= start:
            problems.append(f"{where}.scheduledInterval.end: must be after start")
        elif end <= datetime.now(UTC):
            problems.append(f"{where}.scheduledInterval.end: {iso(end)} is in the past")
        elif (end - start).total_seconds() > _U32:
            problems.append(f"{where}.scheduledInterval: longer than {_U32} s")
    text = _text(item, where, problems, required=False)
    code = _code(item, where, problems)
    watts = _watts(item, where, problems)
    if start is None or end is None:
        return {}
    return {"event": uc.DrEvent(start, end, level, text, code, watts, pid)}


class CustomerControls:
    """``await CustomerControls(headend)(verb, payload)`` -> the reply Outcome."""

    def __init__(self, headend: HeadEnd) -> None:
        self.headend = headend

    def _obis(self, meter: str, name: str) -> str:
        return self.headend.model_of(meter).obis.get(name, DEFAULT_OBIS[name])

    def parse(self, verb: str, payload: dict[str, Any]) -> tuple[list[_Control], list[str]]:
        problems: list[str] = []
        if verb not in ("create", "execute"):
            problems.append(f"header.verb: {show(verb)}; EndDeviceControls takes create or execute")
        controls: list[_Control] = []
        for i, where, item, ref in control_items(payload["EndDeviceControl"], problems):
            if ref not in TYPES:
                problems.append(
                    f"{where}.EndDeviceControlType.ref: {show(ref)} cannot be sent "
                    f"with {', '.join(TYPES)} in one request; send them apart"
                )
                continue
            meters = target_meters(self.headend.fleet, item, where, problems)
            mrid = item.get("mRID") if isinstance(item.get("mRID"), str) else None
            controls.append(
                _Control(i, mrid, str(ref), meters, _params(str(ref), item, where, problems))
            )
        return controls, problems

    async def __call__(self, verb: str, payload: dict[str, Any]) -> Outcome:
        controls, problems = self.parse(verb, payload)
        if problems:
            return Outcome(
                "FAILED", errors=[{"code": "InvalidRequest", "details": p} for p in problems]
            )
        entries: list[dict[str, Any]] = []
        for c in controls:
            done = await asyncio.gather(*(self._meter(c, m) for m in c.meters))
            entries.extend(done)
        good = sum(1 for e in entries if e["result"] == "OK")
        result = "OK" if good == len(entries) else ("FAILED" if good == 0 else "PARTIAL")
        errors: list[ReplyError] = [
            {"code": "MeterFailed", "details": f"{e['EndDevices'][0]['mRID']}: {e['details']}"}
            for e in entries
            if e["result"] != "OK"
        ]
        return Outcome(result, {"EndDeviceControl": entries}, errors)

    async def _meter(self, c: _Control, meter: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "EndDeviceControlType": {"ref": c.kind},
            "EndDevices": [{"mRID": meter}],
        }
        if c.mrid is not None:
            entry["mRID"] = c.mrid
        text_obis = self._obis(meter, "consumer_message")
        code_obis = self._obis(meter, "consumer_message_code")
        events: list[Event] = []
        try:
            async with self.headend.scheduler.session(meter, Priority.COMMAND) as s:
                if c.kind == "displayMessage":
                    msg = await uc.write_message(
                        s, c.params["message"], text_obis=text_obis, code_obis=code_obis
                    )
                    entry["consumerMessage"] = _message(msg)
                    details = f"consumer message written and read back ({len(msg.text)} chars)"
                elif c.kind == "customerInterface":
                    on = await uc.set_interface(
                        s, c.params["enabled"], self._obis(meter, "customer_interface")
                    )
                    entry["customerInterface"] = {"enabled": on}
                    details = f"customer interface {'enabled' if on else 'disabled'}"
                    events.append(
                        _event(EV_INTERFACE_ON if on else EV_INTERFACE_OFF, c.kind, details)
                    )
                elif c.kind == "priceSignal":
                    st = await uc.write_prices(
                        s,
                        c.params["prices"],
                        start=c.params["start"],
                        charge_obis=self._obis(meter, "charge"),
                        tariff_obis=self._obis(meter, "active_tariff"),
                        clock_obis=self._obis(meter, "clock"),
                    )
                    entry.update(_prices(st, c.params["start"] is not None))
                    details = (
                        "prices written and active"
                        if c.params["start"] is None
                        else f"prices written, active from {entry['activationTime']}"
                    )
                else:
                    ev: uc.DrEvent = c.params["event"]
                    shown = await uc.show_dr_event(
                        s,
                        ev,
                        text_obis=text_obis,
                        code_obis=code_obis,
                        limiter_obis=self._obis(meter, "limiter"),
                        clock_obis=self._obis(meter, "clock"),
                        model=self.headend.model_of(meter),
                    )
                    entry["demandResponseEvent"] = {
                        "start": iso(ev.start),
                        "end": iso(ev.end),
                        "drProgramLevel": ev.level,
                        "consumerMessage": _message(shown.message),
                    }
                    details = f"DR event level {ev.level} shown to the customer"
                    if shown.emergency is not None:
                        em = shown.emergency
                        entry["limiter"] = {
                            "emergencyProfileId": em.profile_id,
                            "activationTime": iso(em.activation) if em.activation else None,
                            "duration": em.duration_s,
                            "thresholdEmergency": em.threshold_emergency,
                            "active": em.active,
                        }
                        details += f" and enforced ({em.threshold_emergency} W)"
                        events.append(
                            _event(EV_EMERGENCY_SET, "demandResponseEvent", em.describe())
                        )
        except DataAccessError as exc:
            return {**entry, "result": "FAILED", "details": f"the meter refused {exc}"}
        except _ERRORS as exc:
            return {
                **entry,
                "result": "FAILED",
                "details": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            }
        if c.kind != "customerInterface":
            events.insert(0, _event(EV_DISPLAY, c.kind, details))
        await self.headend.publisher.publish_event(meter, events)
        return {**entry, "result": "OK", "details": details}


def _message(m: uc.ConsumerMessage) -> dict[str, str]:
    return {"textMessage": m.text, "messageCode": m.code}


def _prices(st: uc.PriceState, scheduled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PanPricingDetail": [p.describe() for p in st.active],
        "activeTariff": st.active_tariff,
    }
    if scheduled:
        out["pendingPanPricingDetail"] = [p.describe() for p in st.passive]
        out["activationTime"] = iso(st.activation) if st.activation else None
    return out


def _event(kind: str, reason: str, details: str) -> Event:
    return event(kind, reason=reason, details=details)
