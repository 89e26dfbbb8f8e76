"""A tiny MQTT v5 broker for tests of how the uplink takes a broker's refusals.

It speaks just enough of MQTT 5.0 for one client at a time: CONNECT -> CONNACK (with a
chosen reason code, or 0x9A "Retain not supported" when the will is retained and
``refuse_retained_will`` is set, and a Retain Available property), SUBSCRIBE -> SUBACK,
PUBLISH QoS 0/1 -> PUBACK (recording topic, retain flag and payload), PINGREQ ->
PINGRESP, DISCONNECT. It routes nothing: it records what the client did.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Connect:
    client_id: str
    will_retain: bool
    will_topic: str | None
    username: str | None


@dataclass
class Published:
    topic: str
    retain: bool
    payload: bytes


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def u16(self) -> int:
        self.pos += 2
        return int.from_bytes(self.data[self.pos - 2 : self.pos], "big")

    def varint(self) -> int:
        mult, value = 1, 0
        while True:
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128

    def binary(self) -> bytes:
        n = self.u16()
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def text(self) -> str:
        return self.binary().decode()

    def skip_properties(self) -> None:
        n = self.varint()
        self.pos += n

    def rest(self) -> bytes:
        return self.data[self.pos :]


@dataclass
class FakeBroker:
    """``async with FakeBroker(...) as b``: listening on ``b.port`` (loopback)."""

    connack_code: int = 0
    refuse_retained_will: bool = False
    retain_available: int | None = None
    connects: list[Connect] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> FakeBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _read_packet(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        first = (await reader.readexactly(1))[0]
        mult, length = 1, 0
        while True:
            b = (await reader.readexactly(1))[0]
            length += (b & 0x7F) * mult
            if not b & 0x80:
                break
            mult *= 128
        return first, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                first, body = await self._read_packet(reader)
                kind = first >> 4
                if kind == 1:
                    if not self._connect(body, writer):
                        await writer.drain()
                        return
                elif kind == 8:  # SUBSCRIBE
                    r = _Reader(body)
                    pid = r.u16()
                    r.skip_properties()
                    count = 0
                    while r.pos < len(body):
                        r.text()
                        r.byte()
                        count += 1
                    writer.write(_packet(0x90, pid.to_bytes(2, "big") + b"\x00" + b"\x01" * count))
                elif kind == 3:  # PUBLISH
                    qos, retain = (first >> 1) & 3, bool(first & 1)
                    r = _Reader(body)
                    topic = r.text()
                    pid = r.u16() if qos else 0
                    r.skip_properties()
                    self.published.append(Published(topic, retain, r.rest()))
                    self.changed.set()
                    if qos == 1:
                        writer.write(_packet(0x40, pid.to_bytes(2, "big")))
                elif kind == 12:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _connect(self, body: bytes, writer: asyncio.StreamWriter) -> bool:
        r = _Reader(body)
        r.text()  # "MQTT"
        r.byte()  # protocol level 5
        flags = r.byte()
        r.u16()  # keepalive
        r.skip_properties()
        client_id = r.text()
        will_topic = None
        if flags & 0x04:
            r.skip_properties()
            will_topic = r.text()
            r.binary()
        username = r.text() if flags & 0x80 else None
        will_retain = bool(flags & 0x20)
        self.connects.append(Connect(client_id, will_retain, will_topic, username))
        self.changed.set()
        code = self.connack_code
        if code == 0 and self.refuse_retained_will and will_retain:
            code = 0x9A
        props = b""
        if self.retain_available is not None:
            props = bytes([0x25, self.retain_available])
        writer.write(_packet(0x20, b"\x00" + bytes([code]) + _varint(len(props)) + props))
        return code < 0x80

    async def wait(self, predicate: object, within: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (checked after every packet)."""
        assert callable(predicate)
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
