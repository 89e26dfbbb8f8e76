"""The daemon end to end with a short-name meter: a real Mosquitto, a simulated
meter serving SN only, the gateway's default configuration (``referencing``
left to ``auto``). The scheduled collection associates with LN, is refused the
context, associates again with SN, reads the object list and publishes the
meter's readings (registers and load profile) valid against the schemas; a
disconnect command is answered through the disconnect control's short names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Broker
from smmc_gateway.dlms import sn
from test_daemon_e2e import GW, control, gateway, lab, online, reply, request, send
from uplink_helpers import validate_message

from tests.support_sim import FleetSpec, running_fleet


@pytest.fixture(autouse=True)
def _forget_short_names() -> Iterator[None]:
    """Short names and learnt referencing are kept per meter id in the process:
    none leaks into other tests (the simulator's meter ids repeat)."""
    sn.forget_short_names()
    yield
    sn.forget_short_names()


async def test_daemon_reads_and_commands_an_sn_meter(
    mosquitto: Broker, collector: Any, tmp_path: Path
) -> None:
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    spec = FleetSpec(meters=1, auth="lls", password=b"pw123456", referencing="sn")
    async with running_fleet(spec) as sim, gateway(lab(sim, tmp_path, mosquitto)):
        (meter_id,) = [i["meter_id"] for i in sim.info]
        topic = f"smmc/v1/{GW}/meter/{meter_id}/readings"
        await col.wait(lambda ms: any(str(m.topic) == topic for m in ms), 30)
        await online(col)
        await send(
            mosquitto, "EndDeviceControls", request("sn-off", control("disconnect", [meter_id]))
        )
        answer = await reply(col, "sn-off")
        assert not sim.fleet.meters[0].meter.disconnect.output_state
    assert answer["reply"]["result"] == "OK", answer
    assert answer["payload"]["EndDeviceControl"][0]["details"].startswith("output_state False")
    readings = [m for m in col.messages if str(m.topic) == topic]
    doc = validate_message(readings[0].payload)  # type: ignore[arg-type]
    (mr,) = doc["payload"]["MeterReading"]
    assert mr["Meter"]["mRID"] == meter_id
    assert len(mr["Readings"]) == 4 and mr["IntervalBlocks"]
