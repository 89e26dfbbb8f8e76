"""The public API (smmc_gateway.connect / Meter): URLs good and bad, every
authentication level, get/set/action/profile against the in-process simulator,
plain values both ways, and errors that name what was wrong, raised before connecting
where they can be."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
import smmc_gateway
from smmc_gateway import _core
from smmc_gateway.api import ConfigurationError, parse_url
from smmc_gateway.api.url import SCHEMES
from smmc_gateway.api.values import from_python, to_python
from smmc_gateway.cosem.objects import (
    Clock,
    DemandRegister,
    DisconnectControl,
    ProfileGeneric,
    ReferenceError_,
    Register,
)
from smmc_gateway.cosem.values import ValueTypeError
from smmc_gateway.dlms.association import SessionSettings
from smmc_gateway.dlms.endpoint import Endpoint, Kind, key_scope, title_path
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    DataAccessError,
    SecurityFailure,
    TransportError,
)
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.transport import HdlcTransport, WrapperTransport

from tests.support_sim import FleetSpec, free_ports, running_fleet, running_serial_fleet

PASSWORD = b"pw123456"
ENERGY = Register("1.0.1.8.0.255")
LOAD_PROFILE = ProfileGeneric("1.0.99.1.0.255")
KEY = bytes(range(16))


# ------------------------------------------------------------------ URLs
@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("tcp://127.0.0.1:4059", Endpoint("wrapper", host="127.0.0.1", port=4059)),
        ("TCP://meter.example:4059/", Endpoint("wrapper", host="meter.example", port=4059)),
        ("tcp://[2001:db8::7]:4059", Endpoint("wrapper", host="2001:db8::7", port=4059)),
        ("hdlc+tcp://10.0.0.5:10001", Endpoint("hdlc", host="10.0.0.5", port=10001)),
        (
            "mode-e+tcp://10.0.0.5:10001?baud=19200",
            Endpoint("mode-e", host="10.0.0.5", port=10001, baud=19200),
        ),
        ("serial:///dev/ttyUSB0?baud=9600", Endpoint("serial", device="/dev/ttyUSB0", baud=9600)),
        ("serial:///dev/ttyS1", Endpoint("serial", device="/dev/ttyS1")),
        ("optical:///dev/ttyUSB1", Endpoint("optical", device="/dev/ttyUSB1")),
    ],
)
def test_good_urls(url: str, endpoint: Endpoint) -> None:
    assert parse_url(url) == endpoint


@pytest.mark.parametrize(
    ("url", "part", "says"),
    [
        ("127.0.0.1:4059", "scheme", "has no scheme"),
        ("udp://127.0.0.1:4059", "scheme", "scheme 'udp' is not one of"),
        ("tcp://:4059", "host", "has no host"),
        ("tcp://127.0.0.1", "port", "has no port"),
        ("tcp://127.0.0.1:0", "port", "has no port"),
        ("tcp://127.0.0.1:port", "port", "port 'port' is not a number"),
        ("tcp://127.0.0.1:70000", "port", "port '70000' is not a number"),
        ("tcp://127.0.0.1:4059/x", "path", "has no path"),
        ("tcp://127.0.0.1:4059?baud=9600", "query", "baud applies to serial"),
        ("tcp://127.0.0.1:4059#x", "fragment", "'#'"),
        ("serial://dev/ttyUSB0", "path", "three slashes"),
        ("serial://", "path", "names no device"),
        ("serial:///dev/ttyUSB0?speed=9600", "query", "unknown parameter 'speed'"),
        ("serial:///dev/ttyUSB0?baud=fast", "baud", "baud 'fast'"),
        ("optical:///dev/ttyUSB0?baud=0", "baud", "baud '0'"),
    ],
)
def test_bad_urls_name_the_part(url: str, part: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        smmc_gateway.connect(url)
    assert err.value.part == part
    assert says in str(err.value)
    assert repr(url) in str(err.value) or part == "scheme"


def test_every_link_kind_has_a_scheme() -> None:
    assert set(SCHEMES.values()) == set(get_args(Kind))


def test_url_kinds_build_their_transports() -> None:
    meter = smmc_gateway.connect("tcp://127.0.0.1:4059", logical_device=3)
    assert isinstance(meter.session.transport, WrapperTransport)
    assert meter.session.transport.logical_device == 3
    assert meter.session.settings.client_sap == 16  # public client without security
    meter = smmc_gateway.connect(
        "hdlc+tcp://127.0.0.1:4059", server=17, auth="lls", password="secret12"
    )
    assert isinstance(meter.session.transport, HdlcTransport)
    assert meter.session.settings.client_sap == 1  # management client with security
    assert repr(meter) == "Meter('hdlc+tcp://127.0.0.1:4059')"
    assert smmc_gateway.connect("tcp://h:1", quirks=()).session.settings.quirks == frozenset()
    default = smmc_gateway.connect("tcp://h:1").session.settings.quirks
    assert default == SessionSettings().quirks  # the session's default tolerance


# ------------------------------------------------------------------ refused before connecting
@pytest.mark.parametrize(
    ("kwargs", "part", "says"),
    [
        ({"auth": "hls-gmac", "ak": KEY}, "ek", "global unicast encryption key"),
        ({"auth": "hls-gmac", "ek": KEY}, "ak", "authentication key"),
        ({"auth": "hls-gmac", "ek": KEY[:8], "ak": KEY}, "ek", "8 bytes, expected 16"),
        ({"auth": "hls-gmac", "ek": "zz" * 16, "ak": KEY}, "ek", "not hex"),
        (
            {"auth": "hls-gmac", "ek": KEY, "ak": KEY, "system_title": b"ABC"},
            "system_title",
            "3 bytes",
        ),
        (
            {"auth": "hls-gmac", "ek": KEY, "ak": KEY, "system_title": b"ABCDEFGH"},
            "ic_store",
            "repeat AES-GCM nonces",
        ),
        ({"auth": "lls"}, "password", "needs a password"),
        ({"auth": "none", "password": "x"}, "password", "for auth='lls'"),
        ({"auth": "lls", "password": "x", "ek": KEY}, "ek", "for auth='hls-gmac'"),
        ({"auth": "hls"}, "auth", "expected 'none', 'lls' or 'hls-gmac'"),
        ({"client": 300}, "client", "expected 0..127"),
        ({"server": 17}, "server", "no meaning for tcp://"),
        ({"timeout": 0}, "timeout", "seconds > 0"),
        ({"referencing": "xx"}, "referencing", "expected 'ln', 'sn' or 'auto'"),
        ({"quirks": ["no-such-quirk"]}, "quirks", "['no-such-quirk'] unknown"),
        ({"quirks": "trailing-bytes"}, "quirks", "a list of names"),
    ],
)
def test_bad_settings_are_refused_before_connecting(
    kwargs: dict[str, Any], part: str, says: str, tmp_path: Path
) -> None:
    (port,) = free_ports(1)  # nothing listens there: a refusal here is not a connect error
    with pytest.raises(ConfigurationError) as err:
        smmc_gateway.connect(f"tcp://127.0.0.1:{port}", **kwargs)
    assert err.value.part == part
    assert says in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_key_writes_no_store_and_no_title(tmp_path: Path) -> None:
    store = tmp_path / "counters.sqlite"
    with pytest.raises(ConfigurationError, match="ak"):
        smmc_gateway.connect("tcp://127.0.0.1:4059", auth="hls-gmac", ek=KEY, ic_store=store)
    assert not store.exists() and not title_path(store).exists()


async def test_nothing_listening_is_a_transport_error() -> None:
    (port,) = free_ports(1)
    with pytest.raises(TransportError):
        async with smmc_gateway.connect(f"tcp://127.0.0.1:{port}", timeout=1):
            pass


# ------------------------------------------------------------------ against the simulator
def credentials(auth: str, info: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    if auth == "lls":
        return {"auth": "lls", "password": PASSWORD}
    if auth == "hls-gmac":
        return {
            "auth": "hls-gmac",
            "ek": info["ek"],
            "ak": info["ak"],
            "ic_store": tmp_path / "counters.sqlite",
        }
    return {"auth": "none", "client": 1}


@pytest.mark.parametrize("framing", ["tcp", "hdlc+tcp"])
@pytest.mark.parametrize("auth", ["none", "lls", "hls-gmac"])
async def test_read_write_and_act_at_every_level(auth: str, framing: str, tmp_path: Path) -> None:
    spec = FleetSpec(auth=auth, password=PASSWORD, history_days=1)
    async with running_fleet(spec, hdlc=framing == "hdlc+tcp") as sim:
        url = f"{framing}://127.0.0.1:{sim.ports[0]}"
        async with smmc_gateway.connect(url, **credentials(auth, sim.info[0], tmp_path)) as m:
            assert m.session.ciphered == (auth == "hls-gmac")
            energy = await m.get("3/1.0.1.8.0.255/2")
            assert isinstance(energy, int) and energy > 0
            assert await m.get(ENERGY.scaler_unit) == (0, 30)  # the simulator's Wh
            assert await m.get(ENERGY.value, scaled=True) >= float(energy)
            serial = await m.get("1/0.0.96.1.0.255/2")
            assert serial == sim.info[0]["serial"].encode()
            dc = DisconnectControl()
            await m.action(dc.remote_disconnect)
            assert await m.get(dc.output_state) is False
            await m.set(dc.control_mode, 4)
            assert await m.get_typed(dc.control_mode) == {"type": "enum", "value": 4}
            await m.action("70/0.0.96.3.10.255/2")
            assert await m.get(dc.output_state) is True


async def test_get_many_profile_clock_and_object_list(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=1), hdlc=False) as sim:
        info = sim.info[0]
        url = f"tcp://127.0.0.1:{sim.ports[0]}"
        async with smmc_gateway.connect(url, **credentials("hls-gmac", info, tmp_path)) as m:
            assert m.session.with_list
            dc = DisconnectControl()
            assert await m.get_many([dc.output_state, (70, "0.0.96.3.10.255", 4)]) == [True, 5]
            missing = r"3/1\.0\.99\.99\.0\.255/2: object-undefined"
            with pytest.raises(DataAccessError, match=missing):
                await m.get_many([dc.output_state, "3/1.0.99.99.0.255/2"])
            mixed = await m.get_many([dc.output_state, "3/1.0.99.99.0.255/2"], return_errors=True)
            assert mixed[0] is True and isinstance(mixed[1], DataAccessError)

            now = await m.clock()
            assert now.tzinfo is not None
            assert abs(now - sim.fleet.meters[0].meter.meter_time(datetime.now(UTC))) < timedelta(
                seconds=5
            )
            rows = await m.profile(LOAD_PROFILE.obis, start=now - timedelta(hours=3), end=now)
            assert 10 <= len(rows) <= 13  # quarter hours
            stamps = [r[0] for r in rows]
            assert all(isinstance(t, datetime) for t in stamps) and stamps == sorted(stamps)
            assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(stamps))
            pairs = await m.profile(
                LOAD_PROFILE.obis,
                start=now - timedelta(hours=3),
                end=now,
                columns=[Clock().time, ENERGY.value],
            )
            assert [p[0] for p in pairs] == stamps
            assert all(isinstance(p[1], int) for p in pairs) and len(pairs[0]) == 2
            assert len(await m.profile(LOAD_PROFILE)) > len(rows)  # the whole buffer

            demand = DemandRegister("1.0.1.4.0.255")
            raw, (scaler, _unit) = await m.get_many([demand.last_average_value, demand.scaler_unit])
            assert await m.get(demand.last_average_value, scaled=True) == raw * 10.0**scaler

            model = await m.object_list()
            assert model.get(ENERGY.obis) is not None and model.of_class(70)

            # writes: typed by the Blue Book, by the current value, or given
            await m.set(Clock().time, now + timedelta(minutes=5))
            assert await m.clock() - now >= timedelta(minutes=4)
            await m.set(LOAD_PROFILE.capture_period, 900)  # type fixed: double-long-unsigned
            await m.set(dc.control_mode, {"type": "enum", "value": 5})
            assert await m.get(dc.control_mode) == 5


async def test_errors_from_the_meter_and_from_values(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0), hdlc=False) as sim:
        info = sim.info[0]
        url = f"tcp://127.0.0.1:{sim.ports[0]}"
        async with smmc_gateway.connect(url, **credentials("hls-gmac", info, tmp_path)) as m:
            with pytest.raises(DataAccessError) as err:
                await m.get("3/1.0.99.99.0.255/2")
            assert err.value.result == "object-undefined"
            with pytest.raises(ValueTypeError, match="enum needs an int"):
                await m.set(DisconnectControl().control_mode, "four")
            with pytest.raises(ValueTypeError, match=r"enum value 300 outside 0\.\.255"):
                await m.set(DisconnectControl().control_mode, 300)
            with pytest.raises(ValueTypeError, match="needs a long-unsigned parameter"):
                await m.action("9/0.0.10.0.100.255/1")
            with pytest.raises(ReferenceError_, match="is a method; use action"):
                await m.get(DisconnectControl().remote_disconnect)  # type: ignore[arg-type]
            with pytest.raises(ReferenceError_, match="scaled=True applies to"):
                await m.get(DisconnectControl().output_state, scaled=True)
            with pytest.raises(ValueError, match="both start and end"):
                await m.profile(LOAD_PROFILE.obis, start=datetime.now(UTC))
            with pytest.raises(ValueError, match="aware datetime"):
                await m.profile(
                    LOAD_PROFILE.obis, start=datetime(2026, 1, 1), end=datetime(2026, 1, 2)
                )
            assert await m.get(DisconnectControl().output_state) is True  # still associated


async def test_wrong_keys_and_wrong_password_are_typed_errors(tmp_path: Path) -> None:
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0), hdlc=False) as sim:
        url = f"tcp://127.0.0.1:{sim.ports[0]}"
        meter = smmc_gateway.connect(url, auth="hls-gmac", ek=KEY, ak=KEY, timeout=2)
        with pytest.raises((SecurityFailure, AssociationRefused)):
            async with meter:
                pass
    async with running_fleet(
        FleetSpec(auth="lls", password=PASSWORD, history_days=0), hdlc=False
    ) as sim:
        url = f"tcp://127.0.0.1:{sim.ports[0]}"
        with pytest.raises(AssociationRefused) as err:
            async with smmc_gateway.connect(url, auth="lls", password="wrong-pw"):
                pass
        assert "authentication" in err.value.diagnostic


async def test_the_counter_store_and_title_persist_across_connections(tmp_path: Path) -> None:
    store = tmp_path / "state" / "counters.sqlite"
    async with running_fleet(FleetSpec(auth="hls-gmac", history_days=0), hdlc=False) as sim:
        info = sim.info[0]
        url = f"tcp://127.0.0.1:{sim.ports[0]}"
        kw = {"auth": "hls-gmac", "ek": info["ek"], "ak": info["ak"], "ic_store": store}
        meter = await smmc_gateway.connect(url, **kw)  # await opens, as async with does
        try:
            await meter.get(Clock().time)
        finally:
            await meter.close()
        title = bytes.fromhex(title_path(store).read_text().strip())
        assert len(title) == 8 and title.startswith(b"SMC")
        scope = key_scope(bytes.fromhex(info["ek"]), bytes.fromhex(info["ak"]))
        counters = InvocationCounterStore(store)
        try:  # the meter's counter was recorded under the key set's scope
            assert [t for t, _ in counters.known_incoming(scope)] == [
                bytes.fromhex(info["system_title"])
            ]
        finally:
            counters.close()
        async with smmc_gateway.connect(url, **kw) as m:
            assert m.session.settings.security.system_title == title
            assert m.session.settings.security.ic_scope == scope
            await m.get(Clock().time)
        # without a store: a fresh title each time (counters restart at 1)
        titles = {
            smmc_gateway.connect(
                url, auth="hls-gmac", ek=KEY, ak=KEY
            ).session.settings.security.system_title
            for _ in range(3)
        }
        assert len(titles) == 3


# ------------------------------------------------------------------ values
@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ({"type": "null-data", "value": None}, None),
        ({"type": "boolean", "value": True}, True),
        ({"type": "long", "value": -5}, -5),
        ({"type": "enum", "value": 3}, 3),
        ({"type": "float32", "value": 1.5}, 1.5),
        ({"type": "visible-string", "value": "abc"}, "abc"),
        ({"type": "octet-string", "value": "534d4d43"}, b"SMMC"),
        ({"type": "bit-string", "value": "a0", "bits": 3}, "101"),
        ({"type": "bit-string", "value": "", "bits": 0}, ""),
        (
            {
                "type": "structure",
                "value": [{"type": "unsigned", "value": 1}, {"type": "boolean", "value": False}],
            },
            (1, False),
        ),
        (
            {
                "type": "array",
                "value": [
                    {"type": "long-unsigned", "value": 1},
                    {"type": "long-unsigned", "value": 2},
                ],
            },
            [1, 2],
        ),
    ],
)
def test_values_both_ways(typed: dict[str, Any], plain: Any) -> None:
    assert to_python(typed) == plain
    back = from_python(plain, template=typed)
    assert _core.encode(back) == _core.encode(typed)


def test_date_times_become_datetimes() -> None:
    chile = timezone(timedelta(hours=-3))
    when = datetime(2026, 12, 1, 0, 15, tzinfo=chile)
    raw = _core.encode_datetime(when)
    assert to_python({"type": "octet-string", "value": raw.hex()}) == when
    assert from_python(when, type_name="date-time") == {"type": "octet-string", "value": raw.hex()}
    wildcard = "ffffffffffffffffff800000"  # not a complete date-time: stays bytes
    assert to_python({"type": "octet-string", "value": wildcard}) == bytes.fromhex(wildcard)
    assert to_python({"type": "octet-string", "value": "53" * 12}) == b"S" * 12


def test_plain_values_that_cannot_be_typed_are_refused() -> None:
    with pytest.raises(ValueTypeError, match="int 5 has no single A-XDR type"):
        from_python(5)
    with pytest.raises(ValueTypeError, match="structure of 2 elements, got 1"):
        from_python(
            [1],
            template={
                "type": "structure",
                "value": [{"type": "unsigned", "value": 1}, {"type": "unsigned", "value": 2}],
            },
        )
    with pytest.raises(ValueTypeError, match="array is empty"):
        from_python([1], template={"type": "array", "value": []})
    with pytest.raises(ValueTypeError, match="boolean needs True or False"):
        from_python(1, type_name="boolean")
    with pytest.raises(ValueTypeError, match="octet-string needs bytes"):
        from_python("text", type_name="octet-string")
    with pytest.raises(ValueTypeError, match="bit-string needs a str of 0 and 1"):
        from_python("102", type_name="bit-string")
    with pytest.raises(ValueTypeError, match="not a valid typed value"):
        from_python({"type": "long-unsigned", "value": -1})


# ------------------------------------------------------------------ top level
def test_top_level_decode_and_profile_buffer() -> None:
    assert smmc_gateway.decode(bytes.fromhex("1200e6")) == {"type": "long-unsigned", "value": 230}
    assert smmc_gateway.decode(bytearray(b"\x0f\x05")) == {"type": "integer", "value": 5}
    with pytest.raises(smmc_gateway.DlmsError, match="truncated"):
        smmc_gateway.decode(b"\x12\x00")
    chile = timezone(timedelta(hours=-3))
    stamp = _core.encode_datetime(datetime(2026, 12, 1, 0, 15, tzinfo=chile))
    # two rows (clock, energy); the second's clock is null-data (one period later)
    buf = bytes.fromhex("01020202090c") + stamp + bytes.fromhex("06000000640202000600000070")
    rows = smmc_gateway.decode_profile_buffer(buf, capture_period=900)
    assert rows == [
        (datetime(2026, 12, 1, 0, 15, tzinfo=chile), 100),
        (datetime(2026, 12, 1, 0, 30, tzinfo=chile), 112),
    ]
    with pytest.raises(smmc_gateway.DlmsError):
        smmc_gateway.decode_profile_buffer(buf)  # no period for the null clock


def test_top_level_names_are_lazy_and_cheap() -> None:
    code = (
        "import sys, smmc_gateway\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('smmc_gateway'))\n"
        "assert loaded == ['smmc_gateway', 'smmc_gateway._core'], loaded\n"
        "assert 'asyncio' not in sys.modules\n"
        "assert smmc_gateway.connect is smmc_gateway.api.connect\n"
        "assert smmc_gateway.DisconnectControl().remote_disconnect.method_id == 1\n"
        "assert issubclass(smmc_gateway.DataAccessError, smmc_gateway.SessionError)\n"
        "assert set(smmc_gateway.__all__) <= set(dir(smmc_gateway))\n"
        "try:\n    smmc_gateway.nothing\nexcept AttributeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'nothing'" in out.stdout


@pytest.mark.parametrize("scheme", ["serial", "optical"])
async def test_serial_and_optical_urls_reach_a_meter_on_a_pty(scheme: str) -> None:
    spec = FleetSpec(auth="lls", password=PASSWORD, history_days=0, baud=9600)
    async with running_serial_fleet(spec, optical=scheme == "optical") as sim:
        query = "?baud=9600" if scheme == "serial" else ""
        url = f"{scheme}://{sim.device}{query}"
        server = sim.info[0]["hdlc_address"]
        async with smmc_gateway.connect(url, server=server, auth="lls", password=PASSWORD) as m:
            assert await m.get("1/0.0.96.1.0.255/2") == sim.info[0]["serial"].encode()
