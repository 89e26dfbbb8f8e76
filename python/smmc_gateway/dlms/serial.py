"""Serial and RS-485 transports: HDLC over a serial device (pyserial-asyncio-fast).

An RS-485 bus is shared by every meter wired to it, and only one session may
talk on it at a time: :class:`Bus` is the turn-taking object (FIFO-fair: the
first to ask is the first served); the head-end holds one per configured bus
and gives it to every :class:`SerialHdlcTransport` on that bus. A transport
takes its turn in ``open()`` and gives it back in ``close()``.
"""

# ruff: noqa: ASYNC109  (an explicit per-call timeout is this API's contract)

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from smmc_gateway.dlms.errors import MeterTimeout, TransportError
from smmc_gateway.dlms.hdlc_transport import HdlcSettings, HdlcTransport
from smmc_gateway.dlms.stream import Connector, ProtocolFactory


def serial_connector(device: str, baudrate: int = 9600, **options: Any) -> Connector:
    """A :data:`~smmc_gateway.dlms.stream.Connector` for a serial device;
    ``options`` go to pyserial (``bytesize``, ``parity``, ``stopbits``, ...)."""

    async def connect(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        import serial_asyncio_fast

        loop = asyncio.get_running_loop()
        try:
            return await serial_asyncio_fast.create_serial_connection(
                loop, factory, device, baudrate=baudrate, **options
            )
        except Exception as exc:  # pyserial raises SerialException (an OSError) or ValueError
            raise TransportError(f"cannot open serial device {device}: {exc}") from exc

    return connect


class Bus:
    """One shared serial line: one session at a time, served in arrival order."""

    def __init__(self, device: str, baudrate: int = 9600, *, name: str | None = None) -> None:
        self.device = device
        self.baudrate = baudrate
        self.name = name or device
        self.holder: str | None = None
        self._waiters: collections.deque[tuple[str, asyncio.Future[None]]] = collections.deque()
        self.turns_taken = 0

    def __repr__(self) -> str:
        return f"Bus({self.name!r}, holder={self.holder!r}, waiting={self.waiting})"

    @property
    def waiting(self) -> int:
        """Sessions queued for the bus (for metrics)."""
        return sum(1 for _, f in self._waiters if not f.done())

    async def acquire(self, who: str, timeout: float | None = None) -> None:
        """Wait for the bus; MeterTimeout after ``timeout`` seconds in the queue."""
        if self.holder is None and not self._waiters:
            self.holder = who
            self.turns_taken += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (who, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        except BaseException as exc:
            if future.done() and not future.cancelled() and self.holder == who:
                self.release()  # granted while we were being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
            if isinstance(exc, TimeoutError):
                raise MeterTimeout(
                    f"a turn on bus {self.name} (held by {self.holder})", timeout or 0
                ) from None
            raise

    def release(self) -> None:
        """Give the bus to the next waiter in line."""
        self.holder = None
        while self._waiters:
            who, future = self._waiters.popleft()
            if not future.done():
                self.holder = who
                self.turns_taken += 1
                future.set_result(None)
                return

    @contextlib.asynccontextmanager
    async def turn(self, who: str, timeout: float | None = None) -> AsyncIterator[None]:
        """``async with bus.turn("meter-7"):`` — hold the bus for the block."""
        await self.acquire(who, timeout)
        try:
            yield
        finally:
            self.release()


class SerialHdlcTransport(HdlcTransport):
    """HDLC on a serial device, optionally on a shared RS-485 :class:`Bus`
    (set ``settings.server_lower`` to the meter's physical address there)."""

    def __init__(
        self,
        device: str,
        settings: HdlcSettings,
        *,
        baudrate: int = 9600,
        bus: Bus | None = None,
        bus_timeout: float | None = None,
        who: str = "",
    ) -> None:
        if bus is not None:
            device, baudrate = bus.device, bus.baudrate
        super().__init__(
            serial_connector(device, baudrate), settings, description=f"serial {device}@{baudrate}"
        )
        self.bus = bus
        self.bus_timeout = bus_timeout
        self.who = who or self.description
        self._holding = False

    async def open(self, timeout: float = 10.0) -> None:
        if self.bus is not None:
            await self.bus.acquire(self.who, self.bus_timeout)
            self._holding = True
        try:
            await super().open(timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self, timeout: float = 3.0) -> None:
        try:
            await super().close(timeout)
            await self._wait_closed(1.0)
        finally:
            if self._holding and self.bus is not None:
                self._holding = False
                self.bus.release()
