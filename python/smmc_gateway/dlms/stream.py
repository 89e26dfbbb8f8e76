"""The base of every transport: a byte pipe opened by a :data:`Connector`, a queue
of received APDUs, the error that ended the link, and the wire counters.

The queue is bounded (:data:`MAX_QUEUED_APDUS`): a session reads one answer at
a time, so a peer that has that many APDUs waiting unread is flooding us. The
link then fails with a LinkLost naming the flood and the pipe is closed, rather
than dropping APDUs silently (one of them could be the answer we wait for, and
a session that fails is retried; one that loses answers is wrong).

The public API and its description are in :mod:`smmc_gateway.dlms.transport`.
"""

# ruff: noqa: ASYNC109  (an explicit per-call timeout is this API's contract)

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from smmc_gateway.dlms.errors import LinkLost, MeterTimeout, TransportError

MAX_QUEUED_APDUS = 64
"""Received APDUs waiting unread before the link is failed as flooded."""

ProtocolFactory = Callable[[], asyncio.Protocol]
Connector = Callable[[ProtocolFactory], Awaitable[tuple[asyncio.BaseTransport, Any]]]
"""Opens a byte pipe: called with a protocol factory, returns what
``loop.create_connection`` returns."""


def tcp_connector(host: str, port: int) -> Connector:
    """A :data:`Connector` for a TCP connection (TCP_NODELAY is asyncio's default)."""

    async def connect(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        loop = asyncio.get_running_loop()
        return await loop.create_connection(factory, host, port)

    return connect


@dataclass
class WireCounters:
    """What went over the wire for one transport (read by the head-end's metrics)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    apdus_sent: int = 0
    apdus_received: int = 0
    retransmissions: int = 0
    frame_errors: int = 0


class Transport(ABC):
    """Send and receive whole APDUs to one meter. Not safe for concurrent
    ``receive_apdu`` calls: one session drives one transport."""

    counters: WireCounters
    description: str
    """Human name of the peer for messages, e.g. ``tcp 10.0.0.5:4059 wrapper 16->1``."""

    @abstractmethod
    async def open(self, timeout: float = 10.0) -> None:
        """Connect and set up the link (HDLC: SNRM/UA). Raises TransportError,
        MeterTimeout or LinkLost."""

    @abstractmethod
    async def send_apdu(self, apdu: bytes) -> None:
        """Queue one APDU for the meter. Raises LinkLost when the link is down."""

    @abstractmethod
    async def receive_apdu(self, timeout: float) -> bytes:
        """The next APDU from the meter; MeterTimeout after ``timeout`` seconds,
        LinkLost when the link goes down meanwhile."""

    @abstractmethod
    async def close(self, timeout: float = 3.0) -> None:
        """Disconnect gracefully (HDLC DISC, then close the pipe); never raises
        for a link that is already down; idempotent."""

    def limit_received_apdu(self, size: int) -> None:
        """Refuse received APDUs longer than ``size`` bytes (the session's max
        receive PDU size) where the framing is parsed, before they are
        buffered whole (from the next APDU on). The base does nothing: the
        session checks each APDU it receives anyway."""
        del size

    @property
    def max_apdu_size(self) -> int | None:
        """A limit the transport puts on APDU size (None: only the negotiated PDU size)."""
        return None

    @property
    def progress(self) -> int:
        """A count that moves whenever the meter sent something that advances
        an answer (default: any byte). The session's response timeout is a
        silence timeout: it waits on while this moves."""
        return self.counters.bytes_received


TIMER_SLACK = 0.002
"""How much later than a wait's end its shared timer may fire (seconds): uvloop keeps
timers and its clock in whole milliseconds, so a timer armed for the same end can read
as a hair later; a timeout a millisecond or two late changes nothing."""

RECEIVE_BUFFER = 0x4000
"""Bytes one read of the pipe takes at most: a frame of the usual PDU sizes in one read,
a longer one in a few; the buffer is allocated per connection, so it stays small."""


class _Pipe(asyncio.Protocol, asyncio.BufferedProtocol):
    """An asyncio protocol that forwards bytes and loss to its owner.

    On asyncio's own loop a socket transport reads into this protocol's own
    buffer (``recv_into``): with a plain protocol that loop allocates 256 KiB for
    every read and shrinks it (an mmap, an mremap and a munmap per answer).
    uvloop reads every socket into one buffer of the loop and hands the bytes to
    ``data_received`` (it takes a protocol that is also a plain one as plain),
    which costs no allocation beyond the bytes (so this protocol's buffer is made
    only when a loop asks for it). Transports that only know
    ``data_received`` (serial) call that."""

    def __init__(self, owner: StreamTransport) -> None:
        self.owner = owner
        self.detached = False
        """The owner opened a new pipe since: what this one still reports is not its."""
        self.drained = asyncio.Event()
        self.drained.set()
        self._view: memoryview | None = None  # made on the first read that asks for it

    def pause_writing(self) -> None:
        self.drained.clear()

    def resume_writing(self) -> None:
        self.drained.set()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._view is None:
            self._view = memoryview(bytearray(RECEIVE_BUFFER))
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.detached and self._view is not None:
            self.owner._data_received(self._view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        if not self.detached:
            self.owner._data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.detached:
            self.owner._connection_lost(exc)


class StreamTransport(Transport):
    """Shared machinery: a byte pipe, a queue of received APDUs and the error
    that ended the link. Subclasses implement ``_data_received`` and framing."""

    def __init__(self, connector: Connector, description: str) -> None:
        self._connector = connector
        self.description = description
        self.counters = WireCounters()
        self._pipe: asyncio.BaseTransport | None = None
        self._apdus: collections.deque[bytes] = collections.deque()
        self._flooded = False
        self._waiter: asyncio.Future[bool] | None = None
        self._error: Exception | None = None
        self._closing = False
        self._lost: asyncio.Future[None] | None = None
        self._protocol: _Pipe | None = None
        self._wait_timer: asyncio.TimerHandle | None = None
        self._wait_until = 0.0
        self._wait_loop: asyncio.AbstractEventLoop | None = None

    async def _open_pipe(self, timeout: float) -> None:
        # A transport closed before opens afresh (a session reconnecting to a meter).
        if self._protocol is not None:
            self._protocol.detached = True
        self._apdus.clear()
        self._flooded = False
        self._error = None
        self._closing = False
        self._lost = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                self._pipe, self._protocol = await self._connector(lambda: _Pipe(self))
        except TimeoutError:
            raise MeterTimeout(f"connection to {self.description}", timeout) from None
        except OSError as exc:
            raise TransportError(f"cannot open {self.description}: {exc}") from exc

    def _write(self, data: bytes) -> None:
        if self._pipe is None or self._pipe.is_closing():
            raise LinkLost(f"{self.description}: connection is closed")
        self.counters.bytes_sent += len(data)
        self._pipe.write(data)  # type: ignore[attr-defined]

    def _deliver(self, apdu: bytes) -> None:
        if self._flooded:
            return
        self.counters.apdus_received += 1
        if len(self._apdus) >= MAX_QUEUED_APDUS:
            self._flooded = True
            self._apdus.clear()
            self._error = LinkLost(
                f"{self.description}: flooded: more than {MAX_QUEUED_APDUS} APDUs "
                "received unread (link closed)"
            )
            self._wake()
            self._close_pipe()
            return
        self._apdus.append(apdu)
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    @abstractmethod
    def _data_received(self, data: bytes) -> None: ...

    def _connection_lost(self, exc: Exception | None) -> None:
        self._cancel_wait_timer()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        why = f": {exc}" if exc else ""
        self._fail(LinkLost(f"{self.description}: connection closed by the peer{why}"))

    async def _wait(self, timeout: float, awaited: str) -> None:
        """Wait until something was delivered or failed, or raise MeterTimeout.

        This is on every answer's path, so the transport's successive waits share
        one timer: it is moved only when a wait must end sooner than it fires, and
        when it fires before the current wait's end it re-arms itself for that end.
        (A timer per wait would leave a cancelled handle per answer in the loop's
        heap until its time came.) Closing the transport cancels it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        self._wait_until = until = loop.time() + timeout
        timer = self._wait_timer
        if timer is None or timer.when() > until + TIMER_SLACK or self._wait_loop is not loop:
            if timer is not None:
                timer.cancel()
            self._wait_timer = loop.call_at(until, self._wait_timer_fired)
            self._wait_loop = loop
        try:
            woken = await waiter
        finally:
            self._waiter = None
        if not woken:
            raise MeterTimeout(awaited, timeout)

    def _wait_timer_fired(self) -> None:
        self._wait_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        if loop.time() >= self._wait_until:
            waiter.set_result(False)
        else:
            self._wait_timer = loop.call_at(self._wait_until, self._wait_timer_fired)

    def _cancel_wait_timer(self) -> None:
        if self._wait_timer is not None:
            self._wait_timer.cancel()
            self._wait_timer = None

    async def receive_apdu(self, timeout: float) -> bytes:
        if self._apdus:
            return self._apdus.popleft()
        deadline = time.monotonic() + timeout
        while not self._apdus:
            if self._error is not None:
                raise self._error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MeterTimeout(f"an APDU from {self.description}", timeout)
            await self._wait(remaining, f"an APDU from {self.description}")
        return self._apdus.popleft()

    async def _wait_closed(self, timeout: float) -> None:
        """After close: wait until the pipe is really closed (a serial device
        is released before the next session on the bus opens it)."""
        if self._lost is not None and self._pipe is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._lost

    def _close_pipe(self) -> None:
        self._closing = True
        self._cancel_wait_timer()
        if self._pipe is not None and not self._pipe.is_closing():
            self._pipe.close()
