"""HDLC (IEC 62056-46) over any byte pipe: the asyncio driver of ``_core.HdlcLink``.

The link object is sans-IO; this module feeds it received bytes, writes what it
wants sent, arms one timer at its ``next_deadline()`` and turns its events into
delivered APDUs or a :class:`~smmc_gateway.dlms.errors.LinkLost` naming why
(an APDU reassembled past the session's limit, :meth:`limit_received_apdu`,
fails the link: the answer we wait for is gone).
Serial, RS-485 and the optical port open their pipe differently
(:mod:`smmc_gateway.dlms.serial`, :mod:`smmc_gateway.dlms.optical_port`) and
reuse this class.
"""

# ruff: noqa: ASYNC109  (an explicit per-call timeout is this API's contract)

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.errors import LinkLost, MeterTimeout
from smmc_gateway.dlms.stream import Connector, StreamTransport, tcp_connector

log = structlog.get_logger("smmc_gateway.dlms")

MAX_REASSEMBLY = 1 << 20
"""The core's hard maximum on an APDU reassembled from HDLC segments."""


@dataclass(frozen=True)
class HdlcSettings:
    """HDLC addressing and link parameters of one meter.

    ``client_address`` is the client SAP (16 public, 1 management);
    ``server_upper`` the logical device (1 = management logical device);
    ``server_lower`` the physical device address (None: one-byte server
    address, the upper only; set it for RS-485 multi-drop meters).
    ``response_timeout``/``max_retries`` drive retransmission: a silent meter
    ends in LinkLost after about ``response_timeout * (max_retries + 1)``.
    ``inactivity_timeout`` drops an idle link (None: never).
    """

    client_address: int = 16
    server_upper: int = 1
    server_lower: int | None = None
    address_size: int | None = None
    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1
    response_timeout: float = 3.0
    max_retries: int = 3
    inactivity_timeout: float | None = None


class HdlcTransport(StreamTransport):
    """APDUs over an HDLC link on a byte pipe (TCP, serial, optical)."""

    def __init__(
        self, connector: Connector, settings: HdlcSettings, *, description: str = "hdlc"
    ) -> None:
        address = f"{settings.server_upper}"
        if settings.server_lower is not None:
            address += f"/{settings.server_lower}"
        super().__init__(connector, f"{description} {settings.client_address}->{address}")
        self.settings = settings
        self._max_apdu = MAX_REASSEMBLY
        self._link = self._new_link()
        self._timer: asyncio.TimerHandle | None = None
        self._connected: asyncio.Future[None] | None = None
        self._disconnected: asyncio.Future[None] | None = None
        self.negotiated: _core.LinkParameters | None = None
        self._frames_progress = 0

    @classmethod
    def tcp(cls, host: str, port: int, settings: HdlcSettings) -> HdlcTransport:
        """HDLC over TCP (meters and serial-to-IP converters that do this)."""
        return cls(tcp_connector(host, port), settings, description=f"tcp {host}:{port} hdlc")

    def _new_link(self) -> _core.HdlcLink:
        s = self.settings
        return _core.HdlcLink(
            "client",
            client_address=s.client_address,
            server_upper=s.server_upper,
            server_lower=s.server_lower,
            address_size=s.address_size,
            max_info_tx=s.max_info_tx,
            max_info_rx=s.max_info_rx,
            window_tx=s.window_tx,
            window_rx=s.window_rx,
            response_timeout=s.response_timeout,
            max_retries=s.max_retries,
            inactivity_timeout=s.inactivity_timeout,
            max_reassembly=self._max_apdu,
        )

    def limit_received_apdu(self, size: int) -> None:
        self._max_apdu = max(1, min(size, MAX_REASSEMBLY))
        self._link.set_max_reassembly(self._max_apdu)

    # ------------------------------------------------------------ the link
    async def open(self, timeout: float = 10.0) -> None:
        start = time.monotonic()
        self._link = self._new_link()  # a transport closed before opens with a fresh link
        await self._open_pipe(timeout)
        await self.start_link(timeout - (time.monotonic() - start))

    async def start_link(self, timeout: float) -> None:
        """SNRM/UA on an already open pipe (used after the optical sign-on)."""
        loop = asyncio.get_running_loop()
        self._connected = loop.create_future()
        self._link.connect(time.monotonic())
        self._service()
        try:
            async with asyncio.timeout(max(timeout, 0.001)):
                await self._connected
        except TimeoutError:
            self._close_pipe()
            raise MeterTimeout(f"UA for SNRM from {self.description}", timeout) from None
        except LinkLost as exc:
            self._close_pipe()
            raise LinkLost(f"{exc} (awaiting UA for SNRM)") from exc
        except BaseException:
            self._close_pipe()
            raise
        self.negotiated = self._link.parameters

    async def send_apdu(self, apdu: bytes) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._link.send_apdu(apdu, time.monotonic())
        except _core.HdlcError as exc:
            raise LinkLost(f"{self.description}: cannot send: {exc}") from exc
        self.counters.apdus_sent += 1
        self._service()

    async def close(self, timeout: float = 3.0) -> None:
        if self._pipe is None or self._closing:
            return
        if self._error is None and self._link.state == "connected":
            loop = asyncio.get_running_loop()
            self._disconnected = loop.create_future()
            try:
                self._link.disconnect(time.monotonic())
                self._service()
                async with asyncio.timeout(timeout):
                    await self._disconnected
            except (TimeoutError, LinkLost, _core.HdlcError) as exc:
                log.debug("hdlc_disc_unanswered", peer=self.description, why=str(exc))
        self._cancel_timer()
        self._close_pipe()
        if self._error is None:
            self._error = LinkLost(f"{self.description}: transport closed")

    # ------------------------------------------------------------ driving the core
    @property
    def progress(self) -> int:
        """Frames that advanced a transfer: a segment that made us poll for the
        next one, an acknowledgement that let us send on. A bare RNR (the
        meter's application is still busy) or a broken frame is no progress."""
        return self._frames_progress

    def _data_received(self, data: bytes) -> None:
        self.counters.bytes_received += len(data)
        self._link.receive_data(data, time.monotonic())
        if self._service():
            self._frames_progress += 1

    def _on_timer(self) -> None:
        self._timer = None
        self._link.handle_timeout(time.monotonic())
        self._service()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _service(self) -> bool:
        """Drain events, write pending bytes, re-arm the timer; True when the
        link had something to send."""
        while (event := self._link.next_event()) is not None:
            self._on_event(event)
        out = self._link.data_to_send()
        if out and not self._closing:
            try:
                self._write(out)
            except LinkLost as exc:
                self._fail(exc)
        self._cancel_timer()
        deadline = self._link.next_deadline()
        if deadline is not None and not self._closing:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)
        return bool(out)

    def _on_event(self, event: _core.LinkEvent) -> None:
        if isinstance(event, _core.LinkApdu):
            self._deliver(event.apdu)
        elif isinstance(event, _core.LinkConnected):
            _resolve(self._connected)
        elif isinstance(event, _core.LinkDisconnected):
            _resolve(self._disconnected)
            self._fail(LinkLost(f"{self.description}: link disconnected"))
        elif isinstance(event, _core.LinkRetransmit):
            self.counters.retransmissions += 1
        elif isinstance(event, _core.LinkFrameError):
            self.counters.frame_errors += 1
            log.debug("hdlc_frame_error", peer=self.description, why=event.reason)
        elif isinstance(event, _core.LinkDown | _core.LinkRefused):
            what = "meter refused the link" if isinstance(event, _core.LinkRefused) else "link lost"
            error = LinkLost(f"{self.description}: {what}: {event.reason}")
            if self._disconnected is not None:
                _resolve(self._disconnected)
            if self._connected is not None and not self._connected.done():
                self._connected.set_exception(error)
            self._fail(error)
        elif isinstance(event, _core.LinkUi):
            log.debug("hdlc_ui_ignored", peer=self.description)
        elif isinstance(event, _core.LinkApduTooLong):
            self.counters.frame_errors += 1
            self._fail(
                LinkLost(
                    f"{self.description}: APDU of at least {event.received} bytes refused: "
                    f"longer than the limit of {event.limit} bytes (our max receive PDU size)"
                )
            )

    def _connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(
                LinkLost(f"{self.description}: connection closed before UA")
            )
        _resolve(self._disconnected)
        super()._connection_lost(exc)


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
