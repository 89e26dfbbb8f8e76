"""Use case 8, tariff part, against the simulator: the passive Activity calendar is
written, activated now or at a time, read back, and the active tariff follows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.usecases.tariff import parse_calendar, write_calendar

from tests.support_sim import FleetSpec, running_fleet


def _session(port: int) -> ClientSession:
    return ClientSession(
        WrapperTransport.tcp("127.0.0.1", port, client_sap=1),
        SessionSettings(client_sap=1, security=Security.none()),
        meter_id="m0",
    )


def flat(tariff: int, activation: str = "now", name: str = "FLAT") -> dict[str, Any]:
    return {
        "calendarName": name,
        "seasons": [{"name": "S1", "start": "01-01", "week": "W1"}],
        "weeks": [{"name": "W1", "days": [1, 1, 1, 1, 1, 2, 2]}],
        "dayProfiles": [
            {"id": 1, "actions": [{"start": "00:00", "tariff": tariff}]},
            {"id": 2, "actions": [{"start": "00:00", "tariff": tariff}]},
        ],
        "activation": activation,
    }


def test_bad_calendars_name_their_paths() -> None:
    doc = flat(1)
    doc["seasons"][0].update(start="13-40", week="W9")
    doc["weeks"][0]["days"] = [1, 1, 1, 1, 1, 2, 7]
    doc["dayProfiles"][1]["actions"].append({"start": "25:00", "tariff": 0})
    doc["activation"] = "tomorrow"
    problems: list[str] = []
    assert parse_calendar(doc, "payload.PricingStructure", problems) is None
    text = "\n".join(problems)
    for expected in (
        "payload.PricingStructure.seasons[0].start: '13-40'",
        "payload.PricingStructure.seasons[0].week: 'W9'",
        "payload.PricingStructure.weeks[0].days[6]: 7 is not the id",
        "payload.PricingStructure.dayProfiles[1].actions[1].start: '25:00'",
        "payload.PricingStructure.activation: 'tomorrow'",
    ):
        assert expected in text, text
    problems = []
    assert parse_calendar({"calendarName": ""}, "p", problems) is None
    assert any(p.startswith("p.seasons: must be a non-empty array") for p in problems)


def test_dates_no_month_has_are_refused_by_the_core_codec() -> None:
    doc = flat(1)
    doc["seasons"][0]["start"] = "02-30"
    doc["specialDays"] = [{"index": 1, "date": "2027-04-31", "dayId": 2}]
    problems: list[str] = []
    assert parse_calendar(doc, "p", problems) is None
    text = "\n".join(problems)
    assert "p.seasons[0].start: '02-30'" in text and "day" in text, text
    assert "p.specialDays[0].date: '2027-04-31'" in text, text
    doc = flat(1)
    doc["seasons"][0]["start"] = "02-29"  # every year: a leap day exists
    problems = []
    assert parse_calendar(doc, "p", problems) is not None, problems


async def test_activate_now_and_the_active_tariff_follows() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        problems: list[str] = []
        cal = parse_calendar(flat(4), "p", problems)
        assert cal is not None and not problems
        async with _session(sim.ports[0]) as s:
            before = (await s.get(1, "0.0.96.14.0.255", 2))["value"]
            assert before != 4
            result = await write_calendar(s, cal)
        assert result.active_name == "FLAT" and result.passive_name == "FLAT"
        assert result.active_tariff == 4


async def test_scheduled_activation_waits_for_its_time() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        cal = parse_calendar(flat(4, at.isoformat().replace("+00:00", "Z"), "LATER"), "p", [])
        assert cal is not None
        async with _session(sim.ports[0]) as s:
            result = await write_calendar(s, cal)
        assert result.passive_name == "LATER" and result.active_name != "LATER"
        assert result.active_tariff != 4
        assert result.activation_time["datetime"].startswith(at.strftime("%Y-%m-%dT%H:%M"))
        meter = sim.fleet.meters[0].meter
        meter.tick(at + timedelta(seconds=5))  # the simulator's time moves past activation
        async with _session(sim.ports[0]) as s:
            assert (await s.get(1, "0.0.96.14.0.255", 2))["value"] == 4
            assert bytes.fromhex((await s.get(20, "0.0.13.0.0.255", 2))["value"]) == b"LATER"


async def test_pricing_structure_over_mqtt(mosquitto: Any, collector: Any, tmp_path: Any) -> None:
    import json

    from test_daemon_e2e import GW, gateway, lab, online, reply, request, send
    from uplink_helpers import validate, validate_message

    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=2)) as sim:
        ids = [i["meter_id"] for i in sim.info]
        async with gateway(lab(sim, tmp_path, mosquitto)):
            await online(col)
            body = {"PricingStructure": flat(3, name="PEAK"), "EndDeviceGroups": [{"mRID": "all"}]}
            validate(body, "pricing-structure-config-request")
            await send(
                mosquitto,
                "PricingStructureConfig",
                request("ps-1", body, verb="change", noun="PricingStructureConfig"),
            )
            doc = await reply(col, "ps-1")
            validate_message(json.dumps(doc).encode())
            assert doc["reply"]["result"] == "OK", doc["reply"]
            entries = doc["payload"]["PricingStructureConfig"]
            assert {e["EndDevices"][0]["mRID"] for e in entries} == set(ids)
            assert all(e["activeCalendar"] == "PEAK" and e["activeTariff"] == 3 for e in entries)

            bad = {"PricingStructure": {**flat(3), "activation": 5}, "EndDevices": []}
            await send(
                mosquitto,
                "PricingStructureConfig",
                request("ps-2", bad, verb="get", noun="PricingStructureConfig"),
            )
            doc = await reply(col, "ps-2")
            details = "\n".join(e["details"] for e in doc["reply"]["errors"])
            for part in (
                "header.verb: 'get'",
                "payload.PricingStructure.activation: 5",
                "payload: names no meter",
            ):
                assert part in details, details


async def test_special_days_replace_the_week_profile() -> None:
    async with running_fleet(FleetSpec(meters=1, auth="none")) as sim:
        meter = sim.fleet.meters[0].meter
        now = datetime.now(UTC)
        today = meter.clock.local(meter.clock.meter_time(now)).date()
        doc = flat(1, name="HOLIDAY")
        doc["weeks"][0]["days"] = [1] * 7
        doc["dayProfiles"][1]["actions"][0]["tariff"] = 3
        doc["specialDays"] = [
            {"index": 1, "date": today.isoformat(), "dayId": 2},
            {"index": 2, "date": "12-25", "dayId": 2},
        ]
        problems: list[str] = []
        cal = parse_calendar(doc, "p", problems)
        assert cal is not None, problems
        async with _session(sim.ports[0]) as s:
            result = await write_calendar(s, cal)
        assert result.special_days == 2
        assert result.active_tariff == 3  # today is a special day: day profile 2
        bad = flat(1)
        bad["specialDays"] = [{"index": -1, "date": "2027-13-01", "dayId": 9}]
        problems = []
        assert parse_calendar(bad, "p", problems) is None
        text = "\n".join(problems)
        for part in (
            "p.specialDays[0].index: -1",
            "p.specialDays[0].date: '2027-13-01'",
            "p.specialDays[0].dayId: 9",
        ):
            assert part in text, text
