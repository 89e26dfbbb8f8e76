"""The byte pipe under every stream transport (``smmc_gateway.dlms.stream``): reads
into the protocol's own buffer over TCP, and one wait timer per transport.

Both are on every answer's path (bench/session.py): a plain protocol made asyncio
allocate and shrink 256 KiB per read, and a timer per wait left a cancelled handle
per answer in the loop's heap. These tests pin the mechanism and that waits still
end when they should: a shorter wait than the armed timer ends on time, a timer
that fires before the current wait's end does not end it, closing cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from smmc_gateway import _core, runtime
from smmc_gateway.dlms.errors import MeterTimeout
from smmc_gateway.dlms.stream import RECEIVE_BUFFER, _Pipe
from smmc_gateway.dlms.transport import WrapperTransport

from tests.security.meter_peer import memory_connector

BIG = bytes(range(256)) * 255 + b"\x01" * 255  # 65535 bytes: the wrapper's largest APDU


async def test_tcp_reads_go_into_the_pipes_own_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over TCP asyncio's loop calls ``get_buffer``/``buffer_updated`` (recv_into),
    never ``data_received``; uvloop (which reads into one buffer of its own) only
    ``data_received``. Frames split across reads, and several in one read, come out
    whole and in order (a frame larger than the buffer takes several reads)."""
    calls = {"get_buffer": 0, "data_received": 0}
    get_buffer, data_received = _Pipe.get_buffer, _Pipe.data_received

    def counting_get_buffer(self: _Pipe, sizehint: int) -> memoryview:
        calls["get_buffer"] += 1
        return get_buffer(self, sizehint)

    def counting_data_received(self: _Pipe, data: bytes) -> None:
        calls["data_received"] += 1
        data_received(self, data)

    monkeypatch.setattr(_Pipe, "get_buffer", counting_get_buffer)
    monkeypatch.setattr(_Pipe, "data_received", counting_data_received)
    frames = [_core.wrapper_encode(1, 1, apdu) for apdu in (b"\xc4\x01", BIG, b"\xc5", b"\xc7")]

    async def meter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(frames[0][:5])  # a header cut in two writes
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(frames[0][5:] + frames[1][:1000])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(frames[1][1000:] + frames[2] + frames[3])  # the rest and two more frames
        await writer.drain()
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(meter, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tr = WrapperTransport.tcp("127.0.0.1", port, client_sap=1)
    try:
        await tr.open(timeout=5)
        assert isinstance(tr._protocol, asyncio.BufferedProtocol)
        await tr.send_apdu(b"\xc0\x01")
        got = [await tr.receive_apdu(5) for _ in range(4)]
        assert got == [b"\xc4\x01", BIG, b"\xc5", b"\xc7"]
        assert len(BIG) + 8 > RECEIVE_BUFFER  # the big frame cannot fit one read
        if runtime.running_loop_name() == "uvloop":
            assert calls["data_received"] >= 2 and calls["get_buffer"] == 0, calls
        else:
            assert calls["get_buffer"] >= 3 and calls["data_received"] == 0, calls
        assert tr.counters.bytes_received == sum(len(f) for f in frames)
    finally:
        await tr.close()
        server.close()
        await server.wait_closed()


def echo_after(delays: list[float]) -> Callable[[bytes], bytes | None]:
    """A wrapper meter that answers each request with the same APDU, the n-th one
    ``delays[n]`` seconds later (negative: never)."""
    framer = _core.WrapperFramer()
    n = 0

    def meter(data: bytes) -> bytes | None:
        nonlocal n
        framer.feed(data)
        frame = framer.next_frame()
        assert frame is not None
        delay, n = delays[n], n + 1
        answer = _core.wrapper_encode(1, 16, frame[2])
        if delay == 0:
            return answer
        if delay > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, lambda: pipe()._protocol.data_received(answer))
        return b""

    holder: dict[str, Any] = {}

    def pipe() -> Any:
        return holder["pipe"]

    meter.holder = holder  # type: ignore[attr-defined]
    return meter


async def memory_transport(delays: list[float]) -> WrapperTransport:
    meter = echo_after(delays)
    connect = memory_connector(meter)

    async def connector(factory: Any) -> tuple[asyncio.BaseTransport, Any]:
        pipe, protocol = await connect(factory)
        meter.holder["pipe"] = pipe  # type: ignore[attr-defined]
        return pipe, protocol

    tr = WrapperTransport(connector)
    await tr.open()
    return tr


async def test_successive_waits_share_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten answers awaited one after the other arm the loop's timer once, not ten times."""
    tr = await memory_transport([0.0] * 10)
    loop = asyncio.get_running_loop()
    armed: list[Any] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
        armed.append(callback)  # (the in-memory meter answers at once: no timer of its own)
        return call_at(when, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    for n in range(10):
        await tr.send_apdu(bytes([0xC0, n]))
        assert await tr.receive_apdu(10.0) == bytes([0xC0, n])
    assert len(armed) == 1
    await tr.close()
    assert tr._wait_timer is None  # closing cancels it: nothing keeps the transport alive


async def test_a_shorter_wait_ends_on_time_though_a_later_timer_is_armed() -> None:
    """A first wait of 30 s armed the timer; the next wait of 0.2 s must not wait 30 s."""
    tr = await memory_transport([0.0, -1.0])
    await tr.send_apdu(b"\xc0\x01")
    assert await tr.receive_apdu(30.0) == b"\xc0\x01"
    await tr.send_apdu(b"\xc0\x02")  # never answered
    start = time.monotonic()
    with pytest.raises(MeterTimeout):
        await tr.receive_apdu(0.2)
    assert time.monotonic() - start < 10.0  # on time, not at the first wait's 30 s
    await tr.close()


async def test_a_timer_armed_for_an_earlier_wait_does_not_end_a_longer_one() -> None:
    """The timer armed for a 0.05 s wait fires during the next wait (10 s); that wait
    goes on and takes the answer that comes at 0.3 s."""
    tr = await memory_transport([0.0, 0.3])
    await tr.send_apdu(b"\xc0\x01")
    assert await tr.receive_apdu(0.05) == b"\xc0\x01"
    await tr.send_apdu(b"\xc0\x02")
    start = time.monotonic()
    assert await tr.receive_apdu(10.0) == b"\xc0\x02"
    assert time.monotonic() - start >= 0.25  # it really waited past the first timer
    await tr.close()


async def test_a_wait_times_out_at_its_own_end_after_an_early_timer() -> None:
    """After the early timer fired and re-armed, silence still ends the wait with
    MeterTimeout, not before its own timeout."""
    tr = await memory_transport([0.0, -1.0])
    await tr.send_apdu(b"\xc0\x01")
    assert await tr.receive_apdu(0.05) == b"\xc0\x01"
    await tr.send_apdu(b"\xc0\x02")
    start = time.monotonic()
    with pytest.raises(MeterTimeout):
        await tr.receive_apdu(0.4)
    assert time.monotonic() - start >= 0.35
    await tr.close()
