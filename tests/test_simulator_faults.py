"""Fault injection behaves as configured: a hung meter really stays silent on
an open connection, a reset really closes it, dropped frames are recovered by
HDLC retransmission, corrupted frames never reach the client, and a power
outage pushes a last-gasp data-notification (and power-restored later)."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway import _core
from smmc_gateway.simulator.events import ALARM_POWER_DOWN, ALARM_POWER_UP

from tests.support_sim import (
    FaultOptions,
    FleetSpec,
    MiniClient,
    MiniClientError,
    PushListener,
    running_fleet,
)

pytestmark = pytest.mark.skipif(
    not hasattr(_core, "decode_apdu"), reason="core built without decode_apdu/encode_apdu"
)

CLOCK = (8, "0.0.1.0.0.255", 2)


async def test_hang_after_n_frames_goes_silent_on_an_open_connection() -> None:
    spec = FleetSpec(history_days=0, faults=FaultOptions(hang_after=2))
    async with running_fleet(spec) as sim:
        client = await MiniClient.tcp(sim.ports[0], timeout=1.0)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"  # frame 1
        assert (await client.get(*CLOCK))["type"] == "octet-string"  # frame 2
        with pytest.raises(TimeoutError):
            await client.get(*CLOCK)  # frame 3: no answer, ever
        assert not client.reader.at_eof()  # the connection is still open
        assert sim.fleet.meters[0].faults.hung
        await client.close()


async def test_reset_after_n_frames_closes_the_connection() -> None:
    spec = FleetSpec(history_days=0, faults=FaultOptions(reset_after=2))
    async with running_fleet(spec) as sim:
        client = await MiniClient.tcp(sim.ports[0], timeout=5.0)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        with pytest.raises(ConnectionError):
            await client.get(*CLOCK)
        await client.close()
        # A new connection works again (until its own second frame).
        client = await MiniClient.tcp(sim.ports[0], timeout=5.0)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        await client.close()


async def test_dropped_hdlc_frames_are_recovered_by_retransmission() -> None:
    spec = FleetSpec(history_days=0, faults=FaultOptions(drop_percent=30, seed=7))
    async with running_fleet(spec, hdlc=True) as sim:
        client = await MiniClient.tcp(sim.ports[0], hdlc=True, server_lower=16, timeout=0.3)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        for _ in range(6):
            assert (await client.get(*CLOCK))["type"] == "octet-string"
        assert sim.fleet.meters[0].faults.dropped > 0
        await client.close()


async def test_corrupted_frames_never_reach_the_client() -> None:
    spec = FleetSpec(history_days=0, faults=FaultOptions(corrupt_percent=100))
    async with running_fleet(spec, hdlc=True) as sim:
        client = await MiniClient.tcp(sim.ports[0], hdlc=True, server_lower=16, timeout=0.2)
        with pytest.raises((MiniClientError, TimeoutError)):
            await client.connect()
        assert sim.fleet.meters[0].faults.corrupted > 0
        await client.close()


async def test_power_outage_sends_last_gasp_and_restored_pushes() -> None:
    async with PushListener() as listener:
        spec = FleetSpec(
            auth="hls-gmac", history_days=0, push_destination=f"127.0.0.1:{listener.port}"
        )
        async with running_fleet(spec) as sim:
            info = sim.info[0]
            ek, ak = bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"])

            def alarm_bits(apdu: bytes) -> int:
                plain, sc, _ic, title = _core.decipher_apdu(apdu, system_title=None, ek=ek, ak=ak)
                assert sc == 0x30 and title == bytes.fromhex(info["system_title"])
                note = _core.decode_apdu(plain)
                assert note["apdu"] == "data-notification"
                assert _core.decode_datetime(note["date_time"]) is not None
                body = _core.decode(note["body_raw"])
                values = [v["value"] for v in body["value"]]
                assert bytes.fromhex(values[1]).decode() == info["serial"]  # device id
                return int(values[2])  # the alarm register

            client = await MiniClient.tcp(sim.ports[0], timeout=2.0)
            await client.connect()
            sim.fleet.power_outage(0)
            source, dest, apdu = await listener.next()
            assert (source, dest) == (1, 102)
            assert alarm_bits(apdu) & ALARM_POWER_DOWN
            with pytest.raises((ConnectionError, TimeoutError)):  # no power, no modem
                await client.associate()
            await client.close()

            sim.fleet.power_restored(0)
            _, _, apdu = await listener.next()
            assert alarm_bits(apdu) & ALARM_POWER_UP
            client = await MiniClient.tcp(sim.ports[0], timeout=2.0)
            await client.connect()
            assert (await client.associate())["result"] == "accepted"
            await client.close()


async def test_response_delay_is_applied() -> None:
    spec = FleetSpec(history_days=0, faults=FaultOptions(delay_s=1.5))
    async with running_fleet(spec) as sim:
        client = await MiniClient.tcp(sim.ports[0], timeout=0.3)
        await client.connect()
        with pytest.raises(TimeoutError):
            await client.associate()
        # The late answer does arrive.
        frame = await asyncio.wait_for(client.reader.read(4096), 5.0)
        assert frame[:4] == bytes([0, 1, 0, 1])  # wrapper version 1, from wPort 1
        await client.close()


async def test_idle_wrapper_connection_is_closed_by_the_meter() -> None:
    async with running_fleet(FleetSpec(history_days=0), inactivity_s=0.5) as sim:
        client = await MiniClient.tcp(sim.ports[0], timeout=5.0)
        await client.connect()
        assert (await client.associate())["result"] == "accepted"
        assert await asyncio.wait_for(client.reader.read(100), 5.0) == b""  # EOF: closed
        await client.close()
