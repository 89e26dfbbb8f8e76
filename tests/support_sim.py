"""Test helpers to run simulated meters (for anyone's tests; not a test module).

In-process fleet (fastest; the test owns the event loop)::

    from tests.support_sim import running_fleet, FleetSpec

    async with running_fleet(FleetSpec(meters=3, auth="hls-gmac"), hdlc=False) as sim:
        port = sim.ports[0]             # meter 0 on 127.0.0.1:port (wrapper)
        info = sim.info[0]              # meter_id, serial, hdlc_address,
                                        # system_title/ek/ak (hex), password
        sim.fleet.power_outage(0)       # last-gasp push, connections drop
        sim.fleet.power_restored(0)     # power-restored push
        rt = sim.fleet.meters[0]        # MeterRuntime: .meter (SimulatedMeter),
        rt.faults.options.drop_percent = 20   # faults can change while running
        rt.faults.recover()             # un-hang a meter hung by hang_after

Faults from the start: ``FleetSpec(faults=FaultOptions(hang_after=3, ...))``;
pushes go to ``FleetSpec(push_destination="127.0.0.1:PORT")`` (see
``PushListener``); ``FleetSpec(general_block_transfer=True)`` offers GBT.

``running_fleet(spec, hdlc=True)`` serves HDLC over TCP instead; ``shared=True``
puts all meters on ``sim.ports[0]`` (HDLC, the server lower address picks the
meter: ``sim.info[i]["hdlc_address"]``).

A separate process (the real CLI: ``python -m smmc_gateway.simulator``)::

    with simulator_process(["--tcp", "0", "--meters", "2"]) as sim:
        sim.info  # the --json listing it printed (port per meter included)

A fleet on a serial line (socat pty pair; the simulator emulates 9600 baud
both ways; ``optical=True`` adds the mode E sign-on at 300 baud first)::

    async with running_serial_fleet(FleetSpec(meters=2, baud=9600)) as sim:
        sim.device      # the client end: open it at 9600 8N1 (pyserial-asyncio)
        sim.info[i]["hdlc_address"]   # RS-485 style: each meter its own address

A bare socat pseudo-terminal pair (a null-modem cable)::

    with pty_pair() as (meter_end, client_end):
        ...

``MiniClient`` is a deliberately small DLMS client built only from core calls
(AARQ -> AARE [-> HLS reply] -> GET/SET/ACTION -> RLRQ) over wrapper or HDLC;
it exists to test the simulator against the standard, not to replace the
session layer. ``ClientKeys`` holds what a ciphered client needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smmc_gateway import _core
from smmc_gateway.simulator.faults import FaultOptions
from smmc_gateway.simulator.fleet import FleetSpec, SimulatedFleet
from smmc_gateway.simulator.serve import (
    close_servers,
    serve_serial,
    start_tcp_per_meter,
    start_tcp_shared,
)

from tests.link_tuples import as_tuple

__all__ = [
    "ClientKeys",
    "FaultOptions",
    "FleetSpec",
    "MiniClient",
    "PushListener",
    "RunningFleet",
    "RunningSerialFleet",
    "free_ports",
    "pty_pair",
    "running_fleet",
    "running_serial_fleet",
    "simulator_process",
]

REPO = Path(__file__).resolve().parent.parent


def free_ports(n: int = 1) -> list[int]:
    """n free consecutive loopback TCP ports (checked, not reserved)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65535:
            continue
        ok = True
        for p in range(base + 1, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return list(range(base, base + n))
    raise RuntimeError(f"no {n} consecutive free ports")


@dataclass
class RunningFleet:
    fleet: SimulatedFleet
    ports: list[int]
    info: list[dict[str, Any]]


@contextlib.asynccontextmanager
async def running_fleet(
    spec: FleetSpec | None = None,
    *,
    hdlc: bool = False,
    shared: bool = False,
    inactivity_s: float = 120.0,
) -> AsyncIterator[RunningFleet]:
    """Serve a fleet in this event loop on free ports; stops it on exit.
    ``inactivity_s``: a wrapper connection without frames that long is closed
    by the meter (an HDLC link disconnects)."""
    fleet = SimulatedFleet(spec or FleetSpec())
    n = 1 if shared else len(fleet.meters)
    ports = free_ports(n)
    if shared:
        servers = [await start_tcp_shared(fleet, ports[0])]
    else:
        servers = await start_tcp_per_meter(fleet, ports[0], hdlc=hdlc, inactivity_s=inactivity_s)
    ticker = asyncio.get_running_loop().create_task(fleet.run())
    try:
        yield RunningFleet(fleet, ports, [m.describe() for m in fleet.meters])
    finally:
        await fleet.stop()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await close_servers(servers)


@dataclass
class RunningSerialFleet:
    fleet: SimulatedFleet
    device: str
    info: list[dict[str, Any]]


@contextlib.asynccontextmanager
async def running_serial_fleet(
    spec: FleetSpec | None = None, *, optical: bool = False
) -> AsyncIterator[RunningSerialFleet]:
    """Serve a fleet on the meter end of a fresh pty pair; ``device`` is the
    client end. Line speed: ``spec.baud`` (default 9600)."""
    spec = spec or FleetSpec(baud=9600)
    with pty_pair() as (meter_end, client_end):
        fleet = SimulatedFleet(spec)
        task = asyncio.get_running_loop().create_task(
            serve_serial(fleet, meter_end, optical=optical, baud=spec.baud or 9600)
        )
        try:
            yield RunningSerialFleet(fleet, client_end, [m.describe() for m in fleet.meters])
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await fleet.stop()


@dataclass
class SimulatorProcess:
    proc: subprocess.Popen[str]
    info: dict[str, Any]


@contextlib.contextmanager
def simulator_process(args: list[str], timeout: float = 30.0) -> Iterator[SimulatorProcess]:
    """``python -m smmc_gateway.simulator ARGS --json``; yields once it printed
    its listing; SIGTERM (then SIGKILL) at exit."""
    cmd = [sys.executable, "-m", "smmc_gateway.simulator", *args, "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while not line.strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
                raise RuntimeError(f"simulator did not start: {err[-2000:]}")
            line = proc.stdout.readline()
        yield SimulatorProcess(proc, json.loads(line))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def pty_pair(timeout: float = 5.0) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals made by socat: (meter end, client end)."""
    if shutil.which("socat") is None:
        raise RuntimeError("socat is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="smmc-pty-"))
    a, b = tmp / "meter", tmp / "client"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while not (a.exists() and b.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.01)
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- push listener
class PushListener:
    """A TCP server collecting wrapper frames (pushes); ``await next(timeout)``."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> PushListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = _core.WrapperFramer()
        while data := await reader.read(4096):
            framer.feed(data)
            while (frame := framer.next_frame()) is not None:
                await self.frames.put(frame)
        writer.close()

    async def next(self, wait_s: float = 10.0) -> tuple[int, int, bytes]:
        return await asyncio.wait_for(self.frames.get(), wait_s)


# ---------------------------------------------------------------------- mini client
@dataclass
class ClientKeys:
    ek: bytes
    ak: bytes
    system_title: bytes = b"CLI00001"
    server_title: bytes = b""
    ic: int = 1


CONFORMANCE = [
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "get",
    "set",
    "selective-access",
    "action",
]


class MiniClientError(Exception):
    pass


@dataclass
class MiniClient:
    """A tiny DLMS client over an asyncio stream (TCP or a serial line)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    hdlc: bool = False
    client: int = 16
    server_lower: int | None = None
    timeout: float = 5.0
    keys: ClientKeys | None = None
    max_pdu: int = 1024
    invoke: int = 0
    largest_apdu: int = 0  # the longest APDU received (to check PDU size limits)
    _link: Any = None
    _framer: Any = field(default=None)

    @classmethod
    async def tcp(cls, port: int, **kw: Any) -> MiniClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, **kw)

    async def _read_some(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("meter did not answer")
        data = await asyncio.wait_for(self.reader.read(4096), left)
        if not data:
            raise ConnectionError("meter closed the connection")
        return data

    async def connect(self) -> None:
        if not self.hdlc:
            self._framer = _core.WrapperFramer()
            return
        self._link = _core.HdlcLink(
            "client",
            client_address=self.client,
            server_upper=1,
            server_lower=self.server_lower,
            max_info_tx=128,
            max_info_rx=128,
            response_timeout=self.timeout,
        )
        self._link.connect(time.monotonic())
        await self._until_event("connected")

    async def _until_event(self, want: str) -> Any:
        deadline = time.monotonic() + self.timeout * 4
        while True:
            out = self._link.data_to_send()
            if out:
                self.writer.write(out)
                await self.writer.drain()
            while (event := self._link.next_event()) is not None:
                if event.kind == want:
                    return as_tuple(event)[1]
                if isinstance(event, _core.LinkRefused | _core.LinkDown):
                    raise MiniClientError(f"HDLC {event.kind}: {event.reason}")
            dl = self._link.next_deadline()
            try:
                data = await self._read_some(min(dl or deadline, deadline))
                self._link.receive_data(data, time.monotonic())
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
                self._link.handle_timeout(time.monotonic())

    async def exchange(self, apdu: bytes) -> bytes:
        """Send one APDU, return the next APDU received."""
        if self.hdlc:
            self._link.send_apdu(apdu, time.monotonic())
            answer = bytes(await self._until_event("apdu"))
        else:
            self.writer.write(_core.wrapper_encode(self.client, 1, apdu))
            await self.writer.drain()
            deadline = time.monotonic() + self.timeout
            while (frame := self._framer.next_frame()) is None:
                self._framer.feed(await self._read_some(deadline))
            answer = bytes(frame[2])
        self.largest_apdu = max(self.largest_apdu, len(answer))
        return answer

    # ------------------------------------------------------------ ACSE
    async def associate(
        self,
        *,
        mechanism: str | None = None,
        secret: bytes | None = None,
        conformance: list[str] | None = None,
        version: int = 6,
    ) -> dict[str, Any]:
        initiate = _core.encode_apdu(
            {
                "apdu": "initiate-request",
                "dedicated_key": None,
                "response_allowed": None,
                "proposed_quality_of_service": None,
                "proposed_dlms_version_number": version,
                "proposed_conformance": conformance or CONFORMANCE,
                "client_max_receive_pdu_size": self.max_pdu,
            }
        )
        aarq: dict[str, Any] = {"apdu": "aarq", "application_context_name": "logical-name"}
        if self.keys is not None:
            aarq["application_context_name"] = "logical-name-with-ciphering"
            aarq["calling_ap_title"] = self.keys.system_title
            initiate = self._cipher(initiate)
        if mechanism is not None:
            aarq.update(
                sender_acse_requirements=True,
                mechanism_name=mechanism,
                calling_authentication_value=secret,
            )
        aarq["user_information"] = _core.decode_apdu(initiate)
        aare = _core.decode_apdu(await self.exchange(_core.encode_apdu(aarq)))
        if self.keys is not None and aare.get("responding_ap_title"):
            self.keys.server_title = aare["responding_ap_title"]
        return aare

    async def hls_reply(self, stoc: bytes) -> dict[str, Any]:
        assert self.keys is not None
        f = _core.hls_gmac(
            0x10, self.keys.system_title, self._next_ic(), self.keys.ek, self.keys.ak, stoc
        )
        return await self.action(
            15, "0.0.40.0.0.255", 1, {"type": "octet-string", "value": f.hex()}
        )

    async def release(self) -> dict[str, Any]:
        rlre = _core.decode_apdu(
            await self.exchange(_core.encode_apdu({"apdu": "rlrq", "reason": "normal"}))
        )
        if self.hdlc:
            self._link.disconnect(time.monotonic())
            await self._until_event("disconnected")
        return rlre

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    # ------------------------------------------------------------ xDLMS
    def _next_ic(self) -> int:
        assert self.keys is not None
        ic = self.keys.ic
        self.keys.ic += 1
        return ic

    def _cipher(self, apdu: bytes) -> bytes:
        assert self.keys is not None
        return _core.cipher_apdu(
            apdu,
            security_control=0x30,
            system_title=self.keys.system_title,
            invocation_counter=self._next_ic(),
            ek=self.keys.ek,
            ak=self.keys.ak,
        )

    async def request(self, req: dict[str, Any]) -> dict[str, Any]:
        self.invoke = (self.invoke + 1) % 16
        req = {"invoke_id_and_priority": 0xC0 | self.invoke, **req}
        apdu = _core.encode_apdu(req)
        if self.keys is not None:
            apdu = self._cipher(apdu)
        reply = await self.exchange(apdu)
        if self.keys is not None and reply[0] != 0xD8:
            reply, *_ = _core.decipher_apdu(
                reply, system_title=self.keys.server_title, ek=self.keys.ek, ak=self.keys.ak
            )
        return _core.decode_apdu(reply)

    async def get(
        self, class_id: int, obis: str, attribute: int, selection: dict[str, Any] | None = None
    ) -> Any:
        """The decoded value (blocks followed), or the data-access-result name."""
        resp = await self.request(
            {
                "apdu": "get-request-normal",
                "attribute": {
                    "class_id": class_id,
                    "obis": obis,
                    "attribute_id": attribute,
                    "access_selection": selection,
                },
            }
        )
        return self._get_result(resp)

    def _get_result(self, resp: dict[str, Any]) -> Any:
        if resp["apdu"] == "get-response-normal":
            result = resp["result"]
            if "data_raw" in result and result["data_raw"] is not None:
                return _core.decode(result["data_raw"])
            return result["data_access_result"]
        raise MiniClientError(f"unexpected {resp}")

    async def get_blocks(
        self, class_id: int, obis: str, attribute: int, selection: dict[str, Any] | None = None
    ) -> tuple[Any, int]:
        """(value, number of blocks) following get-response-with-datablock."""
        resp = await self.request(
            {
                "apdu": "get-request-normal",
                "attribute": {
                    "class_id": class_id,
                    "obis": obis,
                    "attribute_id": attribute,
                    "access_selection": selection,
                },
            }
        )
        if resp["apdu"] == "get-response-normal":
            return self._get_result(resp), 0
        raw = b""
        blocks = 0
        while True:
            if resp["apdu"] != "get-response-with-datablock" or resp["raw_data"] is None:
                raise MiniClientError(f"unexpected {resp}")
            blocks += 1
            if resp["block_number"] != blocks:
                raise MiniClientError(f"block {resp['block_number']}, expected {blocks}")
            raw += resp["raw_data"]
            if resp["last_block"]:
                return _core.decode(raw), blocks
            resp = await self.request({"apdu": "get-request-next", "block_number": blocks})

    async def set(self, class_id: int, obis: str, attribute: int, value: Any) -> Any:
        resp = await self.request(
            {
                "apdu": "set-request-normal",
                "attribute": {
                    "class_id": class_id,
                    "obis": obis,
                    "attribute_id": attribute,
                    "access_selection": None,
                },
                "value_raw": _core.encode(value),
            }
        )
        return resp["result"]

    async def action(
        self, class_id: int, obis: str, method: int, parameters: Any = None
    ) -> dict[str, Any]:
        return await self.request(
            {
                "apdu": "action-request-normal",
                "method": {"class_id": class_id, "obis": obis, "method_id": method},
                "parameters_raw": None if parameters is None else _core.encode(parameters),
            }
        )
