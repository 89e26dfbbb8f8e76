"""Use case 12 against the simulator: move-out (final read, disconnect) and move-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Broker
from smmc_gateway.ops.config_model import DEFAULT_OBIS, ModelConfig, RegisterSpec
from smmc_gateway.usecases.account import last_billing_row, move_in, move_out
from smmc_gateway.usecases.connect import read_state
from smmc_gateway.usecases.readings import ReadingsUseCase
from test_daemon_e2e import GW, gateway, lab, on, online, reply, request, send
from test_usecase_support import session_to
from uplink_helpers import validate, validate_message

from tests.support_sim import FleetSpec, running_fleet

MODEL = ModelConfig(
    name="default",
    obis=dict(DEFAULT_OBIS),
    capture_period_s=900,
    registers=(
        RegisterSpec("1.0.1.8.0.255", "active_energy_import", None, None),
        RegisterSpec("1.0.2.8.0.255", "active_energy_export", 0, "Wh"),
    ),
)


async def test_move_out_captures_a_billing_entry_reads_and_disconnects_then_move_in() -> None:
    uc = ReadingsUseCase()
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        before = await last_billing_row(s, MODEL)
        out = await move_out(s, "m", MODEL, uc)
        assert out.billing_row is not None and out.billing_row != before
        # the captured entry holds the energy the final read sees (no load between: same Wh)
        final = {r["obis"]: r["value"] for r in out.readings}
        assert set(final) == {"1.0.1.8.0.255", "1.0.2.8.0.255"}
        assert abs(out.billing_row["1.0.1.8.0.255"] - final["1.0.1.8.0.255"]) < 100
        # the simulator has no end-of-billing script table: the capture fallback is named
        assert "captured" in out.steps[0] and "0.0.10.0.1.255" in out.steps[0]
        assert out.switch is not None and out.switch.confirmed
        assert (await read_state(s, "0.0.96.3.10.255")).output_state is False
        back = await move_in(s, "m", MODEL, uc)
        assert back.switch is not None and back.switch.confirmed
        assert [r["obis"] for r in back.readings] == ["1.0.1.8.0.255", "1.0.2.8.0.255"]
        assert back.steps[0].startswith(("reconnected", "reconnection armed"))


# -- end to end: MasterDataLinkageConfig over MQTT ---------------------------------------
def _move(meter: str, reason: str) -> dict[str, Any]:
    return {
        "ConfigurationEvent": {"reason": reason},
        "Meter": [{"mRID": meter}],
        "CustomerAccount": {"mRID": "acct-17"},
    }


async def test_move_out_and_move_in_end_to_end(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        await online(col)
        noun = "MasterDataLinkageConfig"
        await send(mosquitto, noun, request("out-1", _move(m, "moveOut"), noun=noun))
        doc = await reply(col, "out-1")
        assert doc["reply"]["result"] == "OK", doc
        (entry,) = doc["payload"][noun]
        validate_message(json.dumps(doc).encode())
        assert entry["Meter"] == {"mRID": m} and entry["reason"] == "moveOut"
        assert entry["registers"] == 4 and "1.0.1.8.0.255" in entry["billingEntry"]
        assert [s.split(" ")[0] for s in entry["steps"]] == [
            "billing",
            "last",
            "final",
            "disconnected",
        ]
        assert meter.disconnect.output_state is False
        await send(mosquitto, noun, request("in-1", _move(m, "moveIn"), noun=noun, verb="change"))
        doc = await reply(col, "in-1")
        assert doc["reply"]["result"] == "OK", doc
        step = doc["payload"][noun][0]["steps"][0]
        if meter.disconnect.control_state == 2:  # this control mode arms the switch
            assert step.startswith("reconnection armed"), step
        else:
            assert step.startswith("reconnected") and meter.disconnect.output_state is True
        await col.wait(lambda ms: len(_moves(col, m)) >= 2, 30)
    out_events, in_events = _moves(col, m)
    readings = {d["header"]["messageId"]: d for d in on(col, f"{m}/readings")}
    (final,) = [d for i, d in readings.items() if i in out_events[4]["details"]]
    (opening,) = [d for i, d in readings.items() if i in in_events[2]["details"]]
    for d in (final, opening):
        validate(d["payload"], "meter-readings")
        assert len(d["payload"]["MeterReading"][0]["Readings"]) == 4
    refs = [e["EndDeviceEventType"]["name"] for e in out_events]
    assert refs == ["smmc.account.step"] * 4 + [
        "smmc.account.finalRead",
        "smmc.switch.disconnected",
    ]
    assert [e["EndDeviceEventType"]["name"] for e in in_events] == [
        "smmc.account.step",
        "smmc.account.step",
        "smmc.account.openingRead",
        "smmc.switch.connected",
    ]
    assert out_events[4]["EndDeviceEventType"]["ref"] == "3.20.62.46"  # Billing·LastRead·Read
    for e in out_events + in_events:
        assert e["reason"] in ("moveOut", "moveIn")
        if e["EndDeviceEventType"]["name"].startswith("smmc.account"):
            validate(e["EndDeviceEventType"], "meter-event-types")


async def test_bad_move_requests_get_failed_replies(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    noun = "MasterDataLinkageConfig"
    async with running_fleet(FleetSpec(meters=1)) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        m = sim.info[0]["meter_id"]
        await online(col)
        cases = {
            "mv-reason": (
                request("mv-reason", _move(m, "moveSideways"), noun=noun),
                "payload.ConfigurationEvent.reason: 'moveSideways' is not one of moveOut, moveIn",
            ),
            "mv-meter": (
                request("mv-meter", _move("ghost", "moveOut"), noun=noun),
                "payload.Meter[0].mRID: meter 'ghost' is not configured",
            ),
            "mv-none": (
                request("mv-none", {"ConfigurationEvent": {"reason": "moveIn"}}, noun=noun),
                "payload: names no meter (Meter is empty)",
            ),
            "mv-verb": (
                request("mv-verb", _move(m, "moveIn"), noun=noun, verb="execute"),
                "MasterDataLinkageConfig takes create or change",
            ),
            # get names the scheduled moves of a kind (a listing): fields of a move refused
            "mv-get": (
                request("mv-get", _move(m, "moveIn"), noun=noun, verb="get"),
                "a get of the scheduled orders takes",
            ),
        }
        for body, _ in cases.values():
            await send(mosquitto, noun, body)
        for cid, (_, text) in cases.items():
            doc = await reply(col, cid)
            assert doc["reply"]["result"] == "FAILED"
            assert any(text in e["details"] for e in doc["reply"]["errors"]), doc["reply"]
        assert not on(col, f"{m}/events")


async def test_a_failed_disconnect_keeps_the_final_read() -> None:
    async with (
        running_fleet(FleetSpec(meters=1)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        meter.disconnect.control_mode = 0  # this meter's switch cannot be operated
        out = await move_out(s, "m", MODEL, ReadingsUseCase())
        assert out.error is not None and out.error.startswith("disconnect failed")
        assert out.switch is None and out.billing_row is not None
        assert len(out.readings) == 2 and out.steps[-1] == out.error


def _moves(col: Any, meter: str) -> list[list[dict[str, Any]]]:
    """The event lists of the account moves; those of the scheduled event-log poll
    (rows of the meter's own logs, ``smmc.meter.*``) are left out."""
    return [
        d["payload"]["EndDeviceEvent"]
        for d in on(col, f"{meter}/events")
        if not d["payload"]["EndDeviceEvent"][0]["EndDeviceEventType"]["name"].startswith(
            "smmc.meter."
        )
    ]
