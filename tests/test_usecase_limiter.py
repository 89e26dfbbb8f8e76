"""Use cases 14 and 8 (DR part) against the simulator: the Limiter set, read back, tripping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from smmc_gateway.usecases.events import LogMark, read_log
from smmc_gateway.usecases.limiter import (
    LimiterNotConfirmed,
    read_emergency,
    read_state,
    schedule_emergency,
    set_limit,
)
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send
from test_usecase_support import session_to
from uplink_helpers import validate, validate_message, wait_until

from tests.support_sim import FleetSpec, running_fleet

LIMITER = "0.0.17.0.0.255"


async def test_limit_is_written_and_confirmed_and_the_meter_trips_against_its_load() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        before = await read_state(s, LIMITER)
        assert before.threshold_normal == 10_000
        state = await set_limit(s, LIMITER, threshold_w=1, min_over_s=1, min_under_s=5)
        assert (state.threshold_normal, state.min_over_s, state.min_under_s) == (1, 1, 5)
        assert state.threshold_active == 1
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await wait_until(lambda: meter.limiter.tripped, 10)
        events, mark = await read_log(
            s,
            "event_log_disconnect",
            "0.0.99.98.2.255",
            LogMark(),
            datetime.now(UTC),
            first_read_s=600,
        )
        types = [e.name for e in events]
        assert "smmc.meter.limiterThresholdChanged" in types
        assert "smmc.meter.limiterThresholdExceeded" in types
        assert mark.stamp is not None
        again, _ = await read_log(
            s, "event_log_disconnect", "0.0.99.98.2.255", mark, datetime.now(UTC)
        )
        assert again == []  # nothing is published twice


async def test_off_writes_the_largest_threshold() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        state = await set_limit(s, LIMITER, threshold_w=None, off=True)
        assert state.threshold_normal == 0xFFFFFFFF
        assert state.min_over_s == 60  # untouched


async def test_a_meter_that_keeps_other_values_is_not_confirmed() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        original = meter.limiter.write

        def stubborn(attribute_id: int, value: object, now: datetime) -> str:
            return "success"  # a meter that acknowledges but ignores the write

        meter.limiter.write = stubborn  # type: ignore[method-assign,assignment]
        try:
            with pytest.raises(LimiterNotConfirmed, match="attribute 4: wrote 2500"):
                await set_limit(s, LIMITER, threshold_w=2500)
        finally:
            meter.limiter.write = original  # type: ignore[method-assign]


async def test_emergency_profile_is_confirmed_and_used_in_its_window() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        state = await schedule_emergency(
            s, LIMITER, profile_id=7, start=start, duration_s=3600, threshold_w=1234
        )
        assert state.profile_id == 7 and state.group_ids == (7,)
        assert state.activation == start and state.duration_s == 3600
        assert state.threshold_emergency == 1234
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await wait_until(lambda: meter.limiter.emergency_active(datetime.now(UTC)), 10)
        assert (await read_state(s, LIMITER)).threshold_active == 1234
        assert (await read_emergency(s, LIMITER)).active


# -- end to end: MQTT command -> gateway -> meter -> reply and events -------------------
def _ctl(ref: str, meter: str, **params: Any) -> dict[str, Any]:
    return {
        "EndDeviceControl": [
            {"EndDeviceControlType": {"ref": ref}, "EndDevices": [{"mRID": meter}], **params}
        ]
    }


def _events(col: Any, meter: str) -> list[dict[str, Any]]:
    """The gateway's own events for ``meter``; rows of the meter's event logs
    (``smmc.meter.*``, published by the scheduled log poll) are left out."""
    return [
        e
        for d in on(col, f"{meter}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if not e["EndDeviceEventType"]["name"].startswith("smmc.meter.")
    ]


async def test_limit_and_demand_response_commands_end_to_end(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await online(col)
        await send(
            mosquitto,
            "EndDeviceControls",
            request(
                "lim-1",
                _ctl(
                    "limit",
                    m,
                    demandLimit={"value": 2.5, "unit": "kW"},
                    minOverThresholdDuration=30,
                    minUnderThresholdDuration=45,
                ),
            ),
        )
        doc = await reply(col, "lim-1")
        assert doc["reply"]["result"] == "OK", doc
        (entry,) = doc["payload"]["EndDeviceControl"]
        assert entry["limiter"] == {
            "thresholdActive": 2500,
            "thresholdNormal": 2500,
            "thresholdEmergency": 3000,
            "minOverThresholdDuration": 30,
            "minUnderThresholdDuration": 45,
        }
        assert (
            meter.limiter.threshold_normal,
            meter.limiter.min_over,
            meter.limiter.min_under,
        ) == (2500, 30, 45)
        validate_message(json.dumps(doc).encode())

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        end = start + timedelta(hours=1)
        z = "%Y-%m-%dT%H:%M:%SZ"
        await send(
            mosquitto,
            "EndDeviceControls",
            request(
                "dr-1",
                _ctl(
                    "demandResponse",
                    m,
                    demandLimit={"value": 800, "unit": "W"},
                    emergencyProfileId=42,
                    scheduledInterval={"start": start.strftime(z), "end": end.strftime(z)},
                ),
            ),
        )
        doc = await reply(col, "dr-1")
        assert doc["reply"]["result"] == "OK", doc
        (entry,) = doc["payload"]["EndDeviceControl"]
        lim = entry["limiter"]
        assert (lim["emergencyProfileId"], lim["duration"], lim["thresholdEmergency"]) == (
            42,
            3600,
            800,
        )
        assert lim["emergencyProfileGroupIds"] == [42]
        assert lim["activationTime"] == start.strftime(z)
        # the simulated limiter really uses the emergency threshold in the window
        await wait_until(lambda: meter.limiter.threshold_active(datetime.now(UTC)) == 800, 10)

        await send(mosquitto, "EndDeviceControls", request("off-1", _ctl("limit", m, off=True)))
        doc = await reply(col, "off-1")
        assert doc["payload"]["EndDeviceControl"][0]["limiter"]["thresholdNormal"] == 0xFFFFFFFF
        await col.wait(lambda ms: len(_events(col, m)) >= 3, 30)
    kinds = [e["EndDeviceEventType"] for e in _events(col, m)]
    assert [k["name"] for k in kinds] == [
        "smmc.limiter.configured",
        "smmc.limiter.emergencyScheduled",
        "smmc.limiter.configured",
    ]
    assert [k["ref"] for k in kinds] == ["3.15.139.24", "3.15.138.225", "3.15.139.24"]
    for k in kinds:
        validate(k, "meter-event-types")


async def test_bad_limiter_parameters_get_failed_replies_naming_path_and_allowed_values(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await online(col)
        past = "2020-01-01T00:00:00Z"
        cases: dict[str, tuple[dict[str, Any], str]] = {
            "no-limit": (_ctl("limit", m), "payload.EndDeviceControl[0].demandLimit: missing"),
            "bad-unit": (
                _ctl("limit", m, demandLimit={"value": 3, "unit": "A"}),
                "demandLimit.unit: 'A' is not one of W, kW",
            ),
            "bad-value": (
                _ctl("limit", m, demandLimit={"value": "lots", "unit": "W"}),
                "demandLimit.value: 'lots' is not a number",
            ),
            "zero": (
                _ctl("limit", m, demandLimit={"value": 0, "unit": "W"}),
                "is outside 1 W .. 4294967294 W",
            ),
            "bad-dur": (
                _ctl(
                    "limit", m, demandLimit={"value": 3, "unit": "kW"}, minOverThresholdDuration=-5
                ),
                "minOverThresholdDuration: -5 is not a whole number of seconds",
            ),
            "off-and-limit": (
                _ctl("limit", m, off=True, demandLimit={"value": 3, "unit": "W"}),
                "demandLimit: not allowed with off: true",
            ),
            "bad-off": (_ctl("limit", m, off="yes"), "off: 'yes' is not true or false"),
            "dr-no-window": (
                _ctl("demandResponse", m, demandLimit={"value": 1, "unit": "kW"}),
                "scheduledInterval: missing",
            ),
            "dr-past": (
                _ctl(
                    "demandResponse",
                    m,
                    demandLimit={"value": 1, "unit": "kW"},
                    scheduledInterval={"start": past, "end": "2020-01-01T01:00:00Z"},
                ),
                "scheduledInterval.end: 2020-01-01T01:00:00Z is in the past",
            ),
            "dr-bad-time": (
                _ctl(
                    "demandResponse",
                    m,
                    demandLimit={"value": 1, "unit": "kW"},
                    scheduledInterval={"start": "tomorrow", "end": past},
                ),
                "scheduledInterval.start: 'tomorrow' is not UTC ISO-8601",
            ),
            "dr-bad-id": (
                _ctl(
                    "demandResponse",
                    m,
                    demandLimit={"value": 1, "unit": "kW"},
                    emergencyProfileId=70000,
                    scheduledInterval={"start": past, "end": "2099-01-01T00:00:00Z"},
                ),
                "emergencyProfileId: 70000 is not an integer 1..65535",
            ),
        }
        for cid, (payload, _) in cases.items():
            await send(mosquitto, "EndDeviceControls", request(cid, payload))
        for cid, (_, text) in cases.items():
            doc = await reply(col, cid)
            assert doc["reply"]["result"] == "FAILED"
            assert any(text in e["details"] for e in doc["reply"]["errors"]), doc["reply"]
        assert meter.limiter.threshold_normal == 10_000  # nothing was written
        assert not on(col, f"{m}/events")


async def test_the_emergency_threshold_trips_the_limiter_inside_its_window() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await set_limit(s, LIMITER, threshold_w=None, min_over_s=1, off=True)
        start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        await schedule_emergency(
            s, LIMITER, profile_id=3, start=start, duration_s=600, threshold_w=1
        )
        assert not meter.limiter.tripped  # no limit outside the window
        await wait_until(lambda: meter.limiter.tripped, 15)
        assert datetime.now(UTC) >= start
        events, _ = await read_log(
            s,
            "event_log_disconnect",
            "0.0.99.98.2.255",
            LogMark(),
            datetime.now(UTC),
            first_read_s=600,
        )
        assert "smmc.meter.limiterThresholdExceeded" in [e.name for e in events]


async def test_a_meter_that_does_not_answer_gets_a_failed_entry_naming_the_error(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        await online(col)
        sim.fleet.power_outage(0)  # the meter is dead: no association
        await send(
            mosquitto,
            "EndDeviceControls",
            request("dead-1", _ctl("limit", m, demandLimit={"value": 1, "unit": "kW"})),
        )
        doc = await reply(col, "dead-1")
        assert doc["reply"]["result"] == "FAILED"
        (entry,) = doc["payload"]["EndDeviceControl"]
        assert entry["result"] == "FAILED" and "limiter" not in entry
        (err,) = doc["reply"]["errors"]
        assert err["code"] == "MeterFailed" and err["details"].startswith(f"{m}: ")
        assert not on(col, f"{m}/events")
