"""Transports: how APDUs reach a meter (asyncio; the Rust core owns the bytes).

A :class:`Transport` gives the client session four things: ``open()`` (connect
and set up the link), ``send_apdu(apdu)``, ``receive_apdu(timeout)`` and
``close()`` (graceful: HDLC DISC; idempotent), plus :class:`WireCounters` of
the bytes on the wire for metrics. APDUs are plain xDLMS/ACSE bytes (no LLC
header, no wrapper header).

Public API (stable; the simulator, the CLI and the head-end code against it):

* :class:`Transport` — the abstract base described above.
* :class:`WireCounters` — ``bytes_sent``, ``bytes_received``, ``apdus_sent``,
  ``apdus_received``, ``retransmissions``, ``frame_errors``.
* :data:`Connector` — ``async (protocol_factory) -> (asyncio transport, protocol)``:
  how a byte pipe is opened; :func:`tcp_connector` and, in
  :mod:`smmc_gateway.dlms.serial`, ``serial_connector`` make them.
* :class:`WrapperTransport` — TCP with the IEC 62056-47 wrapper (client wPort =
  client SAP, server wPort = logical device); ``WrapperTransport.tcp(host, port, ...)``.
* :class:`HdlcSettings` + :class:`HdlcTransport` — HDLC (IEC 62056-46) over any
  byte pipe, driven by ``_core.HdlcLink``; ``HdlcTransport.tcp(host, port, settings)``
  for HDLC over TCP (serial-to-IP converters).
* Serial/RS-485 (:class:`smmc_gateway.dlms.serial.SerialHdlcTransport`, with
  the shared :class:`smmc_gateway.dlms.serial.Bus`) and the optical port
  (:class:`smmc_gateway.dlms.optical_port.OpticalTransport`) build on HdlcTransport.

Limits: ``limit_received_apdu(size)`` (the session calls it with its max
receive PDU size) makes the framing refuse a longer APDU before buffering it:
a wrapper header announcing more closes the link, an HDLC APDU reassembled
past it fails the link, each with a LinkLost naming the limit and the size
seen. At most 64 received APDUs wait unread (more: LinkLost, a flood).

Errors: :class:`~smmc_gateway.dlms.errors.TransportError` (cannot open),
:class:`~smmc_gateway.dlms.errors.MeterTimeout` (nothing in time),
:class:`~smmc_gateway.dlms.errors.LinkLost` (closed, retries exhausted, refused).
"""

# ruff: noqa: ASYNC109  (an explicit per-call timeout is this API's contract)

from __future__ import annotations

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.errors import LinkLost
from smmc_gateway.dlms.hdlc_transport import HdlcSettings, HdlcTransport
from smmc_gateway.dlms.stream import (
    Connector,
    StreamTransport,
    Transport,
    WireCounters,
    tcp_connector,
)

log = structlog.get_logger("smmc_gateway.dlms")

WRAPPER_MAX_APDU = 0xFFFF
"""The wrapper's 16-bit length field: no frame is longer."""


class WrapperTransport(StreamTransport):
    """TCP (or any pipe) with the IEC 62056-47 wrapper header."""

    def __init__(
        self,
        connector: Connector,
        *,
        client_sap: int = 16,
        logical_device: int = 1,
        description: str = "wrapper",
    ) -> None:
        super().__init__(connector, f"{description} {client_sap}->{logical_device}")
        self.client_sap = client_sap
        self.logical_device = logical_device
        self._framer = _core.WrapperFramer(WRAPPER_MAX_APDU)

    @classmethod
    def tcp(
        cls, host: str, port: int, *, client_sap: int = 16, logical_device: int = 1
    ) -> WrapperTransport:
        return cls(
            tcp_connector(host, port),
            client_sap=client_sap,
            logical_device=logical_device,
            description=f"tcp {host}:{port} wrapper",
        )

    def limit_received_apdu(self, size: int) -> None:
        self._framer.max_apdu = max(0, min(size, WRAPPER_MAX_APDU))

    async def open(self, timeout: float = 10.0) -> None:
        await self._open_pipe(timeout)

    async def send_apdu(self, apdu: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._write(_core.wrapper_encode(self.client_sap, self.logical_device, apdu))
        self.counters.apdus_sent += 1

    def _data_received(self, data: bytes) -> None:
        self.counters.bytes_received += len(data)
        try:
            self._framer.feed(data)
            while (frame := self._framer.next_frame()) is not None:
                source, dest, apdu = frame
                if source != self.logical_device or dest != self.client_sap:
                    # Some meters answer from wPort 1 whatever the request: be liberal.
                    log.debug(
                        "wrapper_port_mismatch",
                        source=source,
                        dest=dest,
                        peer=self.description,
                    )
                self._deliver(apdu)
        except _core.WrapperError as exc:
            self.counters.frame_errors += 1
            self._fail(LinkLost(f"{self.description}: bad wrapper frame: {exc}"))
            self._close_pipe()

    async def close(self, timeout: float = 3.0) -> None:
        self._close_pipe()
        if self._error is None:
            self._error = LinkLost(f"{self.description}: transport closed")


__all__ = [
    "Connector",
    "HdlcSettings",
    "HdlcTransport",
    "StreamTransport",
    "Transport",
    "WireCounters",
    "WrapperTransport",
    "tcp_connector",
]
