"""IEC 62056-21 mode E over TCP: the sign-on, then HDLC, on one TCP connection.

Meters whose optical or electrical port is reached through an optical-to-TCP or
serial-to-TCP converter still expect the mode E handshake before HDLC: the
request ``/?!``, their identification (with ``\\2``: mode E offered), and the
acknowledgement ``ACK 2 Z 2`` that selects the HDLC protocol. The 300 baud 7E1
sign-on and the switch to the agreed rate are the converter's business (it owns
the UART); on the TCP side only the bytes of the handshake matter. The
acknowledgement still names a rate (``Z``): the meter's highest, capped by
``max_baud`` (converters that follow the switch take it from there).

    ModeETcpTransport("192.0.2.7", 4059, HdlcSettings(...)).open()

A meter that does not identify, offers no mode E, or answers NAK ends in
:class:`~smmc_gateway.dlms.optical_port.OpticalSignOnError` naming the address
and what the meter sent.
"""

from __future__ import annotations

from smmc_gateway.dlms.hdlc_transport import HdlcSettings
from smmc_gateway.dlms.optical import CHAR_BY_BAUD
from smmc_gateway.dlms.optical_port import ModeESignOnTransport, OpticalSignOnError
from smmc_gateway.dlms.stream import tcp_connector

DEFAULT_MAX_BAUD = max(CHAR_BY_BAUD)
"""Over TCP the acknowledgement offers the meter's own highest rate (up to 19200)."""


class ModeETcpTransport(ModeESignOnTransport):
    """HDLC over TCP after the mode E sign-on (see the module doc)."""

    def __init__(
        self,
        host: str,
        port: int,
        settings: HdlcSettings,
        *,
        max_baud: int = DEFAULT_MAX_BAUD,
        device_address: str = "",
        identification_timeout: float = 2.0,
        sign_on_attempts: int = 3,
        nak_window: float = 0.3,
    ) -> None:
        super().__init__(
            tcp_connector(host, port),
            settings,
            description=f"tcp {host}:{port} mode E hdlc",
            where=f"tcp {host}:{port}",
            max_baud=max_baud,
            device_address=device_address,
            identification_timeout=identification_timeout,
            sign_on_attempts=sign_on_attempts,
            nak_window=nak_window,
        )
        self.host = host
        self.port = port

    def _silence_hint(self) -> str:
        return (
            "is the converter's line on the meter's port, and does the meter's port "
            "speak IEC 62056-21?"
        )


__all__ = ["ModeETcpTransport", "OpticalSignOnError"]
