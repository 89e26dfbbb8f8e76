"""Serial, RS-485 and optical transports over real pseudo-terminals (socat) at
9600 baud: against the simulator (HDLC, a shared bus, the mode E handshake)
and against small in-test optical peers for the failure cases (no mode E,
NAK, silence, an echoing head)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import serial_asyncio_fast
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.optical import NAK, OpticalResponder
from smmc_gateway.dlms.optical_port import OpticalSignOnError, OpticalTransport
from smmc_gateway.dlms.serial import Bus, SerialHdlcTransport
from smmc_gateway.dlms.session import (
    ClientSession,
    LinkLost,
    MeterTimeout,
    Security,
    SessionSettings,
)
from smmc_gateway.dlms.transport import HdlcSettings
from smmc_gateway.simulator.faults import FaultInjector, FaultOptions
from smmc_gateway.simulator.fleet import SimulatedFleet
from smmc_gateway.simulator.serve import serve_serial

from tests.support_sim import FleetSpec, pty_pair

ENERGY = [(3, f"1.0.{c}.8.0.255", 2) for c in (1, 2, 3, 4)]


def hls(info: dict[str, Any]) -> Security:
    return Security.hls_gmac(
        system_title=b"SMMCTEST",
        ek=bytes.fromhex(info["ek"]),
        ak=bytes.fromhex(info["ak"]),
        ic_store=InvocationCounterStore(":memory:"),
    )


@contextlib.asynccontextmanager
async def serial_fleet(spec: FleetSpec, *, optical: bool = False) -> AsyncIterator[Any]:
    """A simulated fleet on the meter end of a pty pair; yields (fleet, client device)."""
    with pty_pair() as (meter_end, client_end):
        fleet = SimulatedFleet(spec)
        task = asyncio.create_task(serve_serial(fleet, meter_end, optical=optical, baud=9600))
        try:
            yield fleet, client_end
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_hls_read_over_serial_hdlc_at_9600() -> None:
    spec = FleetSpec(auth="hls-gmac", baud=9600, history_days=0)
    async with serial_fleet(spec) as (fleet, device):
        meter = fleet.meters[0]
        hdlc = HdlcSettings(client_address=1, server_lower=meter.physical_address)
        tr = SerialHdlcTransport(device, hdlc, baudrate=9600)
        settings = SessionSettings(client_sap=1, security=hls(meter.describe()))
        async with ClientSession(tr, settings) as s:
            values = await s.get_many(ENERGY)
            assert all(isinstance(v, bytes) for v in values)
        assert tr.counters.bytes_sent > 0 and tr.counters.frame_errors == 0


async def test_two_meters_share_one_rs485_bus_one_at_a_time() -> None:
    spec = FleetSpec(meters=2, auth="lls", password=b"pw123456", baud=9600, history_days=0)
    async with serial_fleet(spec) as (fleet, device):
        bus = Bus(device, 9600)
        active: list[str] = []
        overlaps = 0

        async def read(index: int) -> bytes:
            nonlocal overlaps
            meter = fleet.meters[index]
            hdlc = HdlcSettings(client_address=1, server_lower=meter.physical_address)
            tr = SerialHdlcTransport(device, hdlc, bus=bus, who=meter.meter_id)
            settings = SessionSettings(client_sap=1, security=Security.lls(b"pw123456"))
            async with ClientSession(tr, settings) as s:
                active.append(meter.meter_id)
                overlaps += len(active) > 1
                serial = await s.get_raw(1, "0.0.96.1.0.255", 2)
                active.remove(meter.meter_id)
            return serial

        first, second = await asyncio.wait_for(asyncio.gather(read(0), read(1)), 60)
        assert overlaps == 0
        assert bus.turns_taken == 2 and bus.holder is None
        assert first != second  # each answer came from its own meter


async def test_a_hung_meter_gives_the_bus_back_within_its_timeout() -> None:
    spec = FleetSpec(meters=2, auth="lls", password=b"pw123456", baud=9600, history_days=0)
    async with serial_fleet(spec) as (fleet, device):
        fleet.meters[0].faults = FaultInjector(FaultOptions(hang_after=3))
        bus = Bus(device, 9600)
        settings = SessionSettings(
            client_sap=1, security=Security.lls(b"pw123456"), response_timeout=2.0
        )

        def transport(index: int) -> SerialHdlcTransport:
            meter = fleet.meters[index]
            hdlc = HdlcSettings(
                client_address=1,
                server_lower=meter.physical_address,
                response_timeout=0.5,
                max_retries=1,
            )
            return SerialHdlcTransport(device, hdlc, bus=bus, who=meter.meter_id)

        async def hung_read() -> None:
            async with ClientSession(transport(0), settings) as s:
                await s.get_many(ENERGY)
                await s.get_many(ENERGY)

        async def good_read() -> list[bytes | Exception]:
            async with ClientSession(transport(1), settings) as s:
                return list(await s.get_many(ENERGY))

        start = time.monotonic()
        hung = asyncio.create_task(hung_read())
        await asyncio.sleep(0)  # let it take the bus first
        assert bus.holder == fleet.meters[0].meter_id
        good = asyncio.create_task(good_read())
        with pytest.raises((MeterTimeout, LinkLost)):
            await asyncio.wait_for(hung, 20)
        values = await asyncio.wait_for(good, 20)
        assert all(isinstance(v, bytes) for v in values)
        assert bus.turns_taken == 2 and bus.holder is None
        assert time.monotonic() - start < 15


async def test_optical_mode_e_then_hls_read() -> None:
    spec = FleetSpec(auth="hls-gmac", baud=9600, history_days=0)
    async with serial_fleet(spec, optical=True) as (fleet, device):
        meter = fleet.meters[0]
        tr = OpticalTransport(device, HdlcSettings(client_address=1), max_baud=9600)
        settings = SessionSettings(client_sap=1, security=hls(meter.describe()))
        async with ClientSession(tr, settings) as s:
            assert (await s.get(8, "0.0.1.0.0.255", 2))["type"] == "octet-string"
        assert tr.baud == 9600
        assert tr.identification is not None and meter.serial in tr.identification


# ---------------------------------------------------------------- in-test optical peers

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def optical_peer(behaviour: Behaviour) -> AsyncIterator[str]:
    with pty_pair() as (meter_end, client_end):
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=meter_end, baudrate=9600
        )
        task = asyncio.create_task(behaviour(reader, writer))
        try:
            yield client_end
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            writer.close()


async def answer_sign_on(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, responder: OpticalResponder
) -> bytes:
    """Play the sign-on; returns what the responder said to the acknowledgement."""
    while True:
        data = await reader.read(256)
        answer = responder.receive_data(data)
        if answer:
            writer.write(answer)
        if responder.agreed_baud is not None or (answer and answer[-1] == NAK):
            return answer


async def test_meter_without_mode_e_is_a_clear_error() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_sign_on(reader, writer, OpticalResponder(mode_e=False, identification="OLD1"))

    async with optical_peer(meter) as device:
        tr = OpticalTransport(device, HdlcSettings(), identification_timeout=5)
        with pytest.raises(OpticalSignOnError, match="does not offer mode E"):
            await tr.open()


async def test_nak_to_the_acknowledgement_is_a_clear_error() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")  # the request
        writer.write(b"/SMC5\\2NAKKER\r\n")
        await reader.readuntil(b"\r\n")  # the acknowledgement
        writer.write(bytes([NAK]))
        await asyncio.Event().wait()

    async with optical_peer(meter) as device:
        tr = OpticalTransport(device, HdlcSettings(), identification_timeout=5, nak_window=2.0)
        with pytest.raises(OpticalSignOnError, match=r"refused mode E.*NAK"):
            await tr.open()


async def test_silent_meter_ends_within_the_identification_timeout() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with optical_peer(meter) as device:
        tr = OpticalTransport(
            device, HdlcSettings(), identification_timeout=0.5, sign_on_attempts=2
        )
        start = time.monotonic()
        with pytest.raises(
            OpticalSignOnError,
            match=r"no identification within 0\.5 s after each of 2 sign-on requests",
        ):
            await tr.open()
        assert time.monotonic() - start < 3


async def test_garbage_instead_of_identification() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(b"\x7f\x7f" * 100)
        await asyncio.Event().wait()

    async with optical_peer(meter) as device:
        tr = OpticalTransport(device, HdlcSettings(), identification_timeout=5)
        with pytest.raises(OpticalSignOnError, match="noise"):
            await tr.open()


async def test_echoing_head_is_tolerated_through_sign_on_and_hdlc() -> None:
    """The head echoes every byte the reader sends (request, ack, HDLC frames);
    behind it a meter answers the sign-on and SNRM."""

    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        responder = OpticalResponder(identification="ECHO1")
        link = _core.HdlcLink("server", client_address=16, server_upper=1)
        while True:
            data = await reader.read(256)
            writer.write(data)  # the echo
            if responder.agreed_baud is None:
                writer.write(responder.receive_data(data))
                continue
            link.receive_data(data, time.monotonic())
            while link.next_event() is not None:
                pass
            writer.write(link.data_to_send())

    async with optical_peer(meter) as device:
        tr = OpticalTransport(device, HdlcSettings(client_address=16), identification_timeout=5)
        await asyncio.wait_for(tr.open(), 15)
        assert tr.identification == "SMC ECHO1"
        assert tr.negotiated is not None and tr.negotiated.max_info_rx > 0
        await tr.close()
