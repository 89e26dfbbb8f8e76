"""asyncio transports of the simulator: TCP (wrapper or HDLC), and a serial
line (pseudo-terminal / RS-485 bus, optionally behind the IEC 62056-21
optical mode E sign-on).

* :func:`start_tcp_per_meter` — one listening port per meter, consecutive
  from a base port; with ``optical=True`` (HDLC only) each connection starts
  with the IEC 62056-21 mode E sign-on, as a meter's port behind an optical-
  or serial-to-TCP converter does.
* :func:`start_tcp_shared` — one HDLC port for all meters: the server
  (physical) address of the first frame picks the meter.
* :func:`serve_serial` — all meters on one line, each answering its own HDLC
  address (multidrop); with ``optical=True`` the first meter signs on in mode
  E at 300 baud first, then speaks HDLC at the agreed rate.

A line speed (``baud``) is emulated in both directions: a frame of n bytes
takes n × 10 / baud seconds to arrive and to leave. Faults (faults.py) are
applied per frame on the way out; a hung meter reads and ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.optical import SIGN_ON_BAUD, OpticalResponder
from smmc_gateway.simulator.fleet import MeterRuntime, SimulatedFleet
from smmc_gateway.simulator.link import HdlcEndpoint, WrapperEndpoint, first_frame

log = structlog.get_logger("smmc_gateway.simulator")
READ_SIZE = 4096


class Endpoint(Protocol):
    frames_in: int
    finished: bool

    def receive(self, data: bytes, now: float) -> list[bytes]: ...
    def timeout(self, now: float) -> list[bytes]: ...
    def deadline(self) -> float | None: ...
    def close(self) -> None: ...


class LineTiming:
    """Emulated serial line speed: bytes take 10 bits each, both ways."""

    def __init__(self, baud: int | None) -> None:
        self.baud = baud
        self._rx_free = 0.0
        self._tx_free = 0.0

    def _cost(self, n: int) -> float:
        return n * 10.0 / self.baud if self.baud else 0.0

    async def received(self, n: int) -> None:
        if self.baud:
            now = time.monotonic()
            self._rx_free = max(self._rx_free, now) + self._cost(n)
            await asyncio.sleep(self._rx_free - now)

    async def sending(self, n: int) -> None:
        if self.baud:
            now = time.monotonic()
            self._tx_free = max(self._tx_free, now) + self._cost(n)
            await asyncio.sleep(self._tx_free - now)


async def _send(
    writer: asyncio.StreamWriter, runtime: MeterRuntime, frames: list[bytes], timing: LineTiming
) -> None:
    if frames and runtime.faults.options.delay_s:
        await asyncio.sleep(runtime.faults.options.delay_s)
    for frame in frames:
        wire = runtime.faults.outgoing(frame)
        if wire is None:
            continue
        await timing.sending(len(wire))
        writer.write(wire)
    await writer.drain()


async def _read(reader: asyncio.StreamReader, deadline: float | None) -> bytes | None:
    """Bytes, b"" at EOF, None when ``deadline`` (monotonic) passed first."""
    if deadline is None:
        return await reader.read(READ_SIZE)
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0)):  # no task per read
            return await reader.read(READ_SIZE)
    except TimeoutError:
        return None


async def _serve_endpoint(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    runtime: MeterRuntime,
    endpoint: Endpoint,
    timing: LineTiming,
    first: bytes = b"",
) -> None:
    close = writer.transport.abort
    runtime.closers.add(close)
    try:
        data: bytes | None = first
        while runtime.powered:
            now = time.monotonic()
            hung = runtime.faults.hung  # answers to frames taken before hanging still go
            if data:
                await timing.received(len(data))
                out = endpoint.receive(data, now)
                if runtime.faults.should_reset(endpoint.frames_in):
                    log.info("sim_fault_reset", meter_id=runtime.meter_id)
                    break
            elif data is None:
                out = endpoint.timeout(now)
            else:
                out = []
            if not hung:
                await _send(writer, runtime, out, timing)
            if endpoint.finished:
                break
            data = await _read(reader, endpoint.deadline())
            if data == b"":
                break
    except (ConnectionError, _core.DlmsError) as exc:
        log.info("sim_connection_closed", meter_id=runtime.meter_id, reason=str(exc))
    finally:
        runtime.closers.discard(close)
        endpoint.close()
        close()


def _meter_log(runtime: MeterRuntime) -> Callable[[str], None]:
    return lambda msg: log.debug("sim_dlms", meter_id=runtime.meter_id, detail=msg)


async def start_tcp_per_meter(
    fleet: SimulatedFleet,
    base_port: int,
    *,
    hdlc: bool = False,
    host: str = "127.0.0.1",
    inactivity_s: float = 120.0,
    optical: bool = False,
) -> list[asyncio.Server]:
    """One listening port per meter: meter i on ``base_port + i`` (any free
    port each when ``base_port`` is 0); ``optical``: mode E sign-on first."""
    if optical and not hdlc:
        raise ValueError("the mode E sign-on hands the line to HDLC: optical needs hdlc")
    servers = []
    for runtime in fleet.meters:

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rt: MeterRuntime = runtime
        ) -> None:
            if not rt.powered:
                writer.transport.abort()
                return
            log_ = _meter_log(rt)
            if optical:
                agreed = await _sign_on(rt, reader, writer, LineTiming(rt.baud))
                if agreed is None:
                    writer.transport.abort()
                    return
                log_(f"mode E sign-on over TCP done, HDLC (rate {agreed} for the converter)")
            endpoint: Endpoint = (
                HdlcEndpoint(rt, log_, inactivity_s=inactivity_s)
                if hdlc
                else WrapperEndpoint(rt, log_, inactivity_s=inactivity_s)
            )
            await _serve_endpoint(reader, writer, rt, endpoint, LineTiming(rt.baud))

        port = base_port + runtime.index if base_port else 0
        try:
            servers.append(await asyncio.start_server(handle, host, port))
        except OSError:
            await close_servers(servers)
            raise
    return servers


async def start_tcp_shared(
    fleet: SimulatedFleet, port: int, *, host: str = "127.0.0.1"
) -> asyncio.Server:
    """All meters behind one HDLC port; the first frame's server address picks one."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        frame = None
        while frame is None:
            chunk = await reader.read(READ_SIZE)
            if not chunk or len(buffer) > 4096:
                writer.transport.abort()
                return
            buffer += chunk
            frame = first_frame(buffer)
        runtime = fleet.by_address(frame.dest_lower)
        if runtime is None or not runtime.powered:
            log.info("sim_no_meter_at_address", upper=frame.dest_upper, lower=frame.dest_lower)
            writer.transport.abort()
            return
        endpoint = HdlcEndpoint(runtime, _meter_log(runtime))
        await _serve_endpoint(
            reader, writer, runtime, endpoint, LineTiming(runtime.baud), first=buffer
        )

    return await asyncio.start_server(handle, host, port)


async def open_line(device: str, baud: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a serial device (or pty); raises OSError/SerialException naming it."""
    import serial_asyncio_fast

    return await serial_asyncio_fast.open_serial_connection(url=device, baudrate=baud)


async def serve_serial(
    fleet: SimulatedFleet,
    device: str,
    *,
    optical: bool = False,
    baud: int = 9600,
    line: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
) -> None:
    """Serve the fleet on a serial device (e.g. one end of a socat pty pair)
    until cancelled; ``line`` is the already opened device, if it is.
    RS-485 style: every meter hears every frame."""
    reader, writer = line or await open_line(device, baud)
    try:
        if optical:
            await _serve_optical(fleet.meters[0], reader, writer, baud)
        else:
            await _serve_bus(fleet, reader, writer, LineTiming(baud))
    finally:
        writer.close()


async def _serve_bus(
    fleet: SimulatedFleet,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timing: LineTiming,
) -> None:
    endpoints = [(rt, HdlcEndpoint(rt, _meter_log(rt))) for rt in fleet.meters]

    def rebooter(i: int) -> Callable[[], None]:
        def reboot() -> None:  # power lost: the HDLC link and associations are gone
            runtime, old = endpoints[i]
            old.close()
            endpoints[i] = (runtime, HdlcEndpoint(runtime, _meter_log(runtime)))

        return reboot

    reboots = [rebooter(i) for i in range(len(endpoints))]
    for (runtime, _), reboot in zip(endpoints, reboots, strict=True):
        runtime.closers.add(reboot)
    try:
        await _bus_loop(endpoints, reader, writer, timing)
    finally:
        for (runtime, _), reboot in zip(endpoints, reboots, strict=True):
            runtime.closers.discard(reboot)


async def _bus_loop(
    endpoints: list[tuple[MeterRuntime, HdlcEndpoint]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timing: LineTiming,
) -> None:
    while True:
        deadlines = [d for _, e in endpoints if (d := e.deadline()) is not None]
        data = await _read(reader, min(deadlines, default=None))
        if data == b"":
            await asyncio.sleep(0.05)  # a pty with no peer reads EOF: wait for one
            continue
        now = time.monotonic()
        if data:
            await timing.received(len(data))
        for runtime, endpoint in list(endpoints):
            if not runtime.powered:
                continue
            hung = runtime.faults.hung
            out = endpoint.receive(data, now) if data else endpoint.timeout(now)
            if not hung:
                await _send(writer, runtime, out, timing)


async def _serve_optical(
    runtime: MeterRuntime, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, baud: int
) -> None:
    """Mode E: sign-on at 300 baud, then HDLC at the agreed rate, until the
    HDLC link is disconnected; then back to sign-on."""
    log_ = _meter_log(runtime)
    while True:
        responder = OpticalResponder(
            identification=runtime.serial, max_baud=baud, device_address=""
        )
        timing = LineTiming(SIGN_ON_BAUD)
        while responder.agreed_baud is None:
            data: bytes | None = await reader.read(READ_SIZE)
            if not data:
                await asyncio.sleep(0.05)
                continue
            await timing.received(len(data))
            answer = responder.receive_data(data)
            if answer and runtime.powered and not runtime.faults.hung:
                await asyncio.sleep(0.2)  # IEC 62056-21 reaction time tr >= 200 ms
                await timing.sending(len(answer))
                writer.write(answer)
                await writer.drain()
        log_(f"optical sign-on done, HDLC at {responder.agreed_baud} baud")
        timing = LineTiming(responder.agreed_baud)
        endpoint = HdlcEndpoint(runtime, log_)

        def power_lost(ep: HdlcEndpoint = endpoint) -> None:
            ep.disconnected = True  # back to sign-on once power returns

        runtime.closers.add(power_lost)
        while not endpoint.disconnected:
            data = await _read(reader, endpoint.deadline())
            if data == b"":
                await asyncio.sleep(0.05)
                continue
            now = time.monotonic()
            if data:
                await timing.received(len(data))
            hung = runtime.faults.hung
            out = endpoint.receive(data, now) if data else endpoint.timeout(now)
            if runtime.powered and not hung:
                await _send(writer, runtime, out, timing)
        runtime.closers.discard(power_lost)
        endpoint.close()


async def _sign_on(
    runtime: MeterRuntime,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timing: LineTiming,
) -> int | None:
    """The meter's side of the mode E sign-on on a stream (TCP: the converter
    owns the baud rates); the agreed rate, or None when the peer went away."""
    responder = OpticalResponder(
        identification=runtime.serial, max_baud=runtime.baud or 9600, device_address=""
    )
    while responder.agreed_baud is None:
        data = await reader.read(READ_SIZE)
        if not data:
            return None
        await timing.received(len(data))
        answer = responder.receive_data(data)
        if answer and runtime.powered and not runtime.faults.hung:
            await asyncio.sleep(0.2)  # IEC 62056-21 reaction time tr >= 200 ms
            await timing.sending(len(answer))
            writer.write(answer)
            await writer.drain()
    return responder.agreed_baud


async def close_servers(servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
    for server in servers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2.0)
