"""Frames that arrive in pieces or after garbage are framed the same (issue 10, item 8).

The real-meter recordings (tests/vectors/real) go through the product's HDLC link
(and its framer alone) and the wrapper framer split at every offset, in random pieces,
and behind garbage of the kinds a serial line produces: line noise, a partial frame
(a frame cut off when the reader started or the meter reset), runs of 0x7E flags.
The answer must be the same frames, in order, with nothing lost and nothing invented.
Over a pseudo-terminal at 2400 and 19200 baud, a client session reads the simulator
through a relay that cuts each of the meter's answers into pieces and puts garbage
before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import termios
import tty
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway import _core
from smmc_gateway.dlms.serial import SerialHdlcTransport
from smmc_gateway.dlms.session import ClientSession, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings
from smmc_gateway.simulator.fleet import SimulatedFleet
from smmc_gateway.simulator.serve import open_line, serve_serial

from tests.support_real import Recording, push_apdus, recordings, through_link
from tests.support_sim import FleetSpec, pty_pair

HDLC = recordings("hdlc")
CLEAN = [r for r in HDLC if not any("garbage" in k for k in r.data["kinds"])]


def framed(pieces: list[bytes]) -> list[tuple[str, bool, bytes]]:
    """What the standalone framer finds in ``pieces``."""
    framer = _core.HdlcFramer()
    out = []
    for piece in pieces:
        framer.feed(piece)
        out += [(f.kind, f.segmented, f.info) for f in framer.drain()]
    return out


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# ---------------------------------------------------------------- every offset
@pytest.mark.parametrize("rec", HDLC, ids=lambda r: r.name)
def test_hdlc_split_in_two_at_every_offset(rec: Recording) -> None:
    stream = rec.stream
    want_link = through_link([stream], recording=rec).payloads
    want_frames = framed([stream])
    assert want_link and want_frames
    for i in range(1, len(stream)):
        pieces = [stream[:i], stream[i:]]
        assert through_link(pieces, recording=rec).payloads == want_link, f"split at {i}"
        assert framed(pieces) == want_frames, f"split at {i}"


@pytest.mark.parametrize("rec", HDLC, ids=lambda r: r.name)
def test_hdlc_one_byte_at_a_time(rec: Recording) -> None:
    single = [bytes([b]) for b in rec.stream]
    assert (
        through_link(single, recording=rec).payloads
        == through_link([rec.stream], recording=rec).payloads
    )
    assert framed(single) == framed([rec.stream])


@settings(max_examples=150, deadline=None)
@given(rec=st.sampled_from(HDLC), points=st.lists(st.integers(0, 4096), max_size=24))
def test_hdlc_random_pieces(rec: Recording, points: list[int]) -> None:
    assert (
        through_link(cut(rec.stream, points), recording=rec).payloads
        == through_link([rec.stream], recording=rec).payloads
    )


# ---------------------------------------------------------------- behind garbage
def _partial_frame(rec: Recording, length: int) -> bytes:
    """The first ``length`` bytes of the recording's first frame, without its close."""
    end = rec.stream.index(b"\x7e", 1)
    return rec.stream[: max(2, min(length, end - 1))]


garbage = st.one_of(
    st.binary(max_size=96).map(lambda b: b.replace(b"\x7e", b"")),  # line noise
    st.binary(max_size=96),  # noise with flags in it
    st.integers(1, 40).map(lambda n: b"\x7e" * n),  # flag runs
    st.tuples(st.integers(0, 2), st.binary(max_size=8)).map(  # a header announcing a
        lambda t: b"\x7e" + bytes([0xA0 | t[0], 0xFF]) + t[1]
    ),  # long frame, cut off
)


@settings(max_examples=300, deadline=None)
@given(
    rec=st.sampled_from(CLEAN),
    noise=st.lists(garbage, min_size=1, max_size=3),
    partial=st.integers(0, 200),
    points=st.lists(st.integers(0, 4096), max_size=8),
)
def test_hdlc_behind_garbage_frames_the_same(
    rec: Recording, noise: list[bytes], partial: int, points: list[int]
) -> None:
    prefix = b"".join(noise)
    if partial:
        prefix += _partial_frame(rec, partial)
    want = through_link([rec.stream], recording=rec).payloads
    got = through_link(cut(prefix + rec.stream, points), recording=rec)
    assert got.payloads == want, f"prefix {prefix.hex()}"
    assert framed(cut(prefix + rec.stream, points))[-len(framed([rec.stream])) :] == framed(
        [rec.stream]
    )


@pytest.mark.parametrize("rec", CLEAN, ids=lambda r: r.name)
def test_garbage_between_frames_loses_none(rec: Recording) -> None:
    """Garbage after every closing flag (0D 0A, noise, a half frame, flag runs)."""
    frames = [b"\x7e" + f + b"\x7e" for f in rec.stream.strip(b"\x7e").split(b"\x7e\x7e")]
    assert b"".join(frames) == rec.stream
    noise = [b"\r\n", b"\x00\xff\x13", _partial_frame(rec, 20), b"\x7e" * 5, b"\x7e\xa0"]
    mixed = b"".join(f + noise[i % len(noise)] for i, f in enumerate(frames))
    got = through_link([mixed], recording=rec)
    assert got.payloads == through_link([rec.stream], recording=rec).payloads
    assert got.errors


# ---------------------------------------------------------------- the wrapper
def _wrapped(rec: Recording) -> bytes:
    return b"".join(_core.wrapper_encode(1, 1, a) for a in push_apdus(rec))


def _unwrapped(pieces: list[bytes]) -> list[bytes]:
    framer = _core.WrapperFramer()
    out = []
    for piece in pieces:
        framer.feed(piece)
        while (frame := framer.next_frame()) is not None:
            out.append(frame[2])
    return out


@pytest.mark.parametrize(
    "rec",
    [
        r
        for r in recordings()
        if r.name
        in {
            "kamstrup-omnipower-glo-ciphered",
            "landis-gyr-e450-gbt-push",
            "iskraemeco-am550-segmented",
            "kaifa-ma309m-netz-noe-encrypt-only",
        }
    ],
    ids=lambda r: r.name,
)
def test_wrapper_split_at_every_offset(rec: Recording) -> None:
    stream = _wrapped(rec)
    want = push_apdus(rec)
    for i in range(1, len(stream)):
        assert _unwrapped([stream[:i], stream[i:]]) == want, f"split at {i}"
    assert _unwrapped([bytes([b]) for b in stream]) == want


def test_wrapper_garbage_is_refused_not_resynchronised() -> None:
    """A wrapper stream has no flags: garbage in front is a named error."""
    framer = _core.WrapperFramer()
    framer.feed(b"\x7e\x7e\x00\x13" + _core.wrapper_encode(1, 1, b"\x0f\x00"))
    with pytest.raises(_core.WrapperError, match="version"):
        framer.next_frame()


# ---------------------------------------------------------------- a serial line
def _raw(fd: int, baud: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, f"B{baud}")
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _frame_size(data: bytearray) -> int:
    """Bytes of the frame at the start of ``data``, flags included (format type 3)."""
    assert data[0] == 0x7E, f"the meter's output does not start with a flag: {data[:8].hex()}"
    return (((data[1] & 0x07) << 8) | data[2]) + 2


@contextlib.asynccontextmanager
async def noisy_relay(
    meter_side: str, client_side: str, baud: int, seed: int
) -> AsyncIterator[list[int]]:
    """Copy client -> meter as is; meter -> client cut into pieces of 1..17 bytes, each
    of the meter's frames behind garbage (line noise, a flag run, a half frame).
    Yields the list of garbage bytes injected (a count per frame)."""
    rnd = random.Random(seed)
    injected: list[int] = []
    loop = asyncio.get_running_loop()
    m = os.open(meter_side, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    c = os.open(client_side, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    _raw(m, baud)
    _raw(c, baud)
    pending = bytearray()

    def from_client() -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(m, os.read(c, 4096))

    async def to_client() -> None:
        while True:
            await asyncio.sleep(0.002)
            with contextlib.suppress(BlockingIOError):
                pending.extend(os.read(m, 4096))
            # Frames by their length field (0x7E may occur inside a DLMS HDLC frame).
            while len(pending) >= 3 and len(pending) >= (size := _frame_size(pending)):
                frame = bytes(pending[:size])
                del pending[:size]
                noise = rnd.choice(
                    [
                        bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 12))).replace(
                            b"\x7e", b""
                        ),
                        b"\x7e" * rnd.randrange(1, 6),
                        frame[: rnd.randrange(2, max(3, len(frame) - 1))],
                        b"\r\n",
                    ]
                )
                injected.append(len(noise))
                data = noise + frame
                while data:
                    n = rnd.randrange(1, 18)
                    os.write(c, data[:n])
                    data = data[n:]
                    await asyncio.sleep(0)

    loop.add_reader(c, from_client)
    task = loop.create_task(to_client())
    try:
        yield injected
    finally:
        loop.remove_reader(c)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        os.close(m)
        os.close(c)


@pytest.mark.parametrize("baud", [2400, 19200])
async def test_session_over_a_noisy_serial_line_in_pieces(baud: int) -> None:
    """A whole HLS session (SNRM/UA, AARQ/AARE with HLS, GETs, RLRQ, DISC) over ptys at
    ``baud``, every meter frame in pieces behind garbage: the answers are exact."""
    spec = FleetSpec(auth="hls-gmac", baud=baud, history_days=0)
    with pty_pair() as (sim_end, relay_meter), pty_pair() as (relay_client, client_end):
        fleet = SimulatedFleet(spec)
        # The meter's line is open (raw) before the client sends its first SNRM.
        line = await open_line(sim_end, baud)
        serving = asyncio.create_task(serve_serial(fleet, sim_end, baud=baud, line=line))
        try:
            async with noisy_relay(relay_meter, relay_client, baud, seed=baud) as injected:
                from tests.test_mode_e_tcp import hls

                meter = fleet.meters[0]
                tr = SerialHdlcTransport(
                    client_end, HdlcSettings(client_address=1, response_timeout=5.0), baudrate=baud
                )
                settings_ = SessionSettings(client_sap=1, security=hls(meter.describe()))
                async with ClientSession(tr, settings_) as s:
                    energy = await s.get(3, "1.0.1.8.0.255", 2)
                    clock = await s.get(8, "0.0.1.0.0.255", 2)
                    name = await s.get(1, "0.0.42.0.0.255", 2)
                assert energy["type"] == "double-long-unsigned"
                assert clock["type"] == "octet-string"
                assert name["type"] == "octet-string"
                assert tr.counters.retransmissions == 0  # nothing had to be asked again
                assert len(injected) >= 5 and sum(injected) > 0
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            await fleet.stop()
