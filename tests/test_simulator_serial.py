"""The simulator on a real pseudo-terminal pair (socat) at 9600 baud: HDLC on
an RS-485-style line with several meters, and the optical port with the
IEC 62056-21 mode E sign-on before HDLC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import serial_asyncio_fast
from smmc_gateway import _core
from smmc_gateway.dlms.optical import OpticalSignOn
from smmc_gateway.simulator.fleet import SimulatedFleet

from tests.support_sim import (
    FleetSpec,
    MiniClient,
    MiniClientError,
    free_ports,
    running_serial_fleet,
)

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

DEVICE_ID = (1, "0.0.96.1.0.255", 2)


@contextlib.asynccontextmanager
async def serial_fleet(
    spec: FleetSpec, *, optical: bool = False
) -> AsyncIterator[tuple[SimulatedFleet, asyncio.StreamReader, asyncio.StreamWriter]]:
    async with running_serial_fleet(spec, optical=optical) as sim:
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=sim.device, baudrate=9600
        )
        try:
            yield sim.fleet, reader, writer
        finally:
            writer.close()


async def test_hdlc_bus_at_9600_baud_with_two_meters() -> None:
    async with serial_fleet(FleetSpec(meters=2, history_days=0, baud=9600)) as (fleet, r, w):
        for runtime in reversed(fleet.meters):
            client = MiniClient(r, w, hdlc=True, server_lower=runtime.physical_address)
            await client.connect()
            assert (await client.associate())["result"] == "accepted"
            serial = await client.get(*DEVICE_ID)
            assert bytes.fromhex(serial["value"]).decode() == runtime.serial
            assert (await client.release())["apdu"] == "rlre"


async def test_optical_mode_e_sign_on_then_hdlc() -> None:
    spec = FleetSpec(history_days=0, baud=9600)
    async with serial_fleet(spec, optical=True) as (fleet, reader, writer):
        sign_on = OpticalSignOn(max_baud=9600)
        await _sign_on(sign_on, reader, writer)
        assert sign_on.identification is not None
        assert sign_on.identification.mode_e
        assert sign_on.identification.identification == fleet.meters[0].serial
        assert sign_on.baud == 9600
        writer.write(sign_on.acknowledgement())
        await writer.drain()
        client = MiniClient(reader, writer, hdlc=True, server_lower=16)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        serial = await client.get(*DEVICE_ID)
        assert bytes.fromhex(serial["value"]).decode() == fleet.meters[0].serial
        await client.release()  # RLRQ, then DISC: back to sign-on
        again = OpticalSignOn(max_baud=9600)
        await _sign_on(again, reader, writer)
        assert again.identification is not None
        assert again.identification.identification == fleet.meters[0].serial


async def test_power_outage_on_the_bus_drops_the_hdlc_link() -> None:
    nowhere = f"127.0.0.1:{free_ports()[0]}"  # pushes are not what this test looks at
    spec = FleetSpec(history_days=0, baud=9600, push_destination=nowhere)
    async with serial_fleet(spec) as (fleet, reader, writer):
        client = MiniClient(reader, writer, hdlc=True, server_lower=16, timeout=0.5)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        fleet.power_outage(0)
        fleet.power_restored(0)
        # The rebooted meter's link is disconnected: an I frame gets DM.
        with pytest.raises(MiniClientError, match="DM"):
            await client.get(*DEVICE_ID)
        client = MiniClient(reader, writer, hdlc=True, server_lower=16)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"


async def _sign_on(
    sign_on: OpticalSignOn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Send the sign-on request until the meter identifies itself, as a reader does
    (a just-opened port may lose the first request), for at most 10 s."""
    async with asyncio.timeout(10.0):
        while sign_on.identification is None:
            writer.write(sign_on.start())
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(256), 1.5)
            except TimeoutError:
                continue
            sign_on.receive_data(data)
            while sign_on.identification is None:  # the rest of a split answer
                try:
                    sign_on.receive_data(await asyncio.wait_for(reader.read(256), 1.0))
                except TimeoutError:
                    break
