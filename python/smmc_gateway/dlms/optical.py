"""The IEC 62056-21 optical-port sign-on in mode E, sans-IO, for both ends.

Mode E is how a technician's optical head reaches DLMS/COSEM: the reader signs
on at 300 baud 7E1 with a request message, the meter identifies itself (its
identification carries the enhanced-capability marker ``\\2`` when it offers
the binary HDLC mode), the reader answers with an acknowledgement choosing the
HDLC protocol and a baud rate, and both ends switch to that rate, 8N1, and
speak HDLC from then on.

    reader → meter   / ? [address] ! CR LF                     (request)
    meter  → reader  / XXX Z \\2 identification CR LF          (identification)
    reader → meter   ACK 2 Z 2 CR LF                           (ack: HDLC, rate Z, binary)

``XXX`` is the manufacturer's FLAG id (a lowercase third letter means the
meter can answer within 20 ms), ``Z`` the highest baud rate the meter offers,
as a character: ``0`` 300, ``1`` 600, ``2`` 1200, ``3`` 2400, ``4`` 4800,
``5`` 9600, ``6`` 19200. Some optical heads echo what the reader sends; the
reader tolerates an echo of its own request. These classes only turn bytes
into decisions; the asyncio transport owns the port, the timers and the baud
switch.
"""

from __future__ import annotations

from dataclasses import dataclass

ACK = 0x06
NAK = 0x15
CRLF = b"\r\n"
SIGN_ON_BAUD = 300
MAX_LINE = 128

BAUD_BY_CHAR: dict[str, int] = {
    "0": 300,
    "1": 600,
    "2": 1200,
    "3": 2400,
    "4": 4800,
    "5": 9600,
    "6": 19200,
}
CHAR_BY_BAUD: dict[int, str] = {v: k for k, v in BAUD_BY_CHAR.items()}


class OpticalHandshakeError(Exception):
    """The optical sign-on failed; the message says what the meter sent or did not."""


def _printable(data: bytes) -> str:
    return data.decode("ascii", "backslashreplace").replace("\r", "\\r").replace("\n", "\\n")


@dataclass(frozen=True)
class Identification:
    """What a meter says of itself in its identification message."""

    manufacturer: str
    baud_char: str
    mode_e: bool
    identification: str
    fast_reaction: bool

    @property
    def max_baud(self) -> int:
        return BAUD_BY_CHAR[self.baud_char]

    def encode(self) -> bytes:
        marker = "\\2" if self.mode_e else ""
        return f"/{self.manufacturer}{self.baud_char}{marker}{self.identification}".encode() + CRLF

    @classmethod
    def parse(cls, line: bytes) -> Identification:
        """Parse one identification message (with or without CR LF)."""
        text = line.rstrip(b"\r\n")
        shown = _printable(line)
        if not text.startswith(b"/"):
            raise OpticalHandshakeError(
                f"identification {shown!r} does not start with '/': not an IEC 62056-21 meter"
            )
        try:
            body = text[1:].decode("ascii")
        except UnicodeDecodeError:
            raise OpticalHandshakeError(
                f"identification {shown!r} has non-ASCII bytes (wrong baud rate or parity?)"
            ) from None
        if len(body) < 4:
            raise OpticalHandshakeError(
                f"identification {shown!r} is too short: expected /XXXZ<identification>"
            )
        manufacturer, baud_char, rest = body[:3], body[3], body[4:]
        if not manufacturer.isalpha():
            raise OpticalHandshakeError(
                f"identification {shown!r}: manufacturer id {manufacturer!r} is not three letters"
            )
        if baud_char not in BAUD_BY_CHAR:
            raise OpticalHandshakeError(
                f"identification {shown!r}: baud rate character {baud_char!r} is not one of "
                f"{''.join(BAUD_BY_CHAR)} (mode E rates)"
            )
        mode_e = False
        if rest.startswith("\\"):
            if len(rest) < 2:
                raise OpticalHandshakeError(
                    f"identification {shown!r}: enhanced identification '\\' without a character"
                )
            mode_e = rest[1] == "2"
            rest = rest[2:]
        return cls(
            manufacturer=manufacturer,
            baud_char=baud_char,
            mode_e=mode_e,
            identification=rest,
            fast_reaction=manufacturer[2].islower(),
        )


def request_message(device_address: str = "") -> bytes:
    """The reader's sign-on request ``/?[address]!CR LF``."""
    if len(device_address) > 32 or not all(c.isalnum() for c in device_address):
        raise ValueError(f"device address {device_address!r}: expected up to 32 letters or digits")
    return f"/?{device_address}!".encode() + CRLF


def ack_message(baud: int) -> bytes:
    """The reader's acknowledgement choosing mode E (HDLC) at ``baud``."""
    if baud not in CHAR_BY_BAUD:
        raise ValueError(f"baud rate {baud} is not a mode E rate: one of {sorted(CHAR_BY_BAUD)}")
    return bytes([ACK]) + f"2{CHAR_BY_BAUD[baud]}2".encode() + CRLF


class OpticalSignOn:
    """The reader's side of the mode E sign-on.

    ``start()`` gives the request; feed what arrives to ``receive_data``; once
    ``identification`` is set, ``acknowledgement()`` gives the bytes to send at
    300 baud, after which the caller switches the port to ``baud`` 8N1.
    """

    def __init__(self, *, device_address: str = "", max_baud: int = 9600) -> None:
        if max_baud not in CHAR_BY_BAUD:
            raise ValueError(
                f"max baud {max_baud} is not a mode E rate: one of {sorted(CHAR_BY_BAUD)}"
            )
        self._request = request_message(device_address)
        self._max_baud = max_baud
        self._buffer = bytearray()
        self.identification: Identification | None = None

    def start(self) -> bytes:
        return self._request

    @property
    def pending(self) -> bytes:
        """Bytes received and not (yet) understood as an identification."""
        return bytes(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; raises :class:`OpticalHandshakeError` on a bad answer."""
        if self.identification is not None:
            return
        self._buffer += data
        while True:
            # An echoing head returns our own request first: drop it.
            if self._buffer.startswith(self._request):
                del self._buffer[: len(self._request)]
                continue
            # Leading noise (e.g. a NUL from the head powering up) before '/'.
            start = self._buffer.find(b"/")
            if start < 0 and self._buffer.rstrip(CRLF) == bytes([NAK]):
                raise OpticalHandshakeError(
                    f"meter answered NAK to the sign-on request '{_printable(self._request)}' "
                    "(wrong device address?)"
                )
            if start < 0:
                if len(self._buffer) > MAX_LINE:
                    raise OpticalHandshakeError(
                        "no identification message, only noise: "
                        f"{_printable(bytes(self._buffer[:40]))!r}…"
                    )
                return
            if start > 0:
                del self._buffer[:start]
            end = self._buffer.find(CRLF)
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise OpticalHandshakeError(
                        f"identification message longer than {MAX_LINE} bytes without CR LF"
                    )
                return
            line = bytes(self._buffer[: end + 2])
            del self._buffer[: end + 2]
            if line == self._request:
                continue
            ident = Identification.parse(line)
            if not ident.mode_e:
                raise OpticalHandshakeError(
                    f"meter {ident.manufacturer} {ident.identification!r} does not offer mode E "
                    "(no '\\2' in its identification): it cannot speak HDLC on this port"
                )
            self.identification = ident
            return

    @property
    def baud(self) -> int:
        """The agreed rate: the lower of the meter's and ours."""
        if self.identification is None:
            raise OpticalHandshakeError("no identification received yet")
        return min(self.identification.max_baud, self._max_baud)

    def acknowledgement(self) -> bytes:
        return ack_message(self.baud)


class OpticalResponder:
    """The meter's side of the mode E sign-on (used by the simulator).

    Feed received bytes to ``receive_data``; it returns what to send back and,
    once the reader's acknowledgement arrived, sets ``agreed_baud`` (the caller
    then switches to that rate, 8N1, and hands the line to HDLC). A meter built
    with ``mode_e=False`` identifies without the marker, and refuses an HDLC
    acknowledgement with NAK.
    """

    def __init__(
        self,
        *,
        manufacturer: str = "SMC",
        identification: str = "SIM-METER",
        max_baud: int = 9600,
        mode_e: bool = True,
        device_address: str = "",
    ) -> None:
        self.ident = Identification(
            manufacturer=manufacturer,
            baud_char=CHAR_BY_BAUD[max_baud],
            mode_e=mode_e,
            identification=identification,
            fast_reaction=manufacturer[2:3].islower(),
        )
        self._address = device_address
        self._buffer = bytearray()
        self.identified = False
        self.agreed_baud: int | None = None

    def receive_data(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while True:
            end = self._buffer.find(CRLF)
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                return bytes(out)
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            start = line.rfind(b"/?")
            if start >= 0 and line.endswith(b"!"):
                address = line[start + 2 : -1].decode("ascii", "replace")
                if address in ("", self._address):
                    self.identified = True
                    out += self.ident.encode()
                continue
            ack_at = line.rfind(bytes([ACK]))
            if self.identified and ack_at >= 0 and len(line) - ack_at == 4:
                protocol, baud_char, mode = (chr(b) for b in line[ack_at + 1 : ack_at + 4])
                requested = BAUD_BY_CHAR.get(baud_char)
                if (
                    protocol == "2"
                    and mode == "2"
                    and self.ident.mode_e
                    and requested is not None
                    and requested <= self.ident.max_baud
                ):
                    self.agreed_baud = requested
                    return bytes(out)
                out.append(NAK)
