"""Simulated time: real UTC plus an offset, optionally sped up, with the
meters ticking (load profile captures) as it passes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from smmc_gateway import _core

from tests.support_sim import FleetSpec, MiniClient, running_fleet

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)


async def test_time_offset_shows_on_the_meter_clock() -> None:
    spec = FleetSpec(history_days=0, time_offset_s=86_400 * 30, drift_ppm=0.0)
    async with running_fleet(spec) as sim:
        client = await MiniClient.tcp(sim.ports[0])
        await client.connect()
        await client.associate()
        clock = await client.get(8, "0.0.1.0.0.255", 2)
        stamp = _core.decode_datetime(bytes.fromhex(clock["value"]))
        assert stamp is not None
        ahead = stamp.astimezone(UTC) - datetime.now(UTC)
        assert abs(ahead - timedelta(days=30)) < timedelta(seconds=30)
        await client.close()


async def test_speed_up_makes_the_load_profile_grow() -> None:
    spec = FleetSpec(
        auth="lls", password=b"pw123456", history_days=0, speed=4 * 3600.0, tick_interval_s=0.1
    )
    async with running_fleet(spec) as sim:
        client = await MiniClient.tcp(sim.ports[0], client=1)
        await client.connect()
        await client.associate(mechanism="lls", secret=b"pw123456")
        entries = (7, "1.0.99.1.0.255", 7)
        first = (await client.get(*entries))["value"]
        deadline = time.monotonic() + 10.0
        while (now := (await client.get(*entries))["value"]) < first + 8:  # two hours
            assert time.monotonic() < deadline, f"profile stayed at {now} entries"
            await asyncio.sleep(0.1)
        await client.close()
