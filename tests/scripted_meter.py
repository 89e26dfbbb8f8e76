"""A scripted in-process meter for session tests: a Transport whose answers come
from a function of (APDU sent, connection number), recording what the client sent,
when it opened and closed the connection."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from smmc_gateway.dlms.errors import LinkLost, MeterTimeout
from smmc_gateway.dlms.stream import Transport, WireCounters

Answer = Callable[[bytes, int], list[bytes]]

#: AARE accepting a plain LN association (Green Book example; conformance 0x501F, PDU 0x1F4).
AARE_ACCEPTED = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007"
)
RLRE = bytes.fromhex("6303800100")
SERVICE_NOT_ALLOWED = bytes.fromhex("D80101")
#: A clock value (octet-string of 12) as A-XDR.
CLOCK_DATA = bytes.fromhex("090C07EA0C0304100000FF800000")


def get_response(request: bytes, data: bytes = CLOCK_DATA, trailing: bytes = b"") -> bytes:
    """get-response-normal echoing the request's invoke id, with ``data``, then ``trailing``."""
    return bytes([0xC4, 0x01, request[2], 0x00]) + data + trailing


class ScriptedMeter(Transport):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.counters = WireCounters()
        self.description = "scripted meter"
        self.connection = 0
        self.sent: list[tuple[int, bytes]] = []
        self.events: list[str] = []
        self._queue: collections.deque[bytes] = collections.deque()
        self._open = False

    def tags(self) -> list[tuple[int, int]]:
        """(connection, first byte) of every APDU sent."""
        return [(c, a[0]) for c, a in self.sent]

    async def open(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - Transport API
        self.connection += 1
        self._open = True
        self._queue.clear()
        self.events.append("open")

    async def send_apdu(self, apdu: bytes) -> None:
        if not self._open:
            raise LinkLost("scripted meter: closed")
        self.sent.append((self.connection, apdu))
        for reply in self.answer(apdu, self.connection):
            self.counters.bytes_received += len(reply)
            self._queue.append(reply)

    async def receive_apdu(self, timeout: float) -> bytes:  # noqa: ASYNC109 - Transport API
        if self._queue:
            return self._queue.popleft()
        await asyncio.sleep(min(timeout, 0.01))
        if self._queue:
            return self._queue.popleft()
        raise MeterTimeout("an APDU from the scripted meter", timeout)

    async def close(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109 - Transport API
        if self._open:
            self.events.append("close")
        self._open = False
