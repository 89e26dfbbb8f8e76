"""Device models end to end against the simulator playing a model (``FleetSpec.model``,
``simulate --model``): the gateway's discovery, event-log poll and limiter follow the
configured model, not the simulator's constants; a wrong model is reported."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import PushEvent, PushListener
from smmc_gateway.headend.pushes import PushRouting
from smmc_gateway.models.catalog import shipped_model, shipped_models
from smmc_gateway.simulator.cli import _played_model
from smmc_gateway.usecases.discovery import discover
from smmc_gateway.usecases.events import LogMark, read_log
from smmc_gateway.usecases.limiter import LimiterUnitError, read_state, set_limit
from test_daemon_e2e import GW, lab, on
from test_models import ACME, acme, section
from test_usecase_events import _refs, started
from test_usecase_support import session_to
from uplink_helpers import validate

from tests.support_sim import FleetSpec, free_ports, running_fleet

LIMITER = "0.0.17.0.0.255"


async def test_discovery_names_a_wrong_model_and_proposes_the_played_one() -> None:
    model_a = acme()
    async with (
        running_fleet(FleetSpec(meters=1, model=model_a)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter_id = sim.info[0]["meter_id"]
        wrong = await discover(
            s,
            meter_id,
            shipped_model("smmc-sim"),
            datetime.now(UTC),
            {**shipped_models(), "acme": model_a},
        )
        right = await discover(
            s, meter_id, model_a, datetime.now(UTC), {**shipped_models(), "acme": model_a}
        )
    assert wrong.identification["logicalDeviceName"].startswith("ACM")  # its FLAG id
    problems = {m.name: (m.obis, m.problem) for m in wrong.mismatches}
    assert problems["push alarm"] == ("0.4.25.9.0.255", "absent from the object list")
    summary = wrong.summary()
    proposal = summary["modelProposal"]
    assert proposal["flagId"] == "ACM" and proposal["best"] == "acme"
    assert proposal["configuredFits"] is False
    assert "push alarm 0.4.25.9.0.255: absent" in proposal["configured"]["missing"]
    assert proposal["candidates"][0]["flagMatch"] is True
    validate({"EndDeviceConfig": [summary]}, "end-device-config")
    assert right.mismatches == []
    assert right.summary()["modelProposal"]["configuredFits"] is True


async def test_the_event_log_poll_names_codes_by_the_model_and_keeps_unknown_ones() -> None:
    model_a = acme()
    t0 = datetime.now(UTC)
    async with (
        running_fleet(FleetSpec(meters=1, model=model_a)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        meter.power_outage(datetime.now(UTC))
        meter.power_restored(datetime.now(UTC) + timedelta(milliseconds=1))
        now = datetime.now(UTC) + timedelta(seconds=1)
        ours, _ = await read_log(
            s,
            "event_log_standard",
            "0.0.99.98.0.255",
            LogMark(),
            now,
            now.timestamp() - t0.timestamp() + 60,
            model_a,
        )
        theirs, _ = await read_log(
            s,
            "event_log_standard",
            "0.0.99.98.0.255",
            LogMark(),
            now,
            now.timestamp() - t0.timestamp() + 60,
        )
    assert [(e.code, e.name) for e in ours] == [
        (101, "smmc.meter.powerDown"),
        (102, "smmc.meter.powerUp"),
    ]
    # configured with the simulator's conventions, model A's codes are unknown: published
    # all the same, with their raw number
    assert [(e.code, e.name) for e in theirs] == [
        (101, "smmc.meter.standard.101"),
        (102, "smmc.meter.standard.102"),
    ]
    assert theirs[0].details.endswith("code 101 (a code model 'smmc-sim' does not name)")


async def test_the_limit_is_written_in_the_unit_and_scaler_the_meter_expects() -> None:
    model_a = acme()  # declares the thresholds in 10 W (scaler 1)
    async with (
        running_fleet(FleetSpec(meters=1, model=model_a)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        assert meter.limiter.threshold_normal == 1_000  # 10 kW in 10 W
        state = await set_limit(s, LIMITER, threshold_w=2_500, model=model_a)
        assert meter.limiter.threshold_normal == 250
        assert (await s.get(71, LIMITER, 4))["value"] == 250
        assert state.threshold_normal == 2_500 and "threshold_normal 2500 W" in state.describe()
        # IDIS generic: the scaler is read from the monitored value (1.0.1.7.0.255, 10 W)
        state = await set_limit(s, LIMITER, threshold_w=3_000, model=shipped_model("idis"))
        assert meter.limiter.threshold_normal == 300 and state.threshold_normal == 3_000
        # no model: whole watts, as before models (the meter would hold 25 kW here)
        await set_limit(s, LIMITER, threshold_w=2_500)
        assert meter.limiter.threshold_normal == 2_500
        assert (await read_state(s, LIMITER)).threshold_normal == 2_500


async def test_a_meter_limiting_apparent_power_is_refused_a_limit_in_watts() -> None:
    model_va, problems = section(
        """
[models.va]
extends = "idis"
[models.va.values.limiter_threshold]
unit = "VA"
scaler = 0
""",
        "va",
    )
    assert problems == []
    async with (
        running_fleet(FleetSpec(meters=1, model=model_va)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        with pytest.raises(LimiterUnitError, match=r"a value in VA .* nothing was written"):
            await set_limit(s, LIMITER, threshold_w=2_500, model=shipped_model("idis"))
        assert meter.limiter.threshold_normal == 10_000
        # turning the limit off carries no unit: allowed
        await set_limit(s, LIMITER, threshold_w=None, off=True, model=shipped_model("idis"))
        assert meter.limiter.threshold_normal == 0xFFFFFFFF


def test_simulate_model_names_a_shipped_model() -> None:
    import argparse

    from smmc_gateway.simulator.cli import add_arguments, spec_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--tcp", "4059", "--model", "kamstrup-omnipower"])
    assert spec_from_args(args).model is shipped_model("kamstrup-omnipower")
    assert spec_from_args(parser.parse_args(["--tcp", "4059"])).model is None
    assert _played_model("kaifa-ma304") is shipped_model("kaifa-ma304")
    assert _played_model(None) is None
    with pytest.raises(SystemExit, match="--model: 'kaifa' is not a shipped model"):
        _played_model("kaifa")


async def test_the_daemon_names_alarms_and_events_by_the_meter_s_model(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    """The meter plays model A (alarm bits 9 outage / 7 restoration in push 0.5.25.9.0.255,
    event codes 101/102); the gateway, configured with model A for it, publishes the named
    alarms and events; the bit numbers and codes are model A's, not the simulator's."""
    port = free_ports(1)[0]
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spec = FleetSpec(meters=1, push_destination=f"127.0.0.1:{port}", model=acme())
    async with running_fleet(spec) as sim:
        m = sim.info[0]["meter_id"]
        config = lab(sim, tmp_path, mosquitto, extra=ACME.replace("models.acme", "models.default"))
        async with started(config) as gw:
            assert gw.headend.model_of(m).pushes[0].obis == "0.5.25.9.0.255"
            routing = PushRouting(gw.config.meters)
            pushed: asyncio.Queue[PushEvent] = asyncio.Queue()

            async def on_push(event: PushEvent) -> None:  # the daemon's wiring, decoded
                await gw.uplink.publish_event(
                    event.meter_id, [routing.event(event), *gw.headend.alarm_events(event)]
                )
                pushed.put_nowait(event)

            listener = PushListener(
                routing.lookup,
                on_push,
                host="127.0.0.1",
                port=port,
                ic_store=InvocationCounterStore(":memory:"),
            )
            async with listener:
                sim.fleet.power_outage(0)
                await asyncio.wait_for(pushed.get(), 30)
                sim.fleet.power_restored(0)
                await asyncio.wait_for(pushed.get(), 30)
                await col.wait(lambda ms: "smmc.alarm.restoration" in _refs(col, m), 30)
            polled = await gw.headend.poll_events(m)
    assert [r for r in _refs(col, m) if r.startswith("smmc.alarm.")] == [
        "smmc.alarm.outage",
        "smmc.alarm.restoration",
    ]
    details = [
        e["details"]
        for d in on(col, f"{m}/events")
        for e in d["payload"]["EndDeviceEvent"]
        if e["EndDeviceEventType"]["name"] == "smmc.alarm.restoration"
    ]
    assert details == ["alarm register_1 0.0.97.98.0.255 0x00000280: bit 7"]
    names = [(e["name"], e.get("details", "")) for e in polled]
    assert ("smmc.meter.powerDown", "standard event log 0.0.99.98.0.255: code 101") in names
    assert ("smmc.meter.powerUp", "standard event log 0.0.99.98.0.255: code 102") in names


async def test_a_dr_event_s_power_level_is_written_in_the_meter_s_unit() -> None:
    from smmc_gateway.usecases import customer as customer_uc
    from test_usecase_customer import CLOCK, CODE, TEXT

    model_a = acme()  # thresholds in 10 W
    async with (
        running_fleet(FleetSpec(meters=1, model=model_a)) as sim,
        session_to(sim.ports[0], sim.info[0]) as s,
    ):
        meter = sim.fleet.meters[0].meter
        assert meter is not None
        start = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
        ev = customer_uc.DrEvent(start, start + timedelta(hours=1), 2, threshold_w=3_000)
        shown = await customer_uc.show_dr_event(
            s,
            ev,
            text_obis=TEXT,
            code_obis=CODE,
            limiter_obis=LIMITER,
            clock_obis=CLOCK,
            model=model_a,
        )
        assert meter.limiter.threshold_emergency == 300  # 3 kW in 10 W
        assert shown.emergency is not None and shown.emergency.threshold_emergency == 3_000
