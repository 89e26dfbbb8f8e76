"""Typed stubs of the Rust core (`rust/src/py/`): the sans-IO DLMS/COSEM codecs.

This file is the contract between the Rust core and the Python shell. Every
function raises a subclass of :class:`DlmsError` on bad input, whose message and
attributes name the layer, the field and the byte offset.

Conventions used throughout:
* ``now`` is a monotonic time in seconds (``time.monotonic()`` in the shell, a
  fake clock in tests); the core never reads a clock.
* APDUs are ``bytes`` without any HDLC LLC header or wrapper header.
* A *typed value* is the typed JSON of ``shared/design/CLI.md``:
  ``{"type": "long-unsigned", "value": 5}``; arrays and structures hold lists of
  typed values; octet-strings and bit-strings are lowercase hex strings;
  compact-array is ``{"type": "compact-array", "description": <desc>,
  "value": [typed values]}``, a description being a type name, ``["array", n,
  desc]`` or ``["structure", [desc, ...]]``; a 12-byte octet-string or a
  date-time that is a valid COSEM date-time also carries ``"datetime":
  "ISO-8601"`` (only ``value`` is read on input).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, TypeAlias

__version__: str

TypedValue: TypeAlias = dict[str, Any]

# ---------------------------------------------------------------- errors
class DlmsError(ValueError):
    layer: str
    field: str
    offset: int

class HdlcError(DlmsError): ...
class WrapperError(DlmsError): ...
class AxdrError(DlmsError): ...
class ApduError(DlmsError): ...
class SecurityError(DlmsError): ...
class AuthenticationError(SecurityError):
    """An AES-GCM/GMAC tag did not match: wrong key, or tampered data."""

class ProfileError(DlmsError): ...

# ---------------------------------------------------------------- CRC
def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 (HDLC FCS), as the integer; on the wire it is little-endian."""

# ---------------------------------------------------------------- A-XDR
def decode(data: bytes) -> TypedValue:
    """One tagged A-XDR value to its typed value tree. Trailing bytes are an error."""

def encode(value: TypedValue) -> bytes:
    """A typed value tree to A-XDR bytes (inverse of :func:`decode`)."""

def decode_datetime(data: bytes) -> datetime | None:
    """A 12-byte COSEM date-time to a ``datetime`` (aware when the deviation is
    specified, naive otherwise); ``None`` when year/month/day/hour/minute are
    not specified. Raises :class:`AxdrError` when the bytes are not a valid
    date-time."""

def encode_datetime(
    value: datetime, *, clock_status: int | None = None, deviation: int | None = None
) -> bytes:
    """A ``datetime`` to 12 COSEM date-time bytes. An aware datetime's UTC
    offset becomes the deviation (minutes, sign as in the Blue Book: minutes
    *from local time to UTC*, i.e. UTC+1 is -60) unless ``deviation`` is given;
    a naive one has deviation 0x8000 (not specified). ``clock_status`` defaults
    to 0xFF (not specified)."""

# ---------------------------------------------------------------- profiles
def decode_profile_buffer(data: bytes, capture_period: int | None = None) -> list[tuple[Any, ...]]:
    """A profile-generic buffer (an array of structures, or a compact-array of
    structures) to rows. date-time octet-strings become ``datetime`` (aware when
    the deviation is specified); a null-data clock is derived from the previous
    row plus ``capture_period`` seconds (``ProfileError`` when it cannot be);
    integers become ``int``, floats ``float``, booleans ``bool``, other
    octet-strings ``bytes``, visible/utf8 strings ``str``, null-data ``None``,
    nested arrays/structures ``list``/``tuple``. The GIL is released."""

class ColumnSpec:
    """One captured value column of a profile, for JSON output."""

    def __init__(
        self,
        index: int,
        reading_type: str,
        *,
        obis: str = "",
        unit: str = "",
        scaler: int = 0,
    ) -> None: ...

def profile_to_json(
    data: bytes,
    *,
    clock_column: int,
    columns: Sequence[ColumnSpec],
    status_column: int | None = None,
    capture_period: int | None = None,
) -> bytes:
    """A profile-generic buffer straight to the UTF-8 JSON of the
    ``IntervalBlocks`` list of a MeterReadings payload (docs/schemas):
    ``[{"ReadingType": {"ref": reading_type, "obis": .., "unit": ..},
    "IntervalReadings": [{"timeStamp": ISO-8601 UTC, "value": number
    (value × 10^scaler, exact decimal), "ReadingQualities": [...]?}, ...]}, ...]``
    (one block per column). The GIL is released."""

# ---------------------------------------------------------------- HDLC
FrameKind: TypeAlias = Literal["I", "RR", "RNR", "SNRM", "DISC", "UA", "DM", "FRMR", "UI"]

class HdlcFrame:
    """One decoded HDLC frame (frame format type 3)."""

    kind: FrameKind
    segmented: bool
    dest_upper: int
    dest_lower: int | None
    src_upper: int
    src_lower: int | None
    control: int
    send_seq: int | None
    """N(S) for I frames."""
    recv_seq: int | None
    """N(R) for I, RR and RNR frames."""
    poll_final: bool
    info: bytes
    """The information field (for I/UI frames it still holds the LLC header if any)."""
    length: int
    """Bytes the frame took on the wire, flags included."""

def hdlc_encode(
    kind: FrameKind,
    *,
    dest_upper: int,
    dest_lower: int | None = None,
    src_upper: int,
    src_lower: int | None = None,
    send_seq: int = 0,
    recv_seq: int = 0,
    poll_final: bool = True,
    segmented: bool = False,
    info: bytes = b"",
    address_size: int | None = None,
) -> bytes:
    """One complete frame, flags included. An address given with a lower part
    (a server address) takes 2 or 4 bytes (``address_size``, or the smallest
    that fits); an address without one (the client, or a server upper address
    alone) takes one byte. ``send_seq`` is used by I frames, ``recv_seq`` by
    I, RR and RNR frames."""

def hdlc_decode(frame: bytes) -> HdlcFrame:
    """Exactly one frame (with or without the 0x7E flags); checks HCS and FCS."""

class HdlcFramer:
    """Finds frames in a noisy byte stream and resynchronises after garbage or
    a bad FCS. Frames whose length field exceeds ``max_frame`` (bytes between
    the flags; at most 2047) are skipped, so the buffer stays bounded."""

    def __init__(self, max_frame: int = 2048) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def next_frame(self) -> HdlcFrame | None: ...
    def drain(self) -> list[HdlcFrame]:
        """Every complete frame buffered now (bulk form of :meth:`next_frame`;
        the GIL is released while decoding)."""
    def errors(self) -> list[str]:
        """Messages for what was skipped since the last call (bad FCS, garbage)."""
    @property
    def discarded_bytes(self) -> int: ...

LinkEvent: TypeAlias = tuple[str, Any]
"""Events of :class:`HdlcLink`:

* ``("connected", {"max_info_tx", "max_info_rx", "window_tx", "window_rx"})`` —
  client: UA received for our SNRM; server: SNRM received and UA queued.
* ``("apdu", bytes)`` — a complete APDU (segments reassembled, LLC removed).
* ``("ui", bytes)`` — data of a UI frame (LLC removed).
* ``("disconnected", None)`` — client: UA/DM for our DISC; server: DISC received.
* ``("refused", str)`` — the peer answered DM or FRMR where it should not.
* ``("retransmit", int)`` — a timeout fired and the link re-sent (attempt number).
* ``("link_lost", str)`` — retries exhausted; the link is now disconnected.
* ``("frame_error", str)`` — a frame was dropped (bad FCS, wrong address, …).
"""

class HdlcLink:
    """The sans-IO HDLC link state machine (IEC 62056-46), client or server role.

    The client polls and owns the response timer (``response_timeout``,
    ``max_retries``); the server answers each poll and adopts the client
    address of the SNRM it accepts (``client_address`` is the client's own
    address in the client role). ``inactivity_timeout`` (both roles) ends a
    connected but silent link with ``("link_lost", ...)``. A server holds a
    poll that delivered a complete APDU until :meth:`send_apdu` answers it;
    polled again before that, it answers RNR and the client re-polls with RR
    when its timer fires (counted as a retransmission). ``connect`` and
    ``disconnect`` raise :class:`HdlcError` in the server role; ``send_apdu``
    raises it when the link is not connected. Windows are 1..7 and
    information field lengths 1..2030 (``ValueError`` otherwise)."""

    def __init__(
        self,
        role: Literal["client", "server"],
        *,
        client_address: int,
        server_upper: int = 1,
        server_lower: int | None = None,
        address_size: int | None = None,
        max_info_tx: int = 128,
        max_info_rx: int = 128,
        window_tx: int = 1,
        window_rx: int = 1,
        response_timeout: float = 3.0,
        max_retries: int = 3,
        inactivity_timeout: float | None = None,
    ) -> None: ...
    @property
    def state(self) -> Literal["disconnected", "connecting", "connected", "disconnecting"]: ...
    @property
    def parameters(self) -> dict[str, int]:
        """The negotiated max_info_tx/max_info_rx/window_tx/window_rx."""
    def connect(self, now: float) -> None:
        """Client: queue SNRM with our parameters."""
    def disconnect(self, now: float) -> None:
        """Client: queue DISC."""
    def send_apdu(self, apdu: bytes, now: float) -> None:
        """Queue an APDU: adds the LLC header (client E6 E6 00, server E6 E7 00)
        and segments it to the negotiated information field length and window."""
    def send_ui(self, data: bytes) -> None:
        """Queue one UI frame (LLC header added, P/F set), in any state, e.g. a
        server's push; raises :class:`HdlcError` when it does not fit the
        information field length (the negotiated one once connected)."""
    def receive_data(self, data: bytes, now: float) -> None: ...
    def next_event(self) -> LinkEvent | None: ...
    def data_to_send(self) -> bytes: ...
    def next_deadline(self) -> float | None: ...
    def handle_timeout(self, now: float) -> None: ...

# ---------------------------------------------------------------- wrapper
def wrapper_encode(source: int, dest: int, apdu: bytes) -> bytes:
    """A wrapper frame (IEC 62056-47): version 1, source and destination wPorts, length."""

class WrapperFramer:
    """Splits a TCP byte stream into wrapper frames."""

    def __init__(self, max_apdu: int = 65535) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def next_frame(self) -> tuple[int, int, bytes] | None:
        """``(source, dest, apdu)``, or None until a whole frame is buffered.
        Raises :class:`WrapperError` on a bad version or oversize length; the
        stream cannot be resynchronised, so the buffered bytes are dropped and
        the caller should close the connection."""

# ---------------------------------------------------------------- APDUs
def decode_apdu(data: bytes) -> dict[str, Any]:
    """Any xDLMS or ACSE APDU to a dict naming every field; key ``"apdu"`` names
    the kind (``"aarq"``, ``"aare"``, ``"rlrq"``, ``"rlre"``,
    ``"get-request-normal"``, ``"get-response-with-datablock"``, …,
    ``"data-notification"``, ``"exception-response"``, ``"glo-get-request"``
    (ciphered kinds carry ``security_control``, ``invocation_counter``,
    ``ciphertext``), ``"general-glo-ciphering"``, ``"general-block-transfer"``, …).
    A-XDR data inside (GET results, SET values, ACTION parameters,
    notification bodies) stays as raw ``bytes`` under keys ending in ``_raw``;
    decode them with :func:`decode` or :func:`decode_profile_buffer`."""

def encode_apdu(apdu: dict[str, Any]) -> bytes:
    """The inverse of :func:`decode_apdu`."""

# ---------------------------------------------------------------- security suite 0
def gcm_encrypt(
    key: bytes, iv: bytes, aad: bytes, plaintext: bytes, tag_len: int = 12
) -> bytes:
    """AES-GCM-128: ciphertext || tag."""

def gcm_decrypt(
    key: bytes, iv: bytes, aad: bytes, data: bytes, tag_len: int = 12
) -> bytes:
    """AES-GCM-128 of ciphertext || tag; raises :class:`AuthenticationError`."""

SecurityControl: TypeAlias = int
"""Security control byte: 0x10 authentication only, 0x20 encryption only,
0x30 both (suite 0 in the low nibble; bit 6 key set; bit 7 compression)."""

def protect(
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes,
    ak: bytes,
    plaintext: bytes,
) -> bytes:
    """SC || IC || (ciphertext or plaintext) || tag — the ciphered content of a
    glo-/ded- APDU or of general-glo-ciphering, per Green Book suite 0."""

def unprotect(
    system_title: bytes, ek: bytes, ak: bytes, data: bytes
) -> tuple[int, int, bytes]:
    """The inverse of :func:`protect`: ``(security_control, invocation_counter,
    plaintext)``. Raises :class:`AuthenticationError` on a bad tag."""

def cipher_apdu(
    apdu: bytes,
    *,
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes,
    ak: bytes,
    dedicated: bool = False,
    general: bool = False,
) -> bytes:
    """Wrap a plain xDLMS APDU in its glo- (or ded-) ciphered APDU, or in
    general-glo-ciphering (``general=True``, carries the system title)."""

def decipher_apdu(
    data: bytes, *, system_title: bytes | None, ek: bytes, ak: bytes
) -> tuple[bytes, int, int, bytes]:
    """A glo-/ded-/general-glo-ciphered APDU to ``(plain_apdu,
    security_control, invocation_counter, sender_system_title)``;
    ``system_title`` is the sender's (needed for glo-/ded- forms, ignored when
    the APDU carries one)."""

def hls_gmac(
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes,
    ak: bytes,
    challenge: bytes,
) -> bytes:
    """HLS mechanism 5: SC || IC || GMAC tag (12 bytes) over SC || AK || challenge."""

def aes_key_wrap(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 key wrap."""

def aes_key_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """RFC 3394 key unwrap; raises :class:`AuthenticationError` on an integrity failure."""
