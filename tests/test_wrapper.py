"""The IEC 62056-47 wrapper through the Python API."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core

GET_CLOCK = bytes.fromhex("C001C100080000010000FF0200")


def test_encode_layout() -> None:
    w = _core.wrapper_encode(0x10, 0x01, GET_CLOCK)
    assert w == bytes.fromhex("0001 0010 0001 000D") + GET_CLOCK


def test_framer_splits_stream_in_any_chunking() -> None:
    stream = b"".join(
        _core.wrapper_encode(s, d, a)
        for s, d, a in [(1, 2, b"ab"), (3, 4, b""), (16, 1, GET_CLOCK)]
    )
    for size in (1, 3, 8, len(stream)):
        fr = _core.WrapperFramer()
        got = []
        for i in range(0, len(stream), size):
            fr.feed(stream[i : i + size])
            while (f := fr.next_frame()) is not None:
                got.append(f)
        assert got == [(1, 2, b"ab"), (3, 4, b""), (16, 1, GET_CLOCK)]


def test_bad_version_and_oversize_length() -> None:
    fr = _core.WrapperFramer()
    fr.feed(_core.wrapper_encode(1, 1, b"x") + bytes.fromhex("0002 0001 0001 0000"))
    assert fr.next_frame() == (1, 1, b"x")
    with pytest.raises(_core.WrapperError) as exc:
        fr.next_frame()
    assert (exc.value.layer, exc.value.field, exc.value.offset) == ("wrapper", "version", 9)
    assert fr.next_frame() is None  # buffered bytes were dropped
    small = _core.WrapperFramer(max_apdu=16)
    small.feed(_core.wrapper_encode(1, 1, bytes(17)))
    with pytest.raises(_core.WrapperError) as exc:
        small.next_frame()
    assert (exc.value.field, exc.value.offset) == ("length", 6)
    with pytest.raises(_core.WrapperError):
        _core.wrapper_encode(1, 1, bytes(70000))
    with pytest.raises(OverflowError):
        _core.wrapper_encode(70000, 1, b"")


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_round_trip(src: int, dst: int, apdu: bytes) -> None:
    fr = _core.WrapperFramer()
    fr.feed(_core.wrapper_encode(src, dst, apdu))
    assert fr.next_frame() == (src, dst, apdu)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_wrapper_error(data: bytes) -> None:
    fr = _core.WrapperFramer(max_apdu=32)
    fr.feed(data)
    try:
        while fr.next_frame() is not None:
            pass
    except _core.WrapperError:
        pass
