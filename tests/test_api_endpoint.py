"""The shared session builder (dlms/endpoint.py): endpoint kinds to transports, credentials
to Security with errors naming the missing part, and the system title / counter scope a
client keeps beside its counter store (the same files and scope as the CLI's, so the API
and the CLI sharing a store never repeat a (title, counter) nonce under one key)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from smmc_gateway.cli import meter_session
from smmc_gateway.dlms.endpoint import (
    Addressing,
    ConfigurationError,
    Endpoint,
    build_security,
    build_transport,
    fresh_title,
    installation_title,
    key_scope,
    title_path,
)
from smmc_gateway.dlms.hdlc_transport import HdlcTransport
from smmc_gateway.dlms.mode_e_tcp import ModeETcpTransport
from smmc_gateway.dlms.optical_port import OpticalTransport
from smmc_gateway.dlms.serial import SerialHdlcTransport
from smmc_gateway.dlms.transport import WrapperTransport

KEY = bytes(range(16))


def test_each_kind_builds_its_transport() -> None:
    addressing = Addressing(client=1, logical_device=2, physical=17)
    wrapper = build_transport(Endpoint("wrapper", host="h", port=4059), addressing)
    assert isinstance(wrapper, WrapperTransport)
    assert (wrapper.client_sap, wrapper.logical_device) == (1, 2)
    hdlc = build_transport(Endpoint("hdlc", host="h", port=4059), addressing)
    assert type(hdlc) is HdlcTransport
    mode_e = build_transport(Endpoint("mode-e", host="h", port=4059, baud=9600), addressing)
    assert isinstance(mode_e, ModeETcpTransport)
    serial = build_transport(Endpoint("serial", device="/dev/null", baud=2400), addressing)
    assert isinstance(serial, SerialHdlcTransport)
    optical = build_transport(Endpoint("optical", device="/dev/null"), addressing)
    assert isinstance(optical, OpticalTransport)
    with pytest.raises(ConfigurationError, match="baud 1234") as err:
        build_transport(Endpoint("mode-e", host="h", port=1, baud=1234), addressing)
    assert err.value.part == "baud"


@pytest.mark.parametrize(
    ("kwargs", "part"),
    [
        ({"kind": "udp"}, "kind"),
        ({"kind": "wrapper", "port": 4059}, "host"),
        ({"kind": "hdlc", "host": "h", "port": 0}, "port"),
        ({"kind": "serial"}, "device"),
        ({"kind": "optical", "device": "/dev/x", "baud": -1}, "baud"),
    ],
)
def test_bad_endpoints_name_the_part(kwargs: dict[str, object], part: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Endpoint(**kwargs)  # type: ignore[arg-type]
    assert err.value.part == part


def test_describe_says_where_without_secrets() -> None:
    assert Endpoint("wrapper", host="::1", port=4059).describe() == "tcp [::1]:4059 (wrapper)"
    assert Endpoint("serial", device="/dev/ttyS0").describe() == "serial /dev/ttyS0 at 9600 baud"
    assert "mode E" in Endpoint("mode-e", host="h", port=1).describe()


@pytest.mark.parametrize(
    ("level", "kwargs", "part"),
    [
        ("lls", {}, "password"),
        ("hls-gmac", {"ak": KEY, "system_title": b"ABCDEFGH"}, "ek"),
        ("hls-gmac", {"ek": KEY, "system_title": b"ABCDEFGH"}, "ak"),
        ("hls-gmac", {"ek": KEY, "ak": KEY[:15], "system_title": b"ABCDEFGH"}, "ak"),
        ("hls-gmac", {"ek": KEY, "ak": KEY}, "system_title"),
        ("hls-gmac", {"ek": KEY, "ak": KEY, "system_title": b"ABC"}, "system_title"),
        ("hls", {}, "auth"),
    ],
)
def test_security_errors_name_the_part(level: str, kwargs: dict[str, bytes], part: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        build_security(level, **kwargs)
    assert err.value.part == part


def test_security_levels() -> None:
    assert build_security("none").level == "none"
    assert build_security("lls", password=b"secret").password == b"secret"
    hls = build_security("hls-gmac", ek=KEY, ak=KEY, system_title=b"ABCDEFGH", ic_scope="s")
    assert (hls.level, hls.ciphered, hls.ic_scope) == ("hls-gmac", True, "s")


def test_the_title_is_made_once_private_and_shared_with_the_cli(tmp_path: Path) -> None:
    store = tmp_path / "state" / "counters.sqlite"
    title = installation_title(store)
    path = title_path(store)
    assert path == tmp_path / "state" / "counters.sqlite.system-title"
    assert len(title) == 8 and title.startswith(b"SMC")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert installation_title(store) == title  # reused, never replaced
    assert meter_session.installation_title(store) == title  # the CLI reads the same file
    other = tmp_path / "other.sqlite"
    assert meter_session.installation_title(other) == installation_title(other) != title
    assert fresh_title() != fresh_title() and len(fresh_title()) == 8


@pytest.mark.parametrize(("text", "says"), [("zz\n", "not hex"), ("0102\n", "2 bytes")])
def test_a_damaged_title_file_is_refused(tmp_path: Path, text: str, says: str) -> None:
    store = tmp_path / "counters.sqlite"
    title_path(store).write_text(text)
    with pytest.raises(ConfigurationError, match=says) as err:
        installation_title(store)
    assert err.value.part == "system_title"


def test_the_counter_scope_is_the_clis() -> None:
    # the CLI's stores hold counters under this name: a change would restart them at 1
    expected = "cli-" + hashlib.sha256(b"smmc-ic-scope" + KEY + KEY[::-1]).hexdigest()[:16]
    assert key_scope(KEY, KEY[::-1]) == expected
    assert key_scope(KEY, KEY) != key_scope(KEY, KEY[::-1])
