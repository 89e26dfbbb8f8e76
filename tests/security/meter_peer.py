"""Fake meters for the meter-side security tests (not a test module).

The client session runs unchanged over a real :class:`WrapperTransport` or
:class:`HdlcTransport`; only the byte pipe is in memory (:class:`MemoryPipe`):
whatever the client writes goes to the meter side at once, and the meter's
answer to one write arrives as one ``data_received`` on the next loop turn, so
a burst of answers is one chunk, deterministically.

* :func:`wrapper_meter` / :func:`hdlc_meter` make a :data:`Connector` from a
  :data:`Script` (raw request APDU -> answer APDUs, None to hang up); the HDLC
  side is a real ``_core.HdlcLink`` in the server role.
* :class:`CipheredMeter` is a suite 0 meter script: LN-with-ciphering AARE with
  a glo-InitiateResponse, glo-ciphered GET answers, and the client's counters
  checked as a meter does (a counter not above the last refused with a plain
  ``exception-response`` naming the counter it expects). ``on_get`` lets a test
  play the attacker on the path for one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smmc_gateway import _core
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.stream import Connector, ProtocolFactory
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, WrapperTransport

Script = Callable[[bytes], list[bytes] | None]
"""A raw request APDU -> the answer APDUs (None: the meter hangs up)."""

EK = bytes(range(16))
AK = bytes(range(16, 32))
CLIENT_TITLE = b"SMMCSEC1"
SERVER_TITLE = b"MTR\x00\x00\x00\x00\x07"
VALUE = _core.encode({"type": "long-unsigned", "value": 230})
CONFORMANCE = [
    "get",
    "set",
    "action",
    "block-transfer-with-get-or-read",
    "block-transfer-with-action",
    "general-block-transfer",
]
SCOPE = "meter-sec"


class MemoryPipe(asyncio.Transport):
    """The client's end of an in-memory byte pipe; ``meter(data)`` returns the
    bytes answering one write (None: hang up)."""

    def __init__(self, protocol: asyncio.Protocol, meter: Callable[[bytes], bytes | None]) -> None:
        super().__init__()
        self._protocol = protocol
        self._meter = meter
        self._closed = False
        self.fed = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            return
        answer = self._meter(bytes(data))
        loop = asyncio.get_running_loop()
        if answer is None:
            self.close()
        elif answer:
            loop.call_soon(self._feed, answer)

    def _feed(self, data: bytes) -> None:
        if not self._closed:
            self.fed += len(data)
            self._protocol.data_received(data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closed


def memory_connector(meter: Callable[[bytes], bytes | None]) -> Connector:
    async def connect(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        protocol = factory()
        pipe = MemoryPipe(protocol, meter)
        protocol.connection_made(pipe)
        return pipe, protocol

    return connect


def wrapper_meter(script: Script) -> Connector:
    """A meter behind the IEC 62056-47 wrapper (wPort 1 -> 16)."""
    framer = _core.WrapperFramer()

    def meter(data: bytes) -> bytes | None:
        framer.feed(data)
        out = b""
        while (frame := framer.next_frame()) is not None:
            answers = script(frame[2])
            if answers is None:
                return None
            out += b"".join(_core.wrapper_encode(1, 16, a) for a in answers)
        return out

    return memory_connector(meter)


def hdlc_meter(script: Script, *, max_info: int = 128) -> Connector:
    """A meter behind an HDLC link (server role, logical device 1, lower 17)."""
    link = _core.HdlcLink(
        "server",
        client_address=16,
        server_upper=1,
        server_lower=17,
        max_info_tx=max_info,
        max_info_rx=max_info,
    )

    def meter(data: bytes) -> bytes | None:
        now = time.monotonic()
        link.receive_data(data, now)
        while (event := link.next_event()) is not None:
            if isinstance(event, _core.LinkApdu):
                answers = script(event.apdu)
                if answers is None:
                    return None
                for apdu in answers:
                    link.send_apdu(apdu, now)
        return link.data_to_send()

    return memory_connector(meter)


def wrapper_transport(script: Script) -> WrapperTransport:
    return WrapperTransport(wrapper_meter(script), description="fake-meter")


def hdlc_transport(script: Script) -> HdlcTransport:
    settings = HdlcSettings(client_address=16, server_upper=1, server_lower=17)
    return HdlcTransport(hdlc_meter(script), settings, description="fake-meter")


# ---------------------------------------------------------------- APDUs


def initiate_response(pdu: int = 1024) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "initiate-response",
            "negotiated_dlms_version_number": 6,
            "negotiated_conformance": CONFORMANCE,
            "server_max_receive_pdu_size": pdu,
            "vaa_name": 7,
        }
    )


def aare(user_information: dict[str, Any] | None, **fields: Any) -> bytes:
    apdu: dict[str, Any] = {
        "apdu": "aare",
        "application_context_name": "logical-name",
        "result": "accepted",
        "result_source_diagnostic": {"source": "acse-service-user", "value": "null"},
        "user_information": user_information,
    }
    apdu.update(fields)
    return _core.encode_apdu(apdu)


def get_response(invoke: int, data: bytes = VALUE) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "get-response-normal",
            "invoke_id_and_priority": invoke,
            "result": {"data_raw": data},
        }
    )


def exception_response(counter: int | None = None) -> bytes:
    """A plain exception-response; with ``counter``, invocation-counter-error naming it."""
    return _core.encode_apdu(
        {
            "apdu": "exception-response",
            "state_error": "service-not-allowed",
            "service_error": "operation-not-possible"
            if counter is None
            else "invocation-counter-error",
            "invocation_counter": counter,
        }
    )


def gbt_block(number: int, data: bytes, *, last: bool) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "general-block-transfer",
            "last_block": last,
            "streaming": False,
            "window": 1,
            "block_number": number,
            "block_number_ack": 0,
            "block_data": data,
        }
    )


def rlre() -> bytes:
    return _core.encode_apdu({"apdu": "rlre", "reason": "normal"})


def plain_meter(on_request: Callable[[dict[str, Any]], list[bytes] | None]) -> Script:
    """A plain (LN, no ciphering) meter: AARE, RLRE, the rest by ``on_request``."""

    def script(raw: bytes) -> list[bytes] | None:
        request = _core.decode_apdu(raw)
        if request["apdu"] == "aarq":
            return [aare(_core.decode_apdu(initiate_response()))]
        if request["apdu"] == "rlrq":
            return [rlre()]
        return on_request(request)

    return script


# ---------------------------------------------------------------- a ciphering meter


@dataclass
class CipheredMeter:
    """A suite 0 meter (see the module doc). ``initiate``: ``"ciphered"``,
    ``"plain"`` or ``"missing"`` InitiateResponse in the AARE. ``last_seen``:
    the highest client counter it accepted (a real meter's state)."""

    initiate: str = "ciphered"
    last_seen: int = 0
    own: int = 1
    sc: int = 0x30
    on_get: Callable[[dict[str, Any], int], list[bytes] | None] | None = None
    """(deciphered request, its counter) -> answers instead of the normal one
    (None from on_get: answer normally; return [] to stay silent)."""
    seen: list[int] = field(default_factory=list)
    """Every counter of a request that reached the meter, in order."""

    def protect(self, apdu: bytes, *, counter: int | None = None, sc: int | None = None) -> bytes:
        ic = self.own if counter is None else counter
        self.own = max(self.own, ic) + 1
        return _core.cipher_apdu(
            apdu,
            security_control=self.sc if sc is None else sc,
            system_title=SERVER_TITLE,
            invocation_counter=ic,
            ek=EK,
            ak=AK,
        )

    def __call__(self, raw: bytes) -> list[bytes] | None:
        request = _core.decode_apdu(raw)
        kind = request["apdu"]
        if kind == "aarq":
            ui = request["user_information"]
            _plain, _sc, ic, _title = _core.decipher_apdu(
                _core.encode_apdu(ui), system_title=CLIENT_TITLE, ek=EK, ak=AK
            )
            self.seen.append(ic)
            self.last_seen = max(self.last_seen, ic)
            answer: dict[str, Any] | None = None
            if self.initiate == "ciphered":
                answer = _core.decode_apdu(self.protect(initiate_response()))
            elif self.initiate == "plain":
                answer = _core.decode_apdu(initiate_response())
            return [
                aare(
                    answer,
                    application_context_name="logical-name-with-ciphering",
                    responding_ap_title=SERVER_TITLE,
                )
            ]
        if kind == "rlrq":
            return [rlre()]
        if kind != "glo-get-request":
            return [exception_response()]
        plain, _sc, ic, _title = _core.decipher_apdu(raw, system_title=CLIENT_TITLE, ek=EK, ak=AK)
        self.seen.append(ic)
        get = _core.decode_apdu(plain)
        if self.on_get is not None:
            scripted = self.on_get(get, ic)
            if scripted is not None:
                return scripted
        if ic <= self.last_seen:
            return [exception_response(self.last_seen + 1)]
        self.last_seen = ic
        return [self.protect(get_response(get["invoke_id_and_priority"]))]


def ciphered_security(store: InvocationCounterStore, **kw: Any) -> Security:
    return Security(
        system_title=CLIENT_TITLE,
        ek=EK,
        ak=AK,
        ciphered=True,
        ic_store=store,
        ic_scope=SCOPE,
        **kw,
    )


def session(transport: Any, security: Security | None = None, **settings: Any) -> ClientSession:
    settings.setdefault("response_timeout", 0.5)
    settings.setdefault("association_timeout", 2.0)
    settings.setdefault("operation_timeout", 5.0)
    if security is not None:
        settings["security"] = security
    return ClientSession(transport, SessionSettings(**settings), meter_id=SCOPE)
