"""Chile's clock end to end: MQTT -> gateway -> a simulated meter on America/Santiago
time -> MQTT. An on-demand load profile read across each yearly transition comes back
with every UTC quarter hour once: no invented gap in September, no repeated or lost hour
in April. The meters run months ahead of the host clock (the fleet's time offset), the
range is the request's timeSchedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chile_clock_support import APRIL_BACK, SEPTEMBER_FORWARD, every_quarter
from conftest import Broker
from test_daemon_e2e import GW, gateway, lab, online, reply, request, send
from uplink_helpers import validate

from tests.support_sim import FleetSpec, running_fleet

CLOCK = '[models.default.clock]\ntimezone = "America/Santiago"\n'


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("blank", [False, True], ids=["deviation", "deviation-0x8000"])
@pytest.mark.parametrize("edge", [APRIL_BACK, SEPTEMBER_FORWARD], ids=["april", "september"])
async def test_an_on_demand_profile_read_across_a_transition(
    mosquitto: Broker, collector: Any, tmp_path: Path, edge: datetime, blank: bool
) -> None:
    """``blank``: the meter sends its date-times without deviation (0x8000); the model's
    [clock] timezone places them."""
    offset = (edge + timedelta(hours=4) - datetime.now(UTC)).total_seconds()
    spec = FleetSpec(
        meters=1,
        time_offset_s=offset,
        timezone="America/Santiago",
        deviation_not_specified=blank,
        drift_ppm=0.0,
    )
    col = await collector(mosquitto, f"smmc/v1/{GW}/#")
    span = every_quarter(edge - timedelta(hours=2), edge + timedelta(hours=2))
    async with (
        running_fleet(spec) as sim,
        gateway(lab(sim, tmp_path, mosquitto, extra=CLOCK)),
    ):
        meter = sim.info[0]["meter_id"]
        await online(col)
        body = {
            "EndDevices": [{"mRID": meter}],
            "ReadingTypes": [{"obis": "1.0.1.8.0.255"}],
            "timeSchedule": {"start": iso(span[0]), "end": iso(span[-1])},
        }
        validate(body, "meter-readings-request")
        await send(mosquitto, "MeterReadings", request("lp-1", body, "get", "MeterReadings"))
        got = await reply(col, "lp-1")
    assert got["reply"]["result"] == "OK", got
    validate(got["payload"], "meter-readings")
    (reading,) = got["payload"]["MeterReading"]
    assert reading["IntervalBlocks"]
    for block in reading["IntervalBlocks"]:
        stamps = [iv["timeStamp"] for iv in block["IntervalReadings"]]
        assert stamps == [iso(t) for t in span]
