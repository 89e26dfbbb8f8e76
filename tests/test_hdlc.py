"""HDLC (IEC 62056-46) through the Python API: CRC, codec, framer and link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core

from tests.link_tuples import next_tuple, parameters

VECTORS = Path(__file__).parent / "vectors" / "hdlc"


def _rows(name: str) -> list[list[str]]:
    lines = (VECTORS / name).read_text().splitlines()
    return [
        [f.strip() for f in ln.split("|")] for ln in lines if ln.strip() and not ln.startswith("#")
    ]


def _addr(s: str) -> tuple[int, int | None]:
    upper, _, lower = s.partition("/")
    return int(upper), (int(lower) if lower else None)


def test_crc_check_value() -> None:
    assert _core.crc16_x25(b"123456789") == 0x906E
    assert _core.crc16_x25(b"") == 0
    assert _core.crc16_x25(bytes(range(256)) * 1000) == _crc_reference(bytes(range(256)) * 1000)


def _crc_reference(data: bytes) -> int:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


@pytest.mark.parametrize("row", _rows("frames.txt"), ids=lambda r: r[0])
def test_published_frames(row: list[str]) -> None:
    name, kind, dest, src, control, seg, info, wire_hex = row
    wire = bytes.fromhex(wire_hex)
    f = _core.hdlc_decode(wire)
    assert f.kind == kind
    assert (f.dest_upper, f.dest_lower) == _addr(dest)
    assert (f.src_upper, f.src_lower) == _addr(src)
    assert f.control == int(control, 16)
    assert f.segmented is (seg == "1")
    assert f.info == (b"" if info == "-" else bytes.fromhex(info))
    assert f.length == len(wire)
    assert _core.hdlc_decode(wire[1:-1]).control == f.control  # flags are optional
    again = _core.hdlc_encode(
        f.kind,
        dest_upper=f.dest_upper,
        dest_lower=f.dest_lower,
        src_upper=f.src_upper,
        src_lower=f.src_lower,
        send_seq=f.send_seq or 0,
        recv_seq=f.recv_seq or 0,
        poll_final=f.poll_final,
        segmented=f.segmented,
        info=f.info,
    )
    assert again == wire, name


@pytest.mark.parametrize("row", _rows("bad_frames.txt"), ids=lambda r: r[0])
def test_published_bad_frames(row: list[str]) -> None:
    _name, field, offset, wire_hex = row
    with pytest.raises(_core.HdlcError) as exc:
        _core.hdlc_decode(bytes.fromhex(wire_hex))
    assert exc.value.layer == "HDLC"
    assert exc.value.field == field
    assert exc.value.offset == int(offset)
    assert field in str(exc.value)


@pytest.mark.parametrize(
    ("kind", "control"),
    [("I", 0x10), ("RR", 0x11), ("RNR", 0x15), ("SNRM", 0x93), ("DISC", 0x53),
     ("UA", 0x73), ("DM", 0x1F), ("FRMR", 0x97), ("UI", 0x13)],
)  # fmt: skip
@pytest.mark.parametrize("size", [1, 2, 4])
def test_every_control_frame_and_address_size(kind: str, control: int, size: int) -> None:
    lower = None if size == 1 else 0x11
    wire = _core.hdlc_encode(
        kind, dest_upper=1, dest_lower=lower, src_upper=0x10, address_size=size if lower else None
    )
    assert len(wire) == 2 + 2 + size + 1 + 1 + 2
    f = _core.hdlc_decode(wire)
    assert (f.kind, f.control, f.poll_final, f.dest_upper, f.dest_lower) == (
        kind,
        control,
        True,
        1,
        lower,
    )


def test_sequence_numbers_and_segmentation() -> None:
    wire = _core.hdlc_encode(
        "I",
        dest_upper=1,
        src_upper=16,
        send_seq=5,
        recv_seq=3,
        poll_final=False,
        segmented=True,
        info=b"\x7e" * 9,
    )
    f = _core.hdlc_decode(wire)
    assert (f.send_seq, f.recv_seq, f.poll_final, f.segmented, f.info) == (
        5,
        3,
        False,
        True,
        b"\x7e" * 9,
    )
    assert (
        _core.hdlc_decode(_core.hdlc_encode("RR", dest_upper=1, src_upper=16, recv_seq=6)).recv_seq
        == 6
    )


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown frame kind"):
        _core.hdlc_encode("XX", dest_upper=1, src_upper=16)
    with pytest.raises(_core.HdlcError, match="address"):
        _core.hdlc_encode("SNRM", dest_upper=0x80, src_upper=16)
    with pytest.raises(_core.HdlcError, match="length"):
        _core.hdlc_encode("I", dest_upper=1, src_upper=16, info=bytes(2100))


def _frames(n: int) -> list[bytes]:
    return [
        _core.hdlc_encode(
            "I",
            dest_upper=16,
            src_upper=1,
            src_lower=17,
            send_seq=i % 8,
            info=bytes([0x7E, i, 0xA0]),
        )
        for i in range(n)
    ]


def test_framer_shared_flags_garbage_and_bad_fcs() -> None:
    frames = _frames(5)
    bad = bytearray(frames[1])
    bad[-4] ^= 0x01
    stream = b"\x00\x13" + frames[0] + bytes(bad) + b"\xff" + frames[2] + frames[3][1:] + frames[4]
    fr = _core.HdlcFramer()
    got = []
    for i in range(0, len(stream), 3):
        fr.feed(stream[i : i + 3])
        got.extend(fr.drain())
    assert [f.info for f in got] == [bytes([0x7E, i, 0xA0]) for i in (0, 2, 3, 4)]
    errors = fr.errors()
    assert any("garbage at stream offset 0" in e for e in errors)
    assert any("FCS" in e for e in errors)
    assert fr.errors() == []
    assert fr.discarded_bytes == 2 + len(bad) + 1
    assert fr.next_frame() is None


def test_framer_skips_oversize_frames() -> None:
    fr = _core.HdlcFramer(max_frame=32)
    fr.feed(_core.hdlc_encode("UI", dest_upper=16, src_upper=1, info=bytes(100)) + _frames(1)[0])
    got = fr.drain()
    assert len(got) == 1 and got[0].kind == "I"
    assert fr.discarded_bytes > 100


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    fr = _core.HdlcFramer(max_frame=256)
    fr.feed(data)
    for f in fr.drain():
        assert f.kind in {"I", "RR", "RNR", "SNRM", "DISC", "UA", "DM", "FRMR", "UI"}
    fr.errors()
    try:
        _core.hdlc_decode(data)
    except _core.HdlcError as e:
        assert e.layer == "HDLC"


# ---------------------------------------------------------------- link


class Pair:
    """A client and a server link wired together with a fake clock."""

    def __init__(self, lose: set[tuple[str, int]] | None = None, **kw: Any) -> None:
        self.c = _core.HdlcLink("client", client_address=16, server_upper=1, server_lower=17, **kw)
        self.s = _core.HdlcLink("server", client_address=16, server_upper=1, server_lower=17, **kw)
        self.now = 0.0
        self.lose = lose or set()
        self.count = {"c": 0, "s": 0}
        self.cev: list[tuple[str, Any]] = []
        self.sev: list[tuple[str, Any]] = []

    def _move(self, side: str) -> bool:
        src, dst = (self.c, self.s) if side == "c" else (self.s, self.c)
        data = src.data_to_send()
        if not data:
            return False
        fr = _core.HdlcFramer()
        fr.feed(data)
        for f in fr.drain():
            n = self.count[side]
            self.count[side] += 1
            if (side, n) in self.lose:
                continue
            wire = _core.hdlc_encode(
                f.kind, dest_upper=f.dest_upper, dest_lower=f.dest_lower, src_upper=f.src_upper,
                src_lower=f.src_lower, send_seq=f.send_seq or 0, recv_seq=f.recv_seq or 0,
                poll_final=f.poll_final, segmented=f.segmented, info=f.info,
            )  # fmt: skip
            self.now += 0.01
            dst.receive_data(wire, self.now)
        return True

    def run(self, echo: bool = False) -> None:
        for _ in range(10_000):
            moved = self._move("c") | self._move("s")
            while (e := next_tuple(self.c)) is not None:
                self.cev.append(e)
            while (e := next_tuple(self.s)) is not None:
                self.sev.append(e)
                if echo and e[0] == "apdu":
                    self.s.send_apdu(e[1][::-1], self.now)
            if not moved:
                deadline = self.c.next_deadline()
                if deadline is None:
                    return
                self.now = deadline
                self.c.handle_timeout(deadline)
        raise AssertionError("link did not settle")


def test_connect_negotiates_minimum() -> None:
    p = Pair()
    p.c = _core.HdlcLink(
        "client", client_address=16, server_upper=1, server_lower=17, max_info_tx=512, window_rx=7
    )
    p.s = _core.HdlcLink(
        "server", client_address=16, server_upper=1, server_lower=17, max_info_rx=256, window_tx=3
    )
    assert p.c.state == "disconnected"
    p.c.connect(0.0)
    assert p.c.state == "connecting"
    p.run()
    expected_c = {"max_info_tx": 256, "max_info_rx": 128, "window_tx": 1, "window_rx": 3}
    assert p.cev == [("connected", expected_c)]
    assert parameters(p.c.parameters) == expected_c
    assert parameters(p.s.parameters) == {
        "max_info_tx": 128,
        "max_info_rx": 256,
        "window_tx": 3,
        "window_rx": 1,
    }
    assert p.c.state == p.s.state == "connected"


@pytest.mark.parametrize("window", [1, 7])
@pytest.mark.parametrize("lose", [set(), {("c", 4), ("s", 3), ("c", 12)}])
def test_five_kib_apdu_exchange(window: int, lose: set[tuple[str, int]]) -> None:
    p = Pair(lose, max_info_tx=64, max_info_rx=64, window_tx=window, window_rx=window)
    p.c.connect(p.now)
    p.run()
    apdu = bytes(i * 7 % 256 for i in range(5 * 1024))
    p.c.send_apdu(apdu, p.now)
    p.run(echo=True)
    assert [e for e in p.sev if e[0] == "apdu"] == [("apdu", apdu)]
    assert [e for e in p.cev if e[0] == "apdu"] == [("apdu", apdu[::-1])]
    assert any(e[0] == "retransmit" for e in p.cev) == bool(lose)
    p.c.disconnect(p.now)
    p.run()
    assert p.cev[-1] == ("disconnected", None)
    assert p.sev[-1] == ("disconnected", None)
    assert p.c.state == p.s.state == "disconnected"


def test_duplicate_i_frame_not_delivered_twice() -> None:
    p = Pair({("s", 1)})
    p.c.connect(p.now)
    p.run()
    p.c.send_apdu(b"\xc0\x01\xc1", p.now)
    p.run(echo=True)
    assert [e for e in p.sev if e[0] == "apdu"] == [("apdu", b"\xc0\x01\xc1")]
    assert [e for e in p.cev if e[0] == "apdu"] == [("apdu", b"\xc1\x01\xc0")]
    assert ("retransmit", 1) in p.cev


def test_silent_peer_link_lost() -> None:
    c = _core.HdlcLink("client", client_address=16, response_timeout=2.0, max_retries=2)
    c.connect(10.0)
    assert _core.hdlc_decode(c.data_to_send()).kind == "SNRM"
    events = []
    while (d := c.next_deadline()) is not None:
        c.handle_timeout(d)
        while (e := next_tuple(c)) is not None:
            events.append(e)
    assert events[:2] == [("retransmit", 1), ("retransmit", 2)]
    assert events[2][0] == "link_lost"
    assert c.state == "disconnected"


def test_snrm_bytes_and_server_checks_address() -> None:
    c = _core.HdlcLink("client", client_address=16, server_upper=1)
    c.connect(0.0)
    snrm = _core.hdlc_decode(c.data_to_send())
    assert (snrm.kind, snrm.dest_upper, snrm.src_upper, snrm.poll_final) == ("SNRM", 1, 16, True)
    assert snrm.info == bytes.fromhex("818012050180060180070400000001080400000001")
    s = _core.HdlcLink("server", client_address=16, server_upper=1, server_lower=17)
    s.receive_data(_core.hdlc_encode("SNRM", dest_upper=1, dest_lower=18, src_upper=16), 0.0)
    ev = next_tuple(s)
    assert ev is not None and ev[0] == "frame_error"
    assert s.data_to_send() == b""
    # The classic SNRM names server upper 1 alone: the lower address is not checked.
    s.receive_data(bytes.fromhex("7EA0070321930F017E"), 0.0)
    assert next_tuple(s) == (
        "connected",
        {"max_info_tx": 128, "max_info_rx": 128, "window_tx": 1, "window_rx": 1},
    )
    ua = _core.hdlc_decode(s.data_to_send())
    assert (ua.kind, ua.dest_upper, ua.src_upper, ua.src_lower) == ("UA", 16, 1, 17)


def test_refused_ui_and_errors() -> None:
    c = _core.HdlcLink("client", client_address=16)
    with pytest.raises(_core.HdlcError, match="connected"):
        c.send_apdu(b"x", 0.0)
    c.connect(0.0)
    c.data_to_send()
    c.receive_data(
        _core.hdlc_encode("UI", dest_upper=16, src_upper=1, info=b"\xe6\xe7\x00\x0f"), 0.1
    )
    c.receive_data(_core.hdlc_encode("DM", dest_upper=16, src_upper=1), 0.2)
    assert next_tuple(c) == ("ui", b"\x0f")
    ev = next_tuple(c)
    assert ev is not None and ev[0] == "refused"
    assert c.state == "disconnected"
    s = _core.HdlcLink("server", client_address=16)
    with pytest.raises(_core.HdlcError):
        s.connect(0.0)
    with pytest.raises(ValueError):
        _core.HdlcLink("peer", client_address=16)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _core.HdlcLink("client", client_address=16, window_tx=8)


def test_inactivity_timeout() -> None:
    p = Pair(inactivity_timeout=60.0)
    p.c.connect(0.0)
    p.now = 1.0
    assert p._move("c") and p._move("s")
    assert p.c.state == p.s.state == "connected"
    assert p.c.next_deadline() == pytest.approx(61.02)
    assert next_tuple(p.s) is not None  # ("connected", ...)
    p.s.handle_timeout(60.0)
    assert p.s.state == "connected"
    p.s.handle_timeout(p.now + 61.0)
    assert next_tuple(p.s) == ("link_lost", "inactivity timeout (60 s)")
    assert p.s.state == "disconnected"


def test_published_push_stream_with_double_flags() -> None:
    rows = {r[0]: bytes.fromhex(r[7]) for r in _rows("frames.txt")}
    stream = rows["lg-e450-ui-block-1"] + rows["lg-e450-ui-block-2"]  # 7E 7E between them
    fr = _core.HdlcFramer()
    for i in range(0, len(stream), 50):
        fr.feed(stream[i : i + 50])
    frames = fr.drain()
    assert [f.kind for f in frames] == ["UI", "UI"]
    assert frames[0].info[:4] == bytes.fromhex("E6E700E0")  # LLC, then general-block-transfer
    assert frames[1].info[:1] == b"\xe0"
    assert fr.errors() == []
    assert fr.discarded_bytes == 0


def test_ui_from_server_to_client() -> None:
    p = Pair()
    p.s.send_ui(b"\x0f\x00\x00\x00\x01")
    with pytest.raises(_core.HdlcError, match="information field"):
        p.s.send_ui(bytes(200))
    p.run()
    assert p.cev == [("ui", b"\x0f\x00\x00\x00\x01")]
    assert p.c.state == "disconnected"
