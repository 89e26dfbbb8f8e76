"""Typed stubs of the Rust core (`rust/src/py/`): the sans-IO DLMS/COSEM codecs.

This file is the contract between the Rust core and the Python shell. Every
function raises a subclass of :class:`DlmsError` on bad input, whose message and
attributes name the layer, the field and the byte offset.

Conventions used throughout:
* ``now`` is a monotonic time in seconds (``time.monotonic()`` in the shell, a
  fake clock in tests); the core never reads a clock.
* APDUs are ``bytes`` without any HDLC LLC header or wrapper header.
* A *typed value* is the typed JSON the CLI and the MQTT payloads use:
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

from smmc_gateway.cosem.values import TypedValue as TypedValue

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

def decode_data_notification_untagged(
    apdu: bytes,
) -> tuple[int, bytes | None, TypedValue, int]:
    """A data-notification whose body follows the quirk
    ``untagged-attribute-descriptors`` (array items ``{attribute descriptor
    without data tags, value}``, Sagemcom XT211; each descriptor returned as a structure
    {long-unsigned, octet-string, integer}): ``(long-invoke-id, date-time or None, body,
    descriptors read)`` (0 descriptors: the body was plain A-XDR); the body must end the
    APDU. :class:`ApduError`/:class:`AxdrError` otherwise."""

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

DateTimeFields = tuple[
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
    int | None,
]
"""(year, month, day, weekday, hour, minute, second, hundredths, deviation,
clock_status); ``None`` where the field is not specified (0xFF, year 0xFFFF,
deviation 0x8000); month/day 0xFD/0xFE kept as they are."""

def decode_datetime_fields(data: bytes) -> DateTimeFields:
    """12 COSEM date-time bytes to their fields, every field validated
    (:class:`AxdrError` naming the field, e.g. ``"date-time month"``, and its
    byte offset; a day of month that does not exist in its month is refused)."""

def encode_datetime_fields(
    year: int | None,
    month: int | None,
    day: int | None,
    weekday: int | None,
    hour: int | None,
    minute: int | None,
    second: int | None,
    hundredths: int | None,
    deviation: int | None,
    clock_status: int | None,
) -> bytes:
    """The fields (as :func:`decode_datetime_fields` returns them) to 12 bytes,
    validated exactly as a decode validates them (:class:`AxdrError` naming
    the field); deviation -720..720, ``None`` = not specified."""

def clock_status_bits() -> list[tuple[int, str]]:
    """The clock status bits of a date-time (Blue Book): ``(bit, name)``, names
    ``invalid-value`` 0x01, ``doubtful-value`` 0x02, ``different-clock-base`` 0x04,
    ``invalid-clock-status`` 0x08, ``daylight-saving-active`` 0x80."""

DateFields = tuple[int | None, int | None, int | None, int | None]
"""A COSEM date: (year, month, day, weekday), ``None`` where not specified."""
TimeFields = tuple[int | None, int | None, int | None, int | None]
"""A COSEM time: (hour, minute, second, hundredths), ``None`` where not specified."""

def decode_date_fields(data: bytes) -> DateFields:
    """5 COSEM date bytes to their fields, validated (:class:`AxdrError` naming
    the field, e.g. ``"date month"``, and its offset)."""

def encode_date_fields(
    year: int | None, month: int | None, day: int | None, weekday: int | None
) -> bytes:
    """A COSEM date's fields to 5 bytes, validated as a decode validates them."""

def decode_time_fields(data: bytes) -> TimeFields:
    """4 COSEM time bytes to their fields, validated (``"time hour"``, ...)."""

def encode_time_fields(
    hour: int | None, minute: int | None, second: int | None, hundredths: int | None
) -> bytes:
    """A COSEM time's fields to 4 bytes, validated as a decode validates them."""

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
    dest_size: int
    """Bytes of the destination address on the wire: 1, 2 or 4."""
    src_size: int
    """Bytes of the source address on the wire: 1, 2 or 4."""
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

def hdlc_parameters(info: bytes) -> list[tuple[int, str | None, int, int]]:
    """The parameters of an SNRM/UA information field in order: ``(identifier,
    name or None, value, offset within info)``; names ``max_info_field_length_tx``/
    ``_rx``, ``window_size_tx``/``_rx``. :class:`HdlcError` naming the field for a
    bad format/group identifier or a parameter running past the group length."""

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

class LinkParameters:
    """The negotiated HDLC parameters."""

    @property
    def max_info_tx(self) -> int: ...
    @property
    def max_info_rx(self) -> int: ...
    @property
    def window_tx(self) -> int: ...
    @property
    def window_rx(self) -> int: ...

# Events of :class:`HdlcLink`, one frozen class per kind; ``kind`` names it.
class LinkConnected:
    """Client: UA received for our SNRM; server: SNRM received and UA queued."""

    kind: Literal["connected"]
    @property
    def parameters(self) -> LinkParameters: ...

class LinkApdu:
    """A complete APDU (segments reassembled, LLC removed)."""

    kind: Literal["apdu"]
    @property
    def apdu(self) -> bytes: ...

class LinkUi:
    """The data of a UI frame (LLC removed)."""

    kind: Literal["ui"]
    @property
    def data(self) -> bytes: ...

class LinkDisconnected:
    """Client: UA/DM for our DISC; server: DISC received."""

    kind: Literal["disconnected"]

class LinkRefused:
    """The peer answered DM or FRMR where it should not."""

    kind: Literal["refused"]
    @property
    def reason(self) -> str: ...

class LinkRetransmit:
    """A timeout fired and the link re-sent (``attempt`` from 1)."""

    kind: Literal["retransmit"]
    @property
    def attempt(self) -> int: ...

class LinkDown:
    """Retries exhausted (or the inactivity timeout): the link is disconnected."""

    kind: Literal["link_lost"]
    @property
    def reason(self) -> str: ...

class LinkFrameError:
    """A frame was dropped (bad FCS, wrong address, ...)."""

    kind: Literal["frame_error"]
    @property
    def reason(self) -> str: ...

class LinkApduTooLong:
    """A (segmented) APDU grew past ``max_reassembly``: its segments are
    acknowledged and dropped up to the last one; ``received`` counts its bytes
    seen so far (LLC header excluded)."""

    kind: Literal["apdu_too_long"]
    @property
    def received(self) -> int: ...
    @property
    def limit(self) -> int: ...

LinkEvent: TypeAlias = (
    LinkConnected
    | LinkApdu
    | LinkUi
    | LinkDisconnected
    | LinkRefused
    | LinkRetransmit
    | LinkDown
    | LinkFrameError
    | LinkApduTooLong
)

class HdlcLink:
    """The sans-IO HDLC link state machine (IEC 62056-46), client or server role.

    The client polls and owns the response timer (``response_timeout``,
    ``max_retries``); the server answers each poll and adopts the client
    address of the SNRM it accepts (``client_address`` is the client's own
    address in the client role). ``inactivity_timeout`` (both roles) ends a
    connected but silent link with :class:`LinkDown`. A server holds a
    poll that delivered a complete APDU until :meth:`send_apdu` answers it;
    polled again before that, it answers RNR and the client re-polls with RR
    when its timer fires (counted as a retransmission). ``connect`` and
    ``disconnect`` raise :class:`HdlcError` in the server role; ``send_apdu``
    raises it when the link is not connected. Windows are 1..7 and
    information field lengths 1..2030 (``ValueError`` otherwise).
    ``max_reassembly`` bounds an APDU reassembled from segments (LLC header
    excluded; 1..1 MiB, the hard maximum and default): a client sets it to
    the max receive PDU size it proposed."""

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
        max_reassembly: int = 1048576,
    ) -> None: ...
    @property
    def max_reassembly(self) -> int:
        """The longest APDU (LLC header excluded) reassembled from segments."""
    def set_max_reassembly(self, limit: int) -> None:
        """Change the reassembly limit (1..1 MiB, else ``ValueError``); it
        applies from the next segment on."""
    @property
    def state(self) -> Literal["disconnected", "connecting", "connected", "disconnecting"]: ...
    @property
    def parameters(self) -> LinkParameters:
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

def wrapper_header(data: bytes) -> tuple[int, int, int, int]:
    """The 8-byte wrapper header at the start of ``data``, as read (the version
    is not checked): ``(version, source wPort, destination wPort, APDU length)``;
    :class:`WrapperError` (field ``header``) when fewer than 8 bytes are given."""

class WrapperFramer:
    """Splits a TCP byte stream into wrapper frames."""

    def __init__(self, max_apdu: int = 65535) -> None: ...
    @property
    def max_apdu(self) -> int:
        """The longest APDU accepted (``max_apdu`` capped at 65535, the length
        field's range); a header announcing more is a :class:`WrapperError`
        (raised as soon as the header is in, before the APDU is buffered).
        Settable (buffered bytes are kept; the next header is checked)."""
    @max_apdu.setter
    def max_apdu(self, value: int) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def next_frame(self) -> tuple[int, int, bytes] | None:
        """``(source, dest, apdu)``, or None until a whole frame is buffered.
        Raises :class:`WrapperError` on a bad version or oversize length; the
        stream cannot be resynchronised, so the buffered bytes are dropped and
        the caller should close the connection."""

# ---------------------------------------------------------------- APDUs
def decode_apdu(data: bytes) -> dict[str, Any]:
    """Any xDLMS or ACSE APDU to a dict naming every field. Raises
    :class:`ApduError` (``field`` and ``offset`` name what was wrong and where)
    on unknown tags, truncation, trailing bytes or A-XDR payloads that do not
    parse. :func:`encode_apdu` is the exact inverse.

    Conventions: key ``"apdu"`` names the kind (one of :func:`apdu_kinds`);
    every other key is present in the decoded dict (``None`` when the optional
    field is absent). Integers are ``int``; octet strings are ``bytes``; OBIS
    codes are ``"a.b.c.d.e.f"``; enumerations are their Blue/Green Book names
    in kebab case, or a plain ``int`` for a value without a name (both are
    accepted by :func:`encode_apdu`). A-XDR payloads stay raw ``bytes`` under
    keys ending in ``_raw`` (exactly one tagged A-XDR value; decode them with
    :func:`decode` or :func:`decode_profile_buffer`). Block payloads
    (``raw_data``, ``block_data``) and ciphertext are opaque ``bytes``.

    Shared shapes::

        Attribute   = {"class_id": int, "obis": str, "attribute_id": int}
        AttributeSel = Attribute | {"access_selection": None | {"selector": int,
                                                                "parameters_raw": bytes}}
        Method      = {"class_id": int, "obis": str, "method_id": int}
        GetDataResult = {"data_raw": bytes} | {"data_access_result": DAR}
        DAR  = data-access-result: "success", "hardware-fault", "temporary-failure",
               "read-write-denied", "object-undefined", "object-class-inconsistent",
               "object-unavailable", "type-unmatched", "scope-of-access-violated",
               "data-block-unavailable", "long-get-aborted", "no-long-get-in-progress",
               "long-set-aborted", "no-long-set-in-progress", "data-block-number-invalid",
               "other-reason"
        AR   = action-result: as DAR but "long-action-aborted",
               "no-long-action-in-progress" instead of the get/set/block ones
        Block (flattened into the APDU dict) = "last_block": bool,
               "block_number": int (u32), "raw_data": bytes
        invoke_id_and_priority: int (the raw byte, e.g. 0xC1)
        Conformance = list of bit names, bit 0 first: "reserved-zero",
               "general-protection", "general-block-transfer", "read", "write",
               "unconfirmed-write", "delta-value-encoding", "reserved-seven",
               "attribute0-supported-with-set", "priority-mgmt-supported",
               "attribute0-supported-with-get", "block-transfer-with-get-or-read",
               "block-transfer-with-set-or-write", "block-transfer-with-action",
               "multiple-references", "information-report", "data-notification",
               "access", "parameterized-access", "get", "set", "selective-access",
               "event-notification", "action" (encode also accepts the 24-bit int)

    ACSE (BER)::

        "aarq": protocol_version: bytes|None (bit-string content, e.g. b"\\x07\\x80"),
            application_context_name: "logical-name" | "short-name" |
                "logical-name-with-ciphering" | "short-name-with-ciphering" | dotted OID,
            called_ap_title, called_ae_qualifier: bytes|None,
            called_ap_invocation_id, called_ae_invocation_id: int|None,
            calling_ap_title: bytes|None (client system title),
            calling_ae_qualifier: bytes|None,
            calling_ap_invocation_id, calling_ae_invocation_id: int|None,
            sender_acse_requirements: bool|None (authentication functional unit),
            mechanism_name: None | "none" | "lls" | "hls" | "hls-md5" | "hls-sha1" |
                "hls-gmac" | "hls-sha256" | "hls-ecdsa" | dotted OID,
            calling_authentication_value: bytes|None (password or challenge),
            implementation_information: bytes|None,
            user_information: None | dict: an "initiate-request",
                "initiate-response" or "confirmed-service-error", their glo-/ded-
                ciphered forms, or "general-glo-ciphering"/"general-ded-ciphering"
                (the same set is allowed in AARE, RLRQ and RLRE)
        "aare": protocol_version, application_context_name (None when absent),
            result: "accepted" | "rejected-permanent" | "rejected-transient",
            result_source_diagnostic: None | {"source": "acse-service-user" |
                "acse-service-provider", "value": name | int}; user values "null",
                "no-reason-given", "application-context-name-not-supported",
                "calling-ap-title-not-recognized", …, "authentication-mechanism-name-
                not-recognised", "authentication-mechanism-name-required",
                "authentication-failure", "authentication-required"; provider
                values "null", "no-reason-given", "no-common-acse-version",
            responding_ap_title (server system title), responding_ae_qualifier:
                bytes|None, responding_ap_invocation_id,
                responding_ae_invocation_id: int|None,
            responder_acse_requirements: bool|None, mechanism_name,
            responding_authentication_value: bytes|None (server challenge),
            implementation_information: bytes|None,
            user_information: None | dict ("initiate-response",
                "glo-initiate-response", "confirmed-service-error", ...)
        "rlrq": reason: None | "normal" | "urgent" | "user-defined" | int,
            user_information: None | dict
        "rlre": reason: None | "normal" | "not-finished" | "user-defined" | int,
            user_information: None | dict

    xDLMS initiate and errors::

        "initiate-request": dedicated_key: bytes|None, response_allowed:
            bool|None (None = DEFAULT TRUE, encoded as 0x00),
            proposed_quality_of_service: int|None, proposed_dlms_version_number: int,
            proposed_conformance: Conformance, client_max_receive_pdu_size: int
        "initiate-response": negotiated_quality_of_service: int|None,
            negotiated_dlms_version_number: int, negotiated_conformance: Conformance,
            server_max_receive_pdu_size: int, vaa_name: int (0x0007 LN, 0xFA00 SN)
        "confirmed-service-error": service: "initiate-error" | "get-status" | …
            | "read" | "write" | …, error: "application-reference" |
            "hardware-resource" | "vde-state-error" | "service" | "definition" |
            "access" | "initiate" | "load-data-set" | "change-scope" | "task" |
            "other", value: int, or for error "initiate" one of "other",
            "dlms-version-too-low", "incompatible-conformance",
            "pdu-size-too-short", "refused-by-the-vde-handler"
        "exception-response": state_error: "service-not-allowed" |
            "service-unknown" | int, service_error: "operation-not-possible" |
            "service-not-supported" | "other-reason" | "pdu-too-long" |
            "deciphering-error" | "invocation-counter-error",
            invocation_counter: int|None (only with invocation-counter-error)

    GET / SET / ACTION (every one also has invoke_id_and_priority)::

        "get-request-normal": attribute: AttributeSel
        "get-request-next": block_number: int
        "get-request-with-list": attributes: list[AttributeSel]
        "get-response-normal": result: GetDataResult
        "get-response-with-datablock": last_block: bool, block_number: int,
            raw_data: bytes|None, data_access_result: DAR|None (exactly one set)
        "get-response-with-list": results: list[GetDataResult]
        "set-request-normal": attribute: AttributeSel, value_raw: bytes
        "set-request-with-first-datablock": attribute: AttributeSel, Block
        "set-request-with-datablock": Block
        "set-request-with-list": attributes: list[AttributeSel], values_raw: list[bytes]
        "set-request-with-list-and-first-datablock": attributes: list[AttributeSel], Block
        "set-response-normal": result: DAR
        "set-response-datablock": block_number: int
        "set-response-last-datablock": result: DAR, block_number: int
        "set-response-last-datablock-with-list": results: list[DAR], block_number: int
        "set-response-with-list": results: list[DAR]
        "action-request-normal": method: Method, parameters_raw: bytes|None
        "action-request-next-pblock": block_number: int
        "action-request-with-list": methods: list[Method], parameters_raw: list[bytes]
        "action-request-with-first-pblock": method: Method, Block
        "action-request-with-list-and-first-pblock": methods: list[Method], Block
        "action-request-with-pblock": Block
        "action-response-normal": result: AR, return_data: GetDataResult|None
        "action-response-with-pblock": Block
        "action-response-with-list": results: list[{"result": AR,
            "return_data": GetDataResult|None}]
        "action-response-next-pblock": block_number: int

    Unsolicited, blocks, ciphered framing (no crypto here)::

        "data-notification": long_invoke_id_and_priority: int (u32),
            date_time: bytes|None (the 12 COSEM bytes; None = zero length),
            body_raw: bytes
        "event-notification-request": time: bytes|None, attribute: Attribute,
            value_raw: bytes
        "general-block-transfer": last_block: bool, streaming: bool,
            window: int (0..63), block_number: int, block_number_ack: int,
            block_data: bytes
        "glo-get-request", "glo-set-request", "glo-event-notification-request",
        "glo-action-request", "glo-get-response", "glo-set-response",
        "glo-action-response", "glo-initiate-request", "glo-initiate-response",
        "glo-confirmed-service-error", "glo-read-request", "glo-write-request",
        "glo-read-response", "glo-write-response", "glo-unconfirmed-write-request",
        "glo-information-report-request" and the same with "ded-":
            security_control: int, invocation_counter: int,
            ciphertext: bytes (ciphertext or authenticated plaintext, then the tag)
        "general-glo-ciphering", "general-ded-ciphering": system_title: bytes,
            security_control: int, invocation_counter: int, ciphertext: bytes
    """

def encode_apdu(apdu: dict[str, Any]) -> bytes:
    """The inverse of :func:`decode_apdu`: a dict of the same shape to bytes.
    Optional keys may be left out (same as ``None``); a key the kind does not
    have is an error; enumerations may be names or ints; ``_raw`` values must
    hold exactly one A-XDR value. Raises :class:`ApduError` whose ``field``
    names the offending key (``offset`` is 0 for dict errors; it is a byte
    offset only for byte errors)."""

def apdu_kinds() -> list[str]:
    """Every kind :func:`decode_apdu` can report under ``"apdu"``."""

def decode_apdu_tolerant(
    data: bytes, quirks: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """:func:`decode_apdu`, but when the strict decode fails, again taking the
    decode quirks in ``quirks`` (None: every one): the dict and the quirks
    taken as ``(name, detail)`` (empty when the strict decode succeeded). An
    APDU that decodes only with a quirk not allowed raises :class:`ApduError`
    naming it. Nothing ciphered is decoded with a quirk."""

def known_quirks() -> list[tuple[str, str, bool]]:
    """Every quirk: ``(name, what it takes, allowed by default)``."""

def apdu_tag_names() -> list[tuple[int, str]]:
    """Every APDU tag (first byte) the core knows and its name, by tag: plain
    xDLMS and ACSE APDUs, their glo-/ded- ciphered forms, general ciphering."""

def ciphered_apdu_tags() -> list[tuple[int, str, int | None, bool]]:
    """Every ciphered APDU tag: ``(tag, name, plain tag inside, dedicated)``;
    the plain tag is ``None`` for general-glo-/general-ded-ciphering."""

def data_access_results() -> list[tuple[int, str]]:
    """Data-Access-Result (GET/SET) values and their Blue Book names."""

def action_results() -> list[tuple[int, str]]:
    """Action-Result values and their Blue Book names."""

# ---------------------------------------------------------------- security suite 0
# Keys (EK, AK) are 16 bytes, system titles 8 bytes, IVs 12 bytes (system title
# || invocation counter, big-endian), invocation counters 0..2**32-1. Bad
# lengths/values raise :class:`SecurityError` naming the field and offset.
# ``ek`` may be a :class:`GcmKey` (expanded once per session) or 16 bytes.

def gcm_encrypt(key: bytes, iv: bytes, aad: bytes, plaintext: bytes, tag_len: int = 12) -> bytes:
    """AES-GCM-128: ciphertext || tag (tag_len 12..16)."""

def gcm_decrypt(key: bytes, iv: bytes, aad: bytes, data: bytes, tag_len: int = 12) -> bytes:
    """AES-GCM-128 of ciphertext || tag; raises :class:`AuthenticationError`."""

class GcmKey:
    """An AES-128 key expanded once (key schedule, GHASH key): use it when one
    key protects many APDUs. Same semantics as :func:`gcm_encrypt` /
    :func:`gcm_decrypt`. The repr never shows the key."""

    def __init__(self, key: bytes) -> None: ...
    def encrypt(self, iv: bytes, aad: bytes, plaintext: bytes, tag_len: int = 12) -> bytes: ...
    def decrypt(self, iv: bytes, aad: bytes, data: bytes, tag_len: int = 12) -> bytes: ...

SecurityControl: TypeAlias = int
"""Security control byte: 0x10 authentication only, 0x20 encryption only,
0x30 both (suite 0 in the low nibble; bit 6 key set; bit 7 compression).
Only suite 0 without compression is accepted."""

def protect(
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes | GcmKey,
    ak: bytes,
    plaintext: bytes,
) -> bytes:
    """SC || IC || (ciphertext or plaintext) || tag — the ciphered content of a
    glo-/ded- APDU or of general-glo-ciphering, per Green Book suite 0.
    ``system_title`` is the sender's (ours)."""

def unprotect(
    system_title: bytes,
    ek: bytes | GcmKey,
    ak: bytes,
    data: bytes,
    *,
    required_protection: int = 0,
) -> tuple[int, int, bytes]:
    """The inverse of :func:`protect`: ``(security_control, invocation_counter,
    plaintext)``. Raises :class:`AuthenticationError` on a bad tag.
    ``required_protection`` (0x10 and/or 0x20) are the bits the SC must have;
    set it to the association's security policy, as a tampered SC 0x30 -> 0x20
    (encryption only, no tag) cannot be detected cryptographically. A
    violation raises :class:`SecurityError` (field ``"security control"``)."""

def cipher_apdu(
    apdu: bytes,
    *,
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes | GcmKey,
    ak: bytes,
    dedicated: bool = False,
    general: bool = False,
) -> bytes:
    """Wrap a plain xDLMS APDU in its glo- (or ded-) ciphered APDU, or in
    general-glo-ciphering (``general=True``, carries the system title;
    general-ded-ciphering with ``dedicated=True`` too)."""

def decipher_apdu(
    data: bytes,
    *,
    system_title: bytes | None,
    ek: bytes | GcmKey,
    ak: bytes,
    required_protection: int = 0,
) -> tuple[bytes, int, int, bytes]:
    """A glo-/ded-/general-glo-/general-ded-ciphered APDU to ``(plain_apdu,
    security_control, invocation_counter, sender_system_title)``;
    ``system_title`` is the sender's (needed for glo-/ded- forms, ignored when
    the APDU carries one). A glo-/ded- APDU must decipher to its own plain kind
    (a glo-get-request to a get-request). ``required_protection`` as for
    :func:`unprotect`."""

def hls_gmac(
    security_control: int,
    system_title: bytes,
    invocation_counter: int,
    ek: bytes,
    ak: bytes,
    challenge: bytes,
) -> bytes:
    """HLS mechanism 5: SC || IC || GMAC tag (12 bytes) over SC || AK || challenge.
    ``security_control`` must be 0x10 (or 0x50, broadcast key set)."""

def hls_gmac_verify(
    system_title: bytes, ek: bytes, ak: bytes, challenge: bytes, response: bytes
) -> int:
    """Check the peer's f(challenge) = SC || IC || tag against the challenge we
    sent; ``system_title`` is the peer's. Returns the peer's invocation counter;
    raises :class:`AuthenticationError` on a bad tag."""

def aes_key_wrap(kek: bytes, key: bytes) -> bytes:
    """RFC 3394 key wrap (KEK 16/24/32 bytes, key a multiple of 8, >= 16 bytes)."""

def aes_key_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """RFC 3394 key unwrap; raises :class:`AuthenticationError` on an integrity failure."""

# ---------------------------------------------------------------- association (rust/src/assoc)
# The xDLMS association as sans-IO state machines, client and server role:
# whole APDUs in (``receive_data(apdu, now)``), whole APDUs out
# (``data_to_send()``, in order), typed events out (``next_event()`` /
# ``events()``), time in (``next_deadline()``, ``handle_timeout(now)``).
# Invocation counters come from the caller only (``grant_counters`` on
# :class:`NeedCounters`); randomness too (the HLS challenge, a dedicated key).
# Values, parameters and results are raw A-XDR bytes (decode with
# :func:`decode`). Every value and event is a frozen class.

Authentication: TypeAlias = Literal["none", "lls", "hls-gmac"]
CipherMode: TypeAlias = Literal["glo", "ded", "general-glo", "general-ded"]

class AssociationConfig:
    """Everything an association needs, for either role (validated here;
    ``ApduError``/``ValueError`` name the field). ``security_control`` set
    (0x10, 0x20, 0x30) means the ciphered context: every xDLMS APDU after the
    AARQ is ciphered in ``cipher_mode`` (the client's choice; a server answers
    in the form of each request). ``system_title``/``ek``/``ak`` are ours.
    ``conformance``: the 24-bit value or bit names (client: proposed; server:
    offered). ``max_receive_pdu``: ours (0 = 65535), every APDU received is
    refused above it; ``max_send_pdu``: a client's cap below the server's.
    ``response_timeout``: the client's silence timeout per request (every
    block restarts it). ``max_block_transfer``: the ceiling of one reassembled
    answer or request. ``max_counter_hint_jump``: how far ahead of the
    confirmed counter a hint is surfaced. ``last_incoming_counter``: the
    persisted last counter of ``peer_system_title``. ``quirks``: the quirks
    allowed, by name (:func:`known_quirks`); None: those allowed by default
    (the structural ones), ``()``: strict, every quirk refused. ``referencing``:
    ``"ln"`` or ``"sn"`` (short names: the SN application contexts, Read/Write;
    without ``conformance`` the SN default is proposed/offered)."""

    def __init__(
        self,
        *,
        authentication: Authentication = "none",
        password: bytes | None = None,
        system_title: bytes | None = None,
        ek: bytes | None = None,
        ak: bytes | None = None,
        security_control: int | None = None,
        cipher_mode: CipherMode = "glo",
        peer_system_title: bytes | None = None,
        conformance: int | Sequence[str] | None = None,
        max_receive_pdu: int = 0xFFFF,
        max_send_pdu: int | None = None,
        response_timeout: float = 10.0,
        max_block_transfer: int = 8 << 20,
        max_outstanding: int = 1,
        invoke_priority_high: bool = True,
        gbt_window: int = 1,
        gbt_retries: int = 2,
        max_events: int = 256,
        max_counter_hint_jump: int = 1 << 20,
        last_incoming_counter: int | None = None,
        quirks: Sequence[str] | None = None,
        referencing: str = "ln",
    ) -> None: ...
    @property
    def conformance(self) -> int: ...
    @property
    def response_timeout(self) -> float: ...
    @property
    def ciphered(self) -> bool: ...
    @property
    def referencing(self) -> Literal["ln", "sn"]: ...

def conformance_names(bits: int) -> list[str]:
    """The Green Book names of the conformance bits set, bit 0 first."""

def conformance_bits(names: Sequence[str]) -> int:
    """The 24-bit conformance of these names (ValueError for an unknown one)."""

class Attribute:
    """A COSEM attribute reference with optional selective access
    (``selector`` and ``parameters``, one raw A-XDR value, go together)."""

    def __init__(
        self,
        class_id: int,
        obis: str | bytes,
        attribute_id: int,
        *,
        selector: int | None = None,
        parameters: bytes | None = None,
    ) -> None: ...
    @property
    def class_id(self) -> int: ...
    @property
    def obis(self) -> str: ...
    @property
    def attribute_id(self) -> int: ...
    @property
    def selector(self) -> int | None: ...
    @property
    def parameters(self) -> bytes | None: ...

class Method:
    """A COSEM method reference."""

    def __init__(self, class_id: int, obis: str | bytes, method_id: int) -> None: ...
    @property
    def class_id(self) -> int: ...
    @property
    def obis(self) -> str: ...
    @property
    def method_id(self) -> int: ...

class GetResult:
    """One item of a GET answer: ``data`` (raw A-XDR) or ``error`` (a data-access-result)."""

    @property
    def data(self) -> bytes | None: ...
    @property
    def error(self) -> int | None: ...
    @property
    def error_name(self) -> str | None: ...

class ActionResult:
    """One item of an ACTION answer: the action-result and the optional
    return data (``data`` raw A-XDR, or ``data_error`` a data-access-result)."""

    @property
    def result(self) -> int: ...
    @property
    def result_name(self) -> str: ...
    @property
    def data(self) -> bytes | None: ...
    @property
    def data_error(self) -> int | None: ...
    @property
    def data_error_name(self) -> str | None: ...

class GetOutcome:
    @property
    def results(self) -> tuple[GetResult, ...]: ...

class SetOutcome:
    @property
    def results(self) -> tuple[int, ...]: ...
    @property
    def names(self) -> tuple[str, ...]: ...

class ActionOutcome:
    @property
    def results(self) -> tuple[ActionResult, ...]: ...

Outcome: TypeAlias = GetOutcome | SetOutcome | ActionOutcome

class ErrorInfo:
    """A core error as a value. ``kind`` "too-long" carries ``length`` (seen
    so far) and ``limit``, and ``block`` for a transfer reassembled from
    blocks (``field`` then names it: "general-block-transfer
    (max_block_transfer)", "data blocks (…)", "pblocks (…)"; a single APDU
    over our max receive PDU size has field "received APDU (our max receive
    PDU size)"). ``message`` is the whole text."""

    @property
    def layer(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def kind(
        self,
    ) -> Literal[
        "truncated",
        "unknown-tag",
        "invalid",
        "checksum",
        "too-long",
        "too-deep",
        "trailing",
        "authentication-failed",
        "unsupported",
        "no-answer",
        "other",
    ]: ...
    @property
    def message(self) -> str: ...
    @property
    def length(self) -> int | None: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def block(self) -> int | None: ...

class RequestFailure:
    """Why a request has no outcome (see ``kind``); ``message`` in words."""

    @property
    def kind(
        self,
    ) -> Literal["exception", "confirmed-service-error", "protocol", "security", "abandoned"]: ...
    @property
    def message(self) -> str: ...
    @property
    def state_error(self) -> int | None: ...
    @property
    def state_error_name(self) -> str | None: ...
    @property
    def service_error(self) -> int | None: ...
    @property
    def service_error_name(self) -> str | None: ...
    @property
    def invocation_counter(self) -> int | None:
        """The counter an invocation-counter-error names (unauthenticated: a hint)."""
    @property
    def service(self) -> int | None: ...
    @property
    def service_name(self) -> str | None: ...
    @property
    def error(self) -> int | None: ...
    @property
    def error_name(self) -> str | None: ...
    @property
    def value(self) -> int | None: ...
    @property
    def error_info(self) -> ErrorInfo | None:
        """What broke the protocol or the security check (kinds "protocol", "security")."""

class Agreement:
    """What the association agreed."""

    @property
    def conformance(self) -> int: ...
    @property
    def conformance_names(self) -> list[str]: ...
    @property
    def peer_max_pdu(self) -> int:
        """Client: the server's max receive PDU size; server: the client's."""
    @property
    def dlms_version(self) -> int: ...
    @property
    def peer_system_title(self) -> bytes | None: ...
    @property
    def mechanism(self) -> int: ...
    @property
    def ciphered(self) -> bool: ...
    @property
    def dedicated_key(self) -> bool: ...
    @property
    def quirks_used(self) -> list[str]:
        """The quirks taken while associating (each once; see :class:`QuirkTaken`)."""
    @property
    def initiate_response_missing(self) -> bool: ...

class AssociationStats:
    @property
    def apdus_received(self) -> int: ...
    @property
    def apdus_sent(self) -> int: ...
    @property
    def dropped_queue_full(self) -> int: ...
    @property
    def late_answers_dropped(self) -> int: ...
    @property
    def refused(self) -> int: ...

# -- events
class Associated:
    @property
    def agreement(self) -> Agreement: ...

class Refused:
    """The AARE's result and diagnostic (client: received; server: sent)."""

    @property
    def result(self) -> int: ...
    @property
    def result_name(self) -> str: ...
    @property
    def diagnostic(self) -> int | None: ...
    @property
    def diagnostic_source(self) -> Literal["acse-service-user", "acse-service-provider"] | None: ...
    @property
    def diagnostic_name(self) -> str | None: ...
    @property
    def detail(self) -> str: ...

class AssociationFailed:
    """The association could not be opened. An AARQ answered with an
    exception-response has ``error.field == "exception-response to the AARQ"``
    (its message names the state and service errors, e.g. service-not-allowed)."""

    @property
    def error(self) -> ErrorInfo: ...

class Response:
    """The end of request ``id``: ``outcome`` or ``failure`` (exactly one set)."""

    @property
    def id(self) -> int: ...
    @property
    def outcome(self) -> Outcome | None: ...
    @property
    def failure(self) -> RequestFailure | None: ...

class Timeout:
    @property
    def id(self) -> int: ...

class NeedCounters: ...

class CounterHint:
    @property
    def id(self) -> int: ...
    @property
    def expected(self) -> int: ...
    @property
    def confirmed_base(self) -> int: ...

class LateAnswerDropped:
    @property
    def invoke_id(self) -> int: ...

class ProtocolError:
    """Something received was dropped or refused (it belonged to no request)."""

    @property
    def error(self) -> ErrorInfo: ...

class Unsolicited:
    @property
    def apdu(self) -> bytes: ...

class Released:
    @property
    def confirmed(self) -> bool: ...

class QuirkTaken:
    """A quirk of the meter was taken (one event each time, before the event of
    what it let through): ``quirk`` is its name (:func:`known_quirks`),
    ``detail`` what exactly was found. Only quirks the configuration allows."""

    @property
    def quirk(self) -> str: ...
    @property
    def detail(self) -> str: ...

class GetRequest:
    @property
    def attributes(self) -> tuple[Attribute, ...]: ...

class SetRequest:
    @property
    def items(self) -> tuple[tuple[Attribute, bytes], ...]: ...

class ActionRequest:
    @property
    def items(self) -> tuple[tuple[Method, bytes | None], ...]: ...

IncomingRequest: TypeAlias = GetRequest | SetRequest | ActionRequest

class Request:
    @property
    def id(self) -> int: ...
    @property
    def request(self) -> IncomingRequest: ...

ClientEvent: TypeAlias = (
    Associated
    | Refused
    | AssociationFailed
    | Response
    | Timeout
    | NeedCounters
    | CounterHint
    | LateAnswerDropped
    | ProtocolError
    | Unsolicited
    | Released
    | QuirkTaken
)
ServerEvent: TypeAlias = Associated | Refused | Request | NeedCounters | ProtocolError | Released

class ClientAssociation:
    """The client side of one association (module doc of ``rust/src/assoc``).
    Requests: one item is a normal request, several a with-list one; each
    returns a request id that ends in exactly one :class:`Response` or
    :class:`Timeout`. Raises ``ApduError`` for what the association state or
    the negotiated conformance does not allow, naming it."""

    def __init__(self, config: AssociationConfig) -> None: ...
    def open(
        self, now: float, challenge: bytes | None = None, dedicated_key: bytes | None = None
    ) -> None:
        """Queue the AARQ; ``challenge`` (CtoS, 8..64 random bytes) for
        HLS-GMAC, ``dedicated_key`` (16 random bytes) for the ded- modes."""
    def release(self, now: float) -> None:
        """Queue the RLRQ; requests still pending end abandoned."""
    def load_short_names(self, object_list: bytes) -> int:
        """SN: install the meter's short names from the value of Association SN
        attribute 2 (raw A-XDR); returns the number of objects. Until then
        only the current association (0xFA00) resolves."""
    def short_names(self) -> list[tuple[int, int, int, bytes]]:
        """SN: ``(base_name, class_id, version, logical_name)`` per object."""
    def unconfirmed_write(self, items: Sequence[tuple[Attribute, bytes]]) -> int:
        """SN: UnconfirmedWriteRequest; no answer (and no event) follows."""
    def reset(self) -> None:
        """The link is gone: every pending request ends abandoned, state idle."""
    def get(self, items: Sequence[Attribute], now: float) -> int: ...
    def set(self, items: Sequence[tuple[Attribute, bytes]], now: float) -> int: ...
    def action(self, items: Sequence[tuple[Method, bytes | None]], now: float) -> int: ...
    def cancel(self, id: int, now: float) -> bool: ...
    def grant_counters(self, first: int, count: int) -> None:
        """Outgoing counters ``first..first+count`` (a continuing grant
        extends, any other replaces what is left; at or below the last used:
        ``SecurityError``)."""
    def remember_peer_counter(self, title: bytes, last: int) -> None:
        """The persisted last counter of server system title ``title``."""
    def receive_data(self, data: bytes, now: float) -> None:
        """One whole APDU from the transport."""
    def progress(self, now: float) -> None:
        """The transport made progress on an answer: silence timers restart."""
    def next_event(self) -> ClientEvent | None: ...
    def events(self) -> list[ClientEvent]:
        """Every event waiting, in order."""
    def data_to_send(self) -> list[bytes]:
        """The whole APDUs to send, in order."""
    def next_deadline(self) -> float | None: ...
    def handle_timeout(self, now: float) -> None: ...
    @property
    def state(
        self,
    ) -> Literal["idle", "awaiting-aare", "awaiting-hls", "associated", "releasing"]: ...
    @property
    def agreement(self) -> Agreement | None: ...
    @property
    def last_incoming_counter(self) -> int | None:
        """The server's last authenticated counter (persist it)."""
    @property
    def last_outgoing_counter(self) -> int | None: ...
    @property
    def confirmed_outgoing_counter(self) -> int | None:
        """The highest counter of ours an authenticated answer confirmed."""
    @property
    def counters_available(self) -> int: ...
    @property
    def pending_requests(self) -> list[int]: ...
    @property
    def stats(self) -> AssociationStats: ...

class ServerAssociation:
    """The server side of one association (per client SAP, per connection):
    AARQ checks and AARE, HLS-GMAC pass 3/4, ciphering, blocks and GBT both
    ways, refusals; complete requests come out as :class:`Request` events
    and are answered with ``respond_*`` (or ``refuse_request``)."""

    def __init__(self, config: AssociationConfig) -> None: ...
    def refuse_all(self, why: str) -> None:
        """Refuse every AARQ (rejected-permanent, no-reason-given), e.g. for a
        client SAP without an association; the Refused event says ``why``."""
    def set_short_names(self, entries: Sequence[tuple[int, int, int, bytes]]) -> None:
        """SN: the objects served, ``(base_name, class_id, version, logical_name)``."""
    def sn_object_list(self) -> bytes:
        """SN: the object list value (Association SN attribute 2) of those objects."""
    def set_challenge(self, stoc: bytes) -> None:
        """StoC (8..64 random bytes) for the next HLS-GMAC AARQ."""
    def grant_counters(self, first: int, count: int) -> None: ...
    def remember_peer_counter(self, title: bytes, last: int) -> None:
        """The last counter seen from client system title ``title``."""
    def receive_data(self, data: bytes, now: float) -> None: ...
    def next_event(self) -> ServerEvent | None: ...
    def events(self) -> list[ServerEvent]: ...
    def data_to_send(self) -> list[bytes]: ...
    def respond_get(self, id: int, results: Sequence[bytes | int | str]) -> None:
        """Per attribute its value (raw A-XDR bytes) or a data-access-result (code or name)."""
    def respond_set(self, id: int, results: Sequence[int | str]) -> None: ...
    def respond_action(
        self, id: int, results: Sequence[tuple[int | str, bytes | int | str | None]]
    ) -> None:
        """Per method (action-result, return data: None, raw A-XDR or a data-access-result)."""
    def refuse_request(self, id: int) -> None: ...
    @property
    def state(self) -> Literal["idle", "awaiting-hls", "associated"]: ...
    @property
    def agreement(self) -> Agreement | None: ...
    @property
    def client_system_title(self) -> bytes | None: ...
    @property
    def last_incoming_counter(self) -> int | None: ...
    @property
    def last_outgoing_counter(self) -> int | None: ...
    @property
    def counters_available(self) -> int: ...
    @property
    def pending_requests(self) -> list[int]: ...
    @property
    def stats(self) -> AssociationStats: ...

# ---------------------------------------------------------------- unsolicited APDUs
class DataNotification:
    """A data-notification (0x0F): ``long_invoke_id`` (long-invoke-id-and-priority),
    ``date_time`` (12 COSEM bytes, None when absent), ``body`` (one raw A-XDR value,
    checked when built)."""

    def __init__(self, long_invoke_id: int, date_time: bytes | None, body: bytes) -> None: ...
    @classmethod
    def decode(cls, apdu: bytes) -> DataNotification:
        """The data-notification in ``apdu``; ``ApduError`` names what else it is."""
    def encode(self) -> bytes: ...
    @property
    def long_invoke_id(self) -> int: ...
    @property
    def date_time(self) -> bytes | None: ...
    @property
    def body(self) -> bytes: ...

def ciphering_sender(apdu: bytes) -> bytes:
    """The sender's system title of a general-glo-/general-ded-ciphering APDU
    (``ApduError`` for anything else)."""
