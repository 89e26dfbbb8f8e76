"""Issue 7 item 4, the push listener under hostile connections: unknown peers closed
before they are read, the caps in total and per peer address, the first-frame and idle
deadlines (a trickle of bytes does not keep a connection), IPv4-mapped peers, bounded
buffering per connection with nothing lost, the closing reasons for the metric, and the
open-files limit the daemon checks at start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import (
    READ_CHUNK,
    MeterKeys,
    PeerFilter,
    PushEvent,
    PushListener,
)
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.pushes import PushRouting
from smmc_gateway.ops.config import load_config

EK = bytes(range(16))
AK = bytes(range(16, 32))
TITLE = b"MMM\x00\x00\x00\x00\x07"
WAIT = 10.0
BODY: dict[str, Any] = {
    "type": "structure",
    "value": [{"type": "double-long-unsigned", "value": 42}],
}


def notification(invoke: int = 1, body: dict[str, Any] = BODY) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": invoke,
            "date_time": _core.encode_datetime(datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),
            "body_raw": _core.encode(body),
        }
    )


def frame(counter: int, invoke: int = 1, body: dict[str, Any] = BODY) -> bytes:
    apdu = _core.cipher_apdu(
        notification(invoke, body),
        security_control=0x30,
        system_title=TITLE,
        invocation_counter=counter,
        ek=EK,
        ak=AK,
        general=True,
    )
    return _core.wrapper_encode(1, 102, apdu)


class Recorder:
    """The lookup (counting its calls), the event queue and the closing reasons."""

    def __init__(self) -> None:
        self.lookups = 0
        self.events: asyncio.Queue[PushEvent] = asyncio.Queue()
        self.closed: list[str] = []

    def lookup(self, title: bytes | None, peer: str) -> MeterKeys | None:
        self.lookups += 1
        return MeterKeys("meter-7", system_title=TITLE, ek=EK, ak=AK) if title == TITLE else None


@contextlib.asynccontextmanager
async def listening(rec: Recorder, **kw: Any) -> AsyncIterator[PushListener]:
    kw.setdefault("host", "127.0.0.1")
    listener = PushListener(
        rec.lookup,
        rec.events.put_nowait,
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
        on_close=rec.closed.append,
        **kw,
    )
    async with listener:
        yield listener


async def connect(
    port: int, source: str = "127.0.0.1", host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the listener has closed the connection (EOF or reset)."""
    try:
        return await asyncio.wait_for(reader.read(1), WAIT) == b""
    except ConnectionResetError:
        return True


async def still_open(reader: asyncio.StreamReader, for_s: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), for_s)
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    return False


async def until(check: Any, wait_s: float = WAIT) -> None:
    async with asyncio.timeout(wait_s):
        while not check():  # noqa: ASYNC110 - polling the listener's counters
            await asyncio.sleep(0.01)


async def test_unknown_peer_is_closed_before_anything_is_read() -> None:
    rec = Recorder()
    async with listening(rec, allowed_peers=PeerFilter(["127.0.0.1"])) as listener:
        reader, writer = await connect(listener.port, source="127.0.0.2")
        writer.write(frame(counter=1))  # a valid push, from the wrong address
        assert await closed_by_peer(reader)
        writer.close()
        reader, writer = await connect(listener.port)
        writer.write(frame(counter=2))
        event = await asyncio.wait_for(rec.events.get(), WAIT)
        writer.close()
    assert event.invocation_counter == 2
    c = listener.counters
    assert (c.refused_unknown_peer, c.accepted, c.connections) == (1, 1, 1)
    assert rec.lookups == 1  # the stranger's push never reached the key lookup
    assert rec.closed == ["unknown_peer"]


async def test_allow_from_networks_admit_their_peers_only() -> None:
    rec = Recorder()
    async with listening(rec, allowed_peers=PeerFilter([], ["127.0.5.0/24"])) as listener:
        reader, writer = await connect(listener.port, source="127.0.6.1")
        assert await closed_by_peer(reader)
        writer.close()
        reader, writer = await connect(listener.port, source="127.0.5.9")
        writer.write(frame(counter=1))
        event = await asyncio.wait_for(rec.events.get(), WAIT)
        writer.close()
    assert event.peer == "127.0.5.9" and listener.counters.refused_unknown_peer == 1


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on this host")
async def test_an_ipv4_mapped_peer_is_its_ipv4_address(tmp_path: Path) -> None:
    """On a dual-stack socket an IPv4 meter appears as ::ffff:a.b.c.d: it is still the
    configured meter (admitted, found by its address) and shares its per-peer count."""
    meters = [{"meter_id": "plain-1", "port": 4061, "auth": "none"}]
    cfg = load_config(write_lab_config(tmp_path / "gw", meters, broker=("127.0.0.1", 1883)))
    routing = PushRouting(cfg.meters)
    events: asyncio.Queue[PushEvent] = asyncio.Queue()
    listener = PushListener(
        routing.lookup,
        events.put_nowait,
        host="::",
        port=0,
        allowed_peers=routing.peers(),
        max_per_peer=1,
        ic_store=InvocationCounterStore(":memory:"),
    )
    async with listener:
        _, writer = await connect(listener.port)
        writer.write(_core.wrapper_encode(1, 102, notification(5)))
        event = await asyncio.wait_for(events.get(), WAIT)
        second_reader, second = await connect(listener.port)
        assert await closed_by_peer(second_reader)  # the same address: over max_per_peer
        second.close()
        writer.close()
    assert event.meter_id == "plain-1" and not event.ciphered
    assert event.peer == "::ffff:127.0.0.1"
    assert listener.counters.refused_max_per_peer == 1
    assert listener.counters.refused_unknown_peer == 0


async def test_per_peer_cap_closes_the_extra_connection_at_once() -> None:
    rec = Recorder()
    async with listening(rec, max_connections=10, max_per_peer=2) as listener:
        a = await connect(listener.port)
        b = await connect(listener.port)
        c_reader, c_writer = await connect(listener.port)
        assert await closed_by_peer(c_reader)
        c_writer.close()
        other = await connect(listener.port, source="127.0.0.3")  # another address: fine
        assert await still_open(other[0])
        for n, (_, w) in enumerate((a, b)):
            w.write(frame(counter=10 + n, invoke=n))
        got = {(await asyncio.wait_for(rec.events.get(), WAIT)).long_invoke_id for _ in (a, b)}
        a[1].close()
        await until(lambda: listener.open_connections == 2)
        d = await connect(listener.port)  # a slot of that address is free again
        d[1].write(frame(counter=20, invoke=9))
        last = await asyncio.wait_for(rec.events.get(), WAIT)
        for _, w in (b, other, d):
            w.close()
    assert got == {0, 1} and last.long_invoke_id == 9
    assert listener.counters.refused_max_per_peer == 1 and rec.closed == ["max_per_peer"]


async def test_total_cap_holds_at_most_max_connections() -> None:
    rec = Recorder()
    async with listening(rec, max_connections=3, max_per_peer=3) as listener:
        held = [await connect(listener.port, source=f"127.0.0.{n}") for n in (2, 3, 4)]
        await until(lambda: listener.open_connections == 3)
        extra = [await connect(listener.port, source=f"127.0.0.{n}") for n in (5, 6)]
        for reader, _ in extra:
            assert await closed_by_peer(reader)
        for reader, _ in held:
            assert await still_open(reader, 0.05)
        assert listener.open_connections == 3
    c = listener.counters
    assert (c.refused_max_connections, c.peak_open, c.connections) == (2, 3, 3)
    assert rec.closed == ["max_connections", "max_connections"]
    for _, w in held + extra:
        w.close()


async def test_first_frame_deadline_closes_silent_and_trickling_connections() -> None:
    rec = Recorder()
    async with listening(rec, first_frame_timeout=0.3, idle_timeout=60) as listener:
        silent_reader, silent = await connect(listener.port)
        slow_reader, slow = await connect(listener.port)
        whole = frame(counter=1)

        async def trickle() -> None:  # one byte every 50 ms: never a whole frame in time
            with contextlib.suppress(ConnectionError):
                for byte in whole[:-1]:
                    slow.write(bytes([byte]))
                    await slow.drain()
                    await asyncio.sleep(0.05)

        dribbler = asyncio.create_task(trickle())
        assert await closed_by_peer(silent_reader)
        assert await closed_by_peer(slow_reader)
        dribbler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dribbler
        silent.close()
        slow.close()
    assert listener.counters.closed_first_frame_timeout == 2
    assert listener.counters.accepted == 0 and rec.lookups == 0
    assert rec.closed == ["first_frame_timeout", "first_frame_timeout"]


async def test_after_the_first_frame_the_idle_deadline_applies() -> None:
    rec = Recorder()
    async with listening(rec, first_frame_timeout=0.3, idle_timeout=1.0) as listener:
        reader, writer = await connect(listener.port)
        for n in range(6):  # 0.6 s of pushes: past the first-frame deadline, still open
            writer.write(frame(counter=n + 1, invoke=n))
            await asyncio.wait_for(rec.events.get(), WAIT)
            await asyncio.sleep(0.1)
        assert listener.open_connections == 1
        assert await closed_by_peer(reader)  # then silence: closed by the idle deadline
        writer.close()
    c = listener.counters
    assert (c.accepted, c.closed_idle_timeout, c.closed_first_frame_timeout) == (6, 1, 0)
    assert rec.closed == ["idle_timeout"]


async def test_buffering_per_connection_is_bounded_and_nothing_is_lost() -> None:
    """A consumer that is slow (here: blocked) stops the listener reading that
    connection (TCP back-pressure) instead of buffering without end; once it goes on,
    every push is handled."""
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(event: PushEvent) -> None:
        await gate.wait()
        seen.append(event.long_invoke_id)

    big = {"type": "octet-string", "value": "ab" * 4000}
    frames = b"".join(frame(counter=n + 1, invoke=n, body=big) for n in range(200))
    listener = PushListener(
        Recorder().lookup,
        slow,
        host="127.0.0.1",
        port=0,
        ic_store=InvocationCounterStore(":memory:"),
    )
    async with listener:
        _, writer = await connect(listener.port)
        writer.write(frames)  # ~1.6 MB
        sender = asyncio.create_task(writer.drain())
        peak = 0
        for _ in range(50):
            await asyncio.sleep(0.01)
            peak = max(peak, listener.buffered_bytes)
        assert 0 < peak <= 8 + 0xFFFF + READ_CHUNK, peak
        gate.set()
        await asyncio.wait_for(sender, WAIT)
        writer.close()
        await until(lambda: len(seen) == 200)
    assert seen == list(range(200)) and listener.counters.accepted == 200


async def test_an_oversized_frame_closes_the_connection_as_malformed() -> None:
    rec = Recorder()
    async with listening(rec, max_apdu=100) as listener:
        reader, writer = await connect(listener.port)
        writer.write(b"\x00\x01\x00\x01\x00\x66\x00\xc8" + bytes(50))  # declares 200 bytes
        assert await closed_by_peer(reader)
        writer.close()
    assert listener.counters.refused_malformed == 1 and rec.closed == ["malformed"]


NOFILE_PROBE = """
import json, resource
from structlog.testing import capture_logs
from smmc_gateway.headend.pushes import ensure_nofile
resource.setrlimit(resource.RLIMIT_NOFILE, (100, 150))  # a child of its own: no harm
with capture_logs() as logs:
    enough = ensure_nofile(120)
    short = ensure_nofile(400)
print(json.dumps({"enough": enough, "short": short,
                  "events": [(e["event"], e.get("needed")) for e in logs]}))
"""


def test_the_daemon_raises_its_open_files_limit_or_warns_it_is_too_low() -> None:
    r = subprocess.run(
        [sys.executable, "-c", NOFILE_PROBE], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["enough"] == [120, 150]  # raised to what is needed, within the hard limit
    assert got["short"] == [150, 150]  # as far as the hard limit allows, then a warning
    assert ["nofile_limit_low", 400] in got["events"]
    assert ["nofile_limit_low", 120] not in got["events"]
