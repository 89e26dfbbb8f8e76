"""IEC 62056-21 mode E over TCP (a meter port behind an optical- or serial-to-TCP
converter): the sign-on, then HDLC, on one TCP connection.

Against the simulator serving mode E on TCP (``simulate --tcp --hdlc --optical``),
against the simulator's optical serial port behind a TCP-to-pty converter (socat,
what a serial-to-TCP converter does), through the CLI (``meter --tcp H:P --hdlc
--mode-e``) and the daemon's configuration (``connection.mode_e``), and against small
in-test peers for the failures (no mode E, NAK, silence).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway.dlms.errors import LinkLost, MeterTimeout
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.mode_e_tcp import ModeETcpTransport
from smmc_gateway.dlms.optical import NAK, OpticalResponder
from smmc_gateway.dlms.optical_port import OpticalSignOnError
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import ConfigError, load_config
from smmc_gateway.simulator.fleet import SimulatedFleet
from smmc_gateway.simulator.serve import close_servers, serve_serial, start_tcp_per_meter

from tests.support_sim import FleetSpec, free_ports, pty_pair, simulator_process

CLI = [sys.executable, "-m", "smmc_gateway.cli"]


def hls(info: dict[str, Any]) -> Security:
    return Security.hls_gmac(
        system_title=b"SMMCTEST",
        ek=bytes.fromhex(info["ek"]),
        ak=bytes.fromhex(info["ak"]),
        ic_store=InvocationCounterStore(":memory:"),
    )


@contextlib.asynccontextmanager
async def mode_e_fleet(spec: FleetSpec) -> AsyncIterator[tuple[SimulatedFleet, int]]:
    fleet = SimulatedFleet(spec)
    servers = await start_tcp_per_meter(fleet, 0, hdlc=True, optical=True)
    try:
        yield fleet, int(servers[0].sockets[0].getsockname()[1])
    finally:
        await close_servers(servers)
        await fleet.stop()


async def test_mode_e_over_tcp_then_hls_read_from_the_simulator() -> None:
    spec = FleetSpec(auth="hls-gmac", history_days=0)
    async with mode_e_fleet(spec) as (fleet, port):
        meter = fleet.meters[0]
        tr = ModeETcpTransport("127.0.0.1", port, HdlcSettings(client_address=1))
        settings = SessionSettings(client_sap=1, security=hls(meter.describe()))
        async with ClientSession(tr, settings) as s:
            clock = await s.get(8, "0.0.1.0.0.255", 2)
            energy = await s.get(3, "1.0.1.8.0.255", 2)
        assert clock["type"] == "octet-string"
        assert energy["type"] == "double-long-unsigned"
        assert tr.identification == f"SMC {meter.serial}"
        assert tr.baud == 9600  # the simulated meter offers 9600 ('5')
        assert tr.description.startswith("tcp 127.0.0.1:")


async def test_plain_hdlc_client_gets_no_link_from_a_mode_e_port() -> None:
    """The simulated port really waits for the sign-on: an SNRM without it is not
    answered (so the test above proves the handshake ran)."""
    spec = FleetSpec(auth="none", history_days=0)
    async with mode_e_fleet(spec) as (_fleet, port):
        tr = HdlcTransport.tcp("127.0.0.1", port, HdlcSettings(response_timeout=0.3, max_retries=1))
        with pytest.raises((MeterTimeout, LinkLost), match=r"UA|SNRM"):
            await tr.open(timeout=2.0)
        await tr.close()


async def test_mode_e_over_tcp_through_a_converter_to_the_optical_pty() -> None:
    """socat plays the serial-to-TCP converter in front of the simulator's optical
    port (a pty, 300 baud sign-on then 9600 emulated): our TCP client signs on
    through it and reads."""
    spec = FleetSpec(auth="hls-gmac", baud=9600, history_days=0)
    [port] = free_ports(1)
    with pty_pair() as (meter_end, client_end):
        fleet = SimulatedFleet(spec)
        serving = asyncio.create_task(serve_serial(fleet, meter_end, optical=True, baud=9600))
        converter = await asyncio.create_subprocess_exec(
            "socat",
            f"tcp-listen:{port},bind=127.0.0.1,reuseaddr",
            f"{client_end},raw,echo=0",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await _wait_listening(port)
            meter = fleet.meters[0]
            tr = ModeETcpTransport(
                "127.0.0.1",
                port,
                HdlcSettings(client_address=1),
                max_baud=9600,
                identification_timeout=5.0,
            )
            settings = SessionSettings(client_sap=1, security=hls(meter.describe()))
            async with ClientSession(tr, settings) as s:
                assert (await s.get(8, "0.0.1.0.0.255", 2))["type"] == "octet-string"
            assert tr.identification == f"SMC {meter.serial}"
        finally:
            converter.terminate()
            await asyncio.wait_for(converter.wait(), 5)
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            await fleet.stop()


async def _wait_listening(port: int) -> None:
    """Until something listens on 127.0.0.1:port (read from /proc: a probing
    connection would use up socat's one connection)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _listening(port):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _listening(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == want and r.split()[3] == "0A" for r in rows)


# ---------------------------------------------------------------- in-test TCP peers
Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_peer(behaviour: Peer) -> AsyncIterator[int]:
    server = await asyncio.start_server(behaviour, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def test_meter_without_mode_e_over_tcp_is_a_clear_error() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        responder = OpticalResponder(mode_e=False, identification="OLD1")
        while data := await reader.read(256):
            writer.write(responder.receive_data(data))

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport("127.0.0.1", port, HdlcSettings(), identification_timeout=5)
        with pytest.raises(OpticalSignOnError, match=rf"tcp 127.0.0.1:{port}: .*does not offer"):
            await tr.open()


async def test_nak_over_tcp_is_a_clear_error() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(b"/KFM5\\2NAKKER\r\n")
        await reader.readuntil(b"\r\n")
        writer.write(bytes([NAK]))
        await asyncio.Event().wait()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport("127.0.0.1", port, HdlcSettings(), nak_window=2.0)
        with pytest.raises(OpticalSignOnError, match=r"refused mode E at 9600 baud.*NAK"):
            await tr.open()


async def test_acknowledgement_names_the_meters_rate_capped_by_max_baud() -> None:
    acks: list[bytes] = []

    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(b"/LGZ6\\2ZMF100\r\n")  # offers 19200
        acks.append(await reader.readuntil(b"\r\n"))
        await asyncio.Event().wait()  # then no UA: the link times out

    async with tcp_peer(meter) as port:
        for cap, want in ((19200, b"\x06262\r\n"), (4800, b"\x06242\r\n")):
            tr = ModeETcpTransport(
                "127.0.0.1",
                port,
                HdlcSettings(response_timeout=0.2, max_retries=0),
                max_baud=cap,
                nak_window=0.05,
            )
            with pytest.raises((MeterTimeout, LinkLost), match=r"UA|SNRM"):
                await tr.open(timeout=1.0)
            assert tr.identification == "LGZ ZMF100"
            assert acks[-1] == want
    assert acks == [b"\x06262\r\n", b"\x06242\r\n"]


async def test_silent_converter_ends_within_the_identification_timeout() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport(
            "127.0.0.1", port, HdlcSettings(), identification_timeout=0.3, sign_on_attempts=2
        )
        with pytest.raises(
            OpticalSignOnError,
            match=r"no identification within 0\.3 s after "
            r"each of 2 sign-on requests: nothing received \(is the converter",
        ):
            await tr.open()


async def test_wrong_baud_rate_character_is_named() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(b"/ABC9\\2WEIRD\r\n")  # '9' is no mode E rate
        await asyncio.Event().wait()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport("127.0.0.1", port, HdlcSettings(), identification_timeout=5)
        with pytest.raises(
            OpticalSignOnError, match=rf"tcp 127.0.0.1:{port}: .*baud rate character '9'"
        ):
            await tr.open()


async def test_nak_to_the_request_is_named() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(bytes([NAK]))
        await asyncio.Event().wait()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport(
            "127.0.0.1", port, HdlcSettings(), identification_timeout=5, device_address="42"
        )
        with pytest.raises(
            OpticalSignOnError, match=r"NAK to the sign-on request '/\?42!\\r\\n'.*address"
        ):
            await tr.open()


async def test_garbage_at_the_wrong_rate_is_shown_in_the_silence_error() -> None:
    """A converter set to the wrong rate turns the identification into noise: the
    error says what came (and suggests the rate)."""

    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(64):
            writer.write(b"\xf8\x80\x1c")
        await asyncio.Event().wait()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport(
            "127.0.0.1", port, HdlcSettings(), identification_timeout=0.3, sign_on_attempts=2
        )
        with pytest.raises(
            OpticalSignOnError,
            match=r"each of 2 sign-on requests: received 6 byte\(s\) "
            r"'\\xf8\\x80\\x1c\\xf8\\x80\\x1c' \(wrong rate or parity\?\)",
        ):
            await tr.open()


async def test_converter_closing_during_the_sign_on_is_named_at_once() -> None:
    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n")
        writer.write(b"/LGZ5")  # half an identification, then the line drops
        await writer.drain()
        writer.close()

    async with tcp_peer(meter) as port:
        tr = ModeETcpTransport("127.0.0.1", port, HdlcSettings(), identification_timeout=30)
        start = time.monotonic()
        with pytest.raises(
            OpticalSignOnError,
            match=r"connection closed during the mode E "
            r"sign-on, after 1 request\(s\), before an identification: "
            r"received 5 byte\(s\) '/LGZ5'",
        ):
            await tr.open()
        assert time.monotonic() - start < 10  # not the 30 s identification timeout


# ---------------------------------------------------------------- CLI and daemon config
def test_cli_meter_mode_e_over_tcp_against_simulate(tmp_path: Path) -> None:
    with simulator_process(
        ["--tcp", "0", "--hdlc", "--optical", "--auth", "lls", "--password", "ModeE-pass-1"]
    ) as sim:
        entry = sim.info["meters"][0]
        assert entry["framing"] == "optical+hdlc"
        env = {
            "PATH": "/usr/bin:/bin",
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "HOME": str(tmp_path),
        }
        base = [
            *CLI,
            "meter",
            "--tcp",
            f"127.0.0.1:{entry['port']}",
            "--hdlc",
            "--password",
            "ModeE-pass-1",
            "--timeout",
            "5",
        ]
        ok = subprocess.run(
            [*base, "--mode-e", "--json", "get", "3/1.0.1.8.0.255/2"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert '"double-long-unsigned"' in ok.stdout
        assert "ModeE-pass-1" not in ok.stdout + ok.stderr


def test_cli_mode_e_needs_tcp_and_hdlc(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "meter", "--tcp", "127.0.0.1:1", "--mode-e", "clock"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert "--mode-e" in proc.stderr and "--hdlc" in proc.stderr


def test_simulate_mode_e_over_tcp_needs_hdlc() -> None:
    proc = subprocess.run(
        [*CLI, "simulate", "--tcp", "0", "--optical"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--optical over TCP needs --hdlc" in proc.stderr


GATEWAY = """
[gateway]
id = "gw-mode-e"
state_dir = "{state}"

[broker]
host = "127.0.0.1"

[[meters]]
id = "m1"
connection = {{ kind = "tcp", host = "127.0.0.1", port = {port}, framing = "{framing}"{extra} }}
addresses = {{ client = 16, server_logical = 1 }}
"""


def write_config(
    tmp: Path, *, framing: str = "hdlc", extra: str = ", mode_e = true", port: int = 4059
) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(GATEWAY.format(state=tmp / "state", port=port, framing=framing, extra=extra))
    return path


def test_config_mode_e_builds_the_mode_e_transport(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    meter = config.meters[0]
    assert meter.connection.kind == "tcp" and meter.connection.mode_e
    transport = SessionFactory().transport(meter)
    assert isinstance(transport, ModeETcpTransport)
    plain = load_config(write_config(tmp_path, extra="")).meters[0]
    assert not isinstance(SessionFactory().transport(plain), ModeETcpTransport)


def test_config_mode_e_with_the_wrapper_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mode_e: needs framing = \"hdlc\""):
        load_config(write_config(tmp_path, framing="wrapper"))
    with pytest.raises(ConfigError, match=r"mode_e: \"yes\" is not true or false"):
        load_config(write_config(tmp_path, extra=', mode_e = "yes"'))


async def test_daemon_session_signs_on_over_tcp(tmp_path: Path) -> None:
    """The head-end's session for a mode_e meter reads the simulator over TCP."""
    spec = FleetSpec(auth="none", history_days=0)
    async with mode_e_fleet(spec) as (_fleet, port):
        meter = load_config(write_config(tmp_path, port=port)).meters[0]
        async with SessionFactory(response_timeout=5.0).session(meter) as s:
            value = await s.get(3, "1.0.1.8.0.255", 2)
        assert value["type"] == "double-long-unsigned"
