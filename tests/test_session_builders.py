"""The CLI (`meter`), the head-end and the Python API build their transports and their
Security through one builder (dlms/endpoint.py): the same inputs give the same system
title file, the same invocation-counter scope and the same transport; each caller words
the builder's refusals in its own terms (options for the CLI, the meter id for the
head-end). Also: the CLI's jobs address the meter with the named COSEM objects and send
exactly the requests they sent with bare numbers."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import smmc_gateway
from rich.console import Console
from smmc_gateway import _core
from smmc_gateway.cli import build_parser, meter_ops
from smmc_gateway.cli.common import UsageError
from smmc_gateway.cli.meter_cmd import Output
from smmc_gateway.cli.meter_session import build, installation_title
from smmc_gateway.dlms import endpoint
from smmc_gateway.dlms.client import ClientSession
from smmc_gateway.dlms.endpoint import ConfigurationError, TitleFileError
from smmc_gateway.dlms.hdlc_transport import HdlcTransport
from smmc_gateway.dlms.mode_e_tcp import ModeETcpTransport
from smmc_gateway.dlms.optical_port import OpticalTransport
from smmc_gateway.dlms.serial import SerialHdlcTransport
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.headend.sessions import SessionFactory
from smmc_gateway.ops.config import load_config
from smmc_gateway.usecases.key_change import KeySet

from tests.test_config import BASE, keys_file, write

EK = "000102030405060708090a0b0c0d0e0f"
AK = "f0e0d0c0b0a090807060504030201000"
LONG_AGO = datetime(2020, 1, 1, 12, tzinfo=UTC)


def cli(*argv: str) -> Any:
    """`smmc-gateway meter ARGV get 8/0.0.1.0.0.255/2` parsed (nothing is connected)."""
    return build_parser().parse_args(["meter", *argv, "get", "8/0.0.1.0.0.255/2"])


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMMC_EK", EK)
    monkeypatch.setenv("SMMC_AK", AK)
    for name in ("SMMC_PASSWORD", "SMMC_SYSTEM_TITLE"):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------- CLI and API: one nonce space
@pytest.mark.parametrize("first", ["cli", "api"])
async def test_cli_and_api_share_title_file_scope_and_counters(
    tmp_path: Path, keys_in_env: None, first: str
) -> None:
    store = tmp_path / "state" / "ic.sqlite"

    def from_cli() -> Any:
        _t, settings, _target = build(cli("--tcp", "127.0.0.1:4059", "--ic-store", str(store)))
        return settings.security

    def from_api() -> smmc_gateway.Meter:
        return smmc_gateway.connect(
            "tcp://127.0.0.1:4059", auth="hls-gmac", ek=EK, ak=AK, ic_store=store
        )

    # whichever makes the title file first, the other reads the same one
    cli_security = from_cli() if first == "cli" else None
    meter = from_api()
    cli_security = cli_security or from_cli()
    api_security = meter.session.settings.security
    try:
        title_file = endpoint.title_path(store)
        assert title_file == store.with_name("ic.sqlite.system-title")
        on_disk = bytes.fromhex(title_file.read_text("ascii"))
        assert cli_security.system_title == api_security.system_title == on_disk
        expected_scope = endpoint.key_scope(bytes.fromhex(EK), bytes.fromhex(AK))
        assert cli_security.ic_scope == api_security.ic_scope == expected_scope
        assert expected_scope.startswith("cli-")  # the CLI's stores of earlier releases
        # one counter sequence: what one took, the other never hands out again
        scope = expected_scope
        taken = {cli_security.ic_store.next(scope) for _ in range(3)}
        cli_security.ic_store.close()
        cli_security = None
        after = api_security.ic_store.next(scope)
        assert after > max(taken)
    finally:
        if cli_security is not None:
            cli_security.ic_store.close()
        await meter.close()


def test_the_cli_title_errors_keep_their_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "ic.sqlite"
    endpoint.title_path(store).write_text("0102\n")
    with pytest.raises(UsageError) as err:
        installation_title(store)
    assert str(err.value) == (
        f"system title file {endpoint.title_path(store)}: 2 bytes, expected 8; remove it "
        "(a new title is made) or give --system-title HEX"
    )

    def refused(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    other = tmp_path / "other.sqlite"
    monkeypatch.setattr(endpoint.os, "link", refused)
    with pytest.raises(UsageError) as err:
        installation_title(other)
    assert str(err.value) == (
        f"system title file {endpoint.title_path(other)}: cannot write it (Permission "
        "denied); give a writable --ic-store FILE or --system-title HEX"
    )
    with pytest.raises(TitleFileError) as shared:
        endpoint.installation_title(other)
    assert shared.value.part == "system_title" and not shared.value.damaged
    assert list(tmp_path.iterdir()) == [endpoint.title_path(store)]  # no temporary left


# ------------------------------------------------------- CLI links
@pytest.mark.parametrize(
    ("argv", "kind", "description"),
    [
        (("--tcp", "192.0.2.7:4059"), WrapperTransport, "tcp 192.0.2.7:4059 (wrapper)"),
        (("--tcp", "192.0.2.7:4059", "--hdlc"), HdlcTransport, "tcp 192.0.2.7:4059 (HDLC)"),
        (
            ("--tcp", "192.0.2.7:4059", "--hdlc", "--mode-e"),
            ModeETcpTransport,
            "tcp 192.0.2.7:4059 (mode E sign-on, then HDLC)",
        ),
        (
            ("--serial", "/dev/null", "--baud", "2400"),
            SerialHdlcTransport,
            "serial /dev/null at 2400 baud",
        ),
        (
            ("--optical", "/dev/null"),
            OpticalTransport,
            "optical head /dev/null (mode E, up to 9600 baud)",
        ),
    ],
)
def test_the_cli_builds_each_link(argv: tuple[str, ...], kind: type, description: str) -> None:
    transport, settings, target = build(
        cli(*argv, "--timeout", "8", "--server", "17", "--logical-device", "2")
    )
    assert type(transport) is kind and target.description == description
    assert (settings.client_sap, target.client, target.level) == (16, 16, "none")
    if isinstance(transport, HdlcTransport):
        hdlc = transport.settings
        assert (hdlc.client_address, hdlc.server_upper, hdlc.server_lower) == (16, 2, 17)
        assert (hdlc.response_timeout, hdlc.max_retries) == (2.0, 3)  # --timeout / 4
    else:
        assert isinstance(transport, WrapperTransport)
        assert (transport.client_sap, transport.logical_device) == (16, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--tcp", "h:1", "--hdlc", "--mode-e", "--baud", "1234"), "--baud 1234: "),
        (("--optical", "/dev/null", "--baud", "1234"), "--baud 1234: "),
        (("--serial", "/dev/null", "--baud", "0"), "--baud 0: must be a positive rate"),
        (("--tcp", "h:1", "--mode-e"), "--mode-e is the IEC 62056-21 sign-on"),
    ],
)
def test_the_cli_names_the_option_of_a_bad_link(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as err:
        build(cli(*argv))
    assert str(err.value).startswith(message)


# ------------------------------------------------------- head-end
def fleet(tmp_path: Path) -> Any:
    keys_file(tmp_path, f'[grp]\nek = "{EK}"\nak = "{AK}"\n')
    body = BASE.replace('state_dir = "state"', 'state_dir = "state"\nkey_file = "keys.toml"')
    body += """
[[buses]]
name = "rs485-1"
device = "/dev/null"
baud = 2400
[[meters]]
id = "bus-7"
connection = { kind = "serial", bus = "rs485-1" }
addresses = { client = 1, server_logical = 1, server_physical = 7 }
security = { level = "hls-gmac", key_id = "grp" }
[[meters]]
id = "tcp-1"
connection = { kind = "tcp", host = "192.0.2.7", port = 4059, framing = "wrapper" }
addresses = { client = 1, server_logical = 3 }
security = { level = "hls-gmac", key_id = "grp" }
"""
    return load_config(write(tmp_path, body))


def test_the_headend_builds_through_the_shared_builder(tmp_path: Path) -> None:
    cfg = fleet(tmp_path)
    factory = SessionFactory(dict(cfg.buses), system_title=b"SMMCGW42", response_timeout=9)
    bus_meter, tcp_meter = cfg.meter("bus-7"), cfg.meter("tcp-1")
    serial = factory.transport(bus_meter)
    assert isinstance(serial, SerialHdlcTransport) and serial.who == "bus-7"
    assert serial.description.startswith("serial /dev/null@2400 ")
    hdlc = serial.settings
    assert (hdlc.client_address, hdlc.server_upper, hdlc.server_lower) == (1, 1, 7)
    assert hdlc.response_timeout == 5.0  # capped
    wrapper = factory.transport(tcp_meter)
    assert isinstance(wrapper, WrapperTransport) and wrapper.logical_device == 3
    security = factory.security(tcp_meter)
    # the daemon's own title and one counter sequence per meter, not the CLI's scope
    assert (security.system_title, security.ic_scope) == (b"SMMCGW42", "tcp-1")
    with pytest.raises(ConfigurationError) as err:
        factory.security(tcp_meter, KeySet(bytes(15), bytes(16)))
    assert err.value.part == "ek" and str(err.value).startswith("meter tcp-1: ek has 15 bytes")
    factory.buses.clear()
    with pytest.raises(ValueError, match="meter bus-7: bus 'rs485-1' is not configured"):
        factory.transport(bus_meter)


# ------------------------------------------------------- named objects, same requests
class Recorder:
    """A session that records each request and answers like a small meter."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def get(self, *ref: Any) -> dict[str, Any]:
        self.calls.append(("get", *ref))
        class_id, _obis, attr = ref
        if (class_id, attr) == (8, 2):  # years away from now: a sync writes the time
            return {"type": "octet-string", "value": _core.encode_datetime(LONG_AGO).hex()}
        if class_id == 71 and attr == 2:
            return {
                "type": "structure",
                "value": [
                    {"type": "long-unsigned", "value": 3},
                    {"type": "octet-string", "value": "0100100700ff"},
                    {"type": "integer", "value": 2},
                ],
            }
        return {"type": "double-long-unsigned", "value": attr}

    async def set(self, *args: Any) -> None:
        self.calls.append(("set", *args[:3]))

    async def action(self, *args: Any) -> None:
        self.calls.append(("action", *args[:3]))


def output() -> Output:
    return Output(json=True, out=Console(file=io.StringIO()), err=Console(file=io.StringIO()))


def test_the_cli_jobs_send_the_requests_they_always_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock, dc, lim = "0.0.1.0.0.255", "0.0.96.3.10.255", "0.0.17.0.0.255"
    s = Recorder()
    asyncio.run(meter_ops._clock(s, output(), sync=True))
    # far from now: the time is written, not shifted
    assert s.calls == [("get", 8, clock, 2), ("set", 8, clock, 2), ("get", 8, clock, 2)]
    for action, method in (("disconnect", 1), ("connect", 2)):
        s = Recorder()
        job = meter_ops.prepare(build_parser().parse_args(["meter", "--tcp", "h:1", action]))
        asyncio.run(job(s, output()))
        assert s.calls == [("action", 70, dc, method)] + [("get", 70, dc, a) for a in (2, 3, 4)]
    s = Recorder()
    asyncio.run(meter_ops._limit(s, output(), 7000, 30, False))
    assert s.calls == [
        ("get", 71, lim, 4),
        ("set", 71, lim, 4),
        ("get", 71, lim, 6),
        ("set", 71, lim, 6),
        *(("get", 71, lim, a) for a in (3, 4, 5, 6, 7, 10)),
        ("get", 71, lim, 2),
    ]
    report = capsys.readouterr().out
    assert '"threshold_normal": 4' in report and '"emergency_profile_active": 10' in report


async def test_the_client_reads_the_object_list_and_keeps_alive_by_name() -> None:
    asked: list[tuple[Any, ...]] = []

    class Probe(ClientSession):
        def __init__(self) -> None:  # no transport: only what is asked matters here
            pass

        async def get_raw(self, *ref: Any, access: Any = None) -> bytes:
            asked.append(ref)
            return bytes([0x01, 0x00])  # an empty array

    probe = Probe()
    await probe.keep_alive()
    await probe.read_object_model()
    assert asked == [(8, "0.0.1.0.0.255", 2), (15, "0.0.40.0.0.255", 2)]
