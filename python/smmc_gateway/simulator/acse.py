"""Association establishment on the meter's side (Green Book 9.4.2): AARQ in,
AARE out, and the HLS-GMAC (mechanism 5) challenge exchange.

Sans-IO and per connection: :class:`Association` is the state one client SAP
has on one connection (context, keys, negotiated xDLMS parameters, pending
HLS challenge); :func:`establish` turns a decoded AARQ into the AARE and, when
accepted, that state. What is checked, in Green Book order:

* the client SAP has an association in the meter (else rejected-permanent,
  no-reason-given);
* the application context is the one that association uses: LN for the
  public client, LN-with-ciphering for an HLS-GMAC management client
  (else ``application-context-name-not-supported``, the AARE naming ours);
* the mechanism (``authentication-mechanism-name-required`` /
  ``-not-recognised``), the LLS password (``authentication-failure``), a
  calling AP title of 8 bytes for ciphering (``calling-ap-title-not-recognized``);
* the xDLMS InitiateRequest (deciphered with the meter's global keys and the
  client's system title when glo-ciphered; its invocation counter must
  increase): DLMS version 6, a usable max PDU size and a common conformance,
  else a ConfirmedServiceError(initiate) in the AARE.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, NoReturn

from smmc_gateway import _core
from smmc_gateway.simulator.gbt import GbtState
from smmc_gateway.simulator.meter import SimulatedMeter, UnknownClientError

DLMS_VERSION = 6
MIN_CLIENT_PDU = 12
SERVER_MAX_PDU = 1024
VAA_LN = 0x0007
# What the simulated meter offers (Green Book conformance bit names).
SERVER_CONFORMANCE = (
    "general-protection",
    "general-block-transfer",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "data-notification",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
)
# Without general-block-transfer (it is offered only when enabled).
BASIC_CONFORMANCE = tuple(c for c in SERVER_CONFORMANCE if c != "general-block-transfer")
CIPHERED_CONTEXT = "logical-name-with-ciphering"
PLAIN_CONTEXT = "logical-name"


@dataclass
class CipherCounters:
    """Invocation counters of one meter, shared by all its connections: its own
    (increasing with every APDU it protects) and the last one seen from each
    client system title (a request must carry a larger one)."""

    own: int = 1
    seen: dict[bytes, int] = field(default_factory=dict)

    def next_own(self) -> int:
        ic = self.own
        self.own += 1
        return ic

    def accept(self, title: bytes, ic: int) -> bool:
        """Record ``ic`` from ``title``; False (and nothing recorded) on a replay."""
        last = self.seen.get(title)
        if last is not None and ic <= last:
            return False
        self.seen[title] = ic
        return True

    def expected(self, title: bytes) -> int:
        return self.seen.get(title, -1) + 1

    def highest_seen(self) -> int:
        """The largest IC received from any client (0 before any)."""
        return max(self.seen.values(), default=0)


@dataclass
class Association:
    """One client SAP's association on one connection."""

    client: int
    ciphered: bool
    mechanism: str
    client_title: bytes = b""
    client_max_pdu: int = SERVER_MAX_PDU
    conformance: tuple[str, ...] = ()
    dedicated_key: bytes | None = None
    # HLS: StoC we sent and CtoS we must answer; pending until the client's
    # reply_to_HLS_authentication carries a valid f(StoC).
    stoc: bytes = b""
    ctos: bytes = b""
    pending: bool = False
    # Block transfer state (server.py).
    get_blocks: list[bytes] = field(default_factory=list)
    get_next: int = 0
    set_target: Any = None
    set_buffer: bytearray = field(default_factory=bytearray)
    set_next: int = 1
    action_target: Any = None
    action_buffer: bytearray = field(default_factory=bytearray)
    action_next: int = 1
    action_blocks: list[bytes] = field(default_factory=list)
    action_block_next: int = 0
    gbt: GbtState = field(default_factory=GbtState)


class Rejected(Exception):
    """An AARQ that is refused; ``aare`` is the encoded AARE to send back."""

    def __init__(self, reason: str, aare: bytes) -> None:
        super().__init__(reason)
        self.aare = aare


def _aare(
    result: str,
    diagnostic: str,
    *,
    context: str,
    user_information: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    apdu: dict[str, Any] = {
        "apdu": "aare",
        "application_context_name": context,
        "result": result,
        "result_source_diagnostic": {"source": "acse-service-user", "value": diagnostic},
        "user_information": user_information,
    }
    apdu.update(extra or {})
    return _core.encode_apdu(apdu)


def _initiate_error(value: str) -> dict[str, Any]:
    return {
        "apdu": "confirmed-service-error",
        "service": "initiate-error",
        "error": "initiate",
        "value": value,
    }


def initiate_response(conformance: tuple[str, ...]) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "initiate-response",
            "negotiated_quality_of_service": None,
            "negotiated_dlms_version_number": DLMS_VERSION,
            "negotiated_conformance": list(conformance),
            "server_max_receive_pdu_size": SERVER_MAX_PDU,
            "vaa_name": VAA_LN,
        }
    )


def establish(
    meter: SimulatedMeter,
    counters: CipherCounters,
    client: int,
    aarq: dict[str, Any],
    *,
    offered: tuple[str, ...] = BASIC_CONFORMANCE,
) -> tuple[Association, bytes]:
    """The association and the AARE for an accepted AARQ; raises
    :class:`Rejected` (carrying the AARE) otherwise."""
    context = aarq.get("application_context_name")

    def reject(
        diag: str, why: str, ui: dict[str, Any] | None = None, ctx: Any = context
    ) -> NoReturn:
        raise Rejected(why, _aare("rejected-permanent", diag, context=ctx, user_information=ui))

    try:
        cosem = meter.association(client)
    except UnknownClientError as exc:
        reject("no-reason-given", str(exc), ctx=context or PLAIN_CONTEXT)
    ours = CIPHERED_CONTEXT if cosem.ciphered else PLAIN_CONTEXT
    if context != ours:
        reject(
            "application-context-name-not-supported",
            f"client {client} asked for context {context!r}, the meter uses {ours!r}",
            ctx=ours,
        )
    creds = meter.credentials
    mechanism = aarq.get("mechanism_name") or "none"
    if mechanism != cosem.mechanism:
        diag = (
            "authentication-mechanism-name-required"
            if mechanism == "none"
            else "authentication-mechanism-name-not-recognised"
        )
        reject(diag, f"client {client} used mechanism {mechanism!r}, needs {cosem.mechanism!r}")
    secret = aarq.get("calling_authentication_value") or b""
    if mechanism == "lls" and not meter.check_lls(client, secret):
        reject("authentication-failure", f"client {client}: wrong LLS password")
    if mechanism == "hls-gmac" and not 8 <= len(secret) <= 64:
        reject("authentication-failure", f"client {client}: CtoS of {len(secret)} bytes (8..64)")
    title: bytes = aarq.get("calling_ap_title") or b""
    if cosem.ciphered and len(title) != 8:
        reject(
            "calling-ap-title-not-recognized",
            f"client {client}: calling AP title {title.hex() or 'absent'} is not 8 bytes",
        )

    ui = aarq.get("user_information")
    if ui is None:
        reject("no-reason-given", "AARQ without an xDLMS InitiateRequest")
    kind = ui["apdu"]
    if cosem.ciphered:
        if kind not in ("glo-initiate-request", "general-glo-ciphering"):
            reject("no-reason-given", f"a ciphered context needs glo-initiate-request, got {kind}")
        try:
            plain, _sc, ic, _title = _core.decipher_apdu(
                _core.encode_apdu(ui), system_title=title, ek=creds.guek, ak=creds.gak
            )
        except _core.DlmsError as exc:
            reject(
                "no-reason-given",
                f"InitiateRequest does not decipher: {exc}",
                _initiate_error("other"),
            )
        if not counters.accept(title, ic):
            reject(
                "no-reason-given",
                f"InitiateRequest invocation counter {ic} replayed",
                _initiate_error("other"),
            )
        initiate = _core.decode_apdu(plain)
    else:
        if kind != "initiate-request":
            reject("no-reason-given", f"a plain context needs initiate-request, got {kind}")
        initiate = ui
    if initiate.get("apdu") != "initiate-request":
        reject("no-reason-given", f"user-information holds {initiate.get('apdu')}")

    version = initiate["proposed_dlms_version_number"]
    proposed = set(initiate["proposed_conformance"])
    common = tuple(c for c in offered if c in proposed)
    pdu = initiate["client_max_receive_pdu_size"]
    error = None
    if version < DLMS_VERSION:
        error = "dlms-version-too-low"
    elif pdu != 0 and pdu < MIN_CLIENT_PDU:
        error = "pdu-size-too-short"
    elif not common:
        error = "incompatible-conformance"
    if error is not None:
        reject("no-reason-given", f"InitiateRequest refused: {error}", _initiate_error(error))

    assoc = Association(
        client=client,
        ciphered=cosem.ciphered,
        mechanism=mechanism,
        client_title=title,
        client_max_pdu=pdu or 0xFFFF,
        conformance=common,
        dedicated_key=initiate.get("dedicated_key"),
    )
    response = initiate_response(common)
    if cosem.ciphered:
        response = _core.cipher_apdu(
            response,
            security_control=0x30,
            system_title=creds.system_title,
            invocation_counter=counters.next_own(),
            ek=creds.guek,
            ak=creds.gak,
        )
    extra: dict[str, Any] = {}
    diagnostic = "null"
    if cosem.ciphered:
        extra["responding_ap_title"] = creds.system_title
        creds.client_system_titles[client] = title  # security setup attribute 4
    if mechanism == "hls-gmac":
        assoc.stoc = secrets.token_bytes(16)
        assoc.ctos = secret
        assoc.pending = True
        diagnostic = "authentication-required"
        extra.update(
            responder_acse_requirements=True,
            mechanism_name="hls-gmac",
            responding_authentication_value=assoc.stoc,
        )
    aare = _aare(
        "accepted",
        diagnostic,
        context=ours,
        user_information=_core.decode_apdu(response),
        extra=extra,
    )
    cosem.status = 1 if assoc.pending else 2
    return assoc, aare


def hls_reply(
    meter: SimulatedMeter, counters: CipherCounters, assoc: Association, f_stoc: bytes
) -> bytes | None:
    """Check the client's f(StoC); on success the association is established
    and f(CtoS) is returned (SC || IC || GMAC tag), else None."""
    creds = meter.credentials
    # No counter check here: the tag is over our fresh StoC, so it cannot be
    # replayed, and the client takes this IC before the one of the ciphered
    # ACTION carrying it.
    try:
        _core.hls_gmac_verify(assoc.client_title, creds.guek, creds.gak, assoc.stoc, f_stoc)
    except _core.DlmsError:
        return None
    assoc.pending = False
    meter.association(assoc.client).status = 2
    return _core.hls_gmac(
        0x10, creds.system_title, counters.next_own(), creds.guek, creds.gak, assoc.ctos
    )
