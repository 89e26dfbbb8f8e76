"""Opening and releasing an association: AARQ/AARE, the HLS-GMAC passes 3
and 4 (reply_to_HLS_authentication), RLRQ/RLRE.

:func:`associate` runs on an open transport and returns what was agreed; it
installs the ciphering context on the :class:`~smmc_gateway.dlms.exchange.Exchange`
so that every later request is ciphered. :func:`release` is the courtesy
RLRQ before the link goes down.

In a ciphered association the AARE's InitiateResponse must be ciphered (and
authenticated): a plain one, or none, could come from anyone on the path and
is refused with SecurityFailure unless the meter model has the quirk
:data:`PLAIN_INITIATE_RESPONSE` (``SessionSettings.quirks``), which only lets
that answer through: the invocation counter of our AARQ is confirmed (a
tentatively followed counter hint persisted) only by an authenticated one.
The HLS pass-4 answer goes through :meth:`Exchange.request`, so it must be
ciphered in a ciphered association; the RLRE is only logged, never acted on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.dlms.association import SessionSettings, aarq_dict, challenge
from smmc_gateway.dlms.ciphering import CipherContext
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    LimitExceeded,
    ProtocolError,
    SecurityFailure,
)
from smmc_gateway.dlms.exchange import Exchange

log = structlog.get_logger("smmc_gateway.dlms")

PLAIN_INITIATE_RESPONSE = "plain-initiate-response"
"""The model quirk that lets a ciphered association take a plain (or missing)
InitiateResponse in the AARE."""


@dataclass(frozen=True)
class Agreement:
    """What the AARE (InitiateResponse) agreed."""

    conformance: list[str]
    max_pdu_size: int
    server_system_title: bytes | None


async def associate(
    x: Exchange, settings: SessionSettings, meter_id: str, deadline: float, budget: float
) -> Agreement:
    """AARQ/AARE and, for HLS-GMAC, passes 3 and 4; raises AssociationRefused,
    ProtocolError, SecurityFailure, MeterTimeout, LinkLost."""
    s = settings
    sec = s.security
    cipher = CipherContext(sec, meter_id) if sec.ciphered else None
    initiate = {
        "apdu": "initiate-request",
        "dedicated_key": cipher.dedicated_key if cipher else None,
        "proposed_dlms_version_number": 6,
        "proposed_conformance": list(s.conformance),
        "client_max_receive_pdu_size": s.max_pdu_size,
    }
    plain_initiate = _core.encode_apdu(initiate)
    user_information: dict[str, Any] = initiate
    initiate_counter: int | None = None
    if cipher is not None:
        initiate_counter = cipher.next_counter()
        ciphered = cipher.cipher_initiate(plain_initiate, initiate_counter)
        user_information = _core.decode_apdu(ciphered)
    ctos = challenge() if sec.level == "hls-gmac" else None
    aarq = _core.encode_apdu(aarq_dict(s, ctos, user_information))
    await x.transport.send_apdu(aarq)
    data = await x.receive_raw(deadline, "AARE", budget)
    try:
        aare = _core.decode_apdu(data)
    except _core.ApduError as exc:
        raise ProtocolError(
            f"undecodable answer to the AARQ from {x.transport.description}: {exc}"
        ) from exc
    if aare["apdu"] != "aare":
        raise ProtocolError(f"expected an AARE, got {aare['apdu']}")
    server_system_title = aare.get("responding_ap_title")
    if cipher is not None:
        cipher.server_system_title = server_system_title
    ui = aare.get("user_information")
    diagnostic = aare.get("result_source_diagnostic") or {}
    if aare["result"] != "accepted":
        detail = ""
        if ui is not None and ui.get("apdu", "").endswith("confirmed-service-error"):
            detail = f"{ui.get('error')}: {ui.get('value')}"
            if cipher is not None:
                detail += " (the meter did not accept our ciphered InitiateRequest: wrong keys?)"
        raise AssociationRefused(aare["result"], str(diagnostic.get("value")), detail)
    try:
        conformance, max_pdu_size, authenticated = _read_initiate_response(
            ui, cipher, settings, meter_id
        )
    except SecurityFailure as exc:
        raise SecurityFailure(f"AARE from {x.transport.description}: {exc}") from exc
    if cipher is not None and authenticated and initiate_counter is not None:
        cipher.confirm(initiate_counter)
    if cipher is not None and cipher.dedicated_key is not None:
        log.debug("dedicated_key_in_use", meter_id=meter_id)
    x.cipher = cipher
    if sec.level == "hls-gmac":
        await _hls_pass_3_4(
            x, settings, meter_id, server_system_title, aare, ctos or b"", cipher, deadline, budget
        )
    return Agreement(conformance, max_pdu_size, server_system_title)


def _read_initiate_response(
    ui: dict[str, Any] | None,
    cipher: CipherContext | None,
    settings: SessionSettings,
    meter_id: str,
) -> tuple[list[str], int, bool]:
    """(conformance, server max receive PDU size, whether the InitiateResponse
    was authenticated)."""
    if ui is None:
        if cipher is not None:
            _plain_initiate_response("no InitiateResponse", settings, meter_id)
        # Liberal: some meters leave the InitiateResponse out; assume the basics.
        log.warning("aare_without_initiate_response", meter_id=meter_id)
        return list(settings.conformance), 0xFFFF, False
    kind = ui.get("apdu", "")
    authenticated = False
    if kind in ("glo-initiate-response", "ded-initiate-response"):
        if cipher is None:
            raise ProtocolError("ciphered InitiateResponse to a plain association request")
        plain, authenticated = cipher.decipher_answer(_core.encode_apdu(ui))
        ui = _core.decode_apdu(plain)
        kind = ui["apdu"]
    elif cipher is not None:
        _plain_initiate_response(f"a plain {kind}", settings, meter_id)
    if kind.endswith("confirmed-service-error"):
        raise AssociationRefused("accepted-with-error", str(ui.get("error")), str(ui.get("value")))
    if kind != "initiate-response":
        raise ProtocolError(f"AARE user-information is a {kind}, expected initiate-response")
    pdu = ui["server_max_receive_pdu_size"] or 0xFFFF
    return list(ui["negotiated_conformance"]), pdu, authenticated


def _plain_initiate_response(what: str, settings: SessionSettings, meter_id: str) -> None:
    """A ciphered association answered with ``what`` where a ciphered
    InitiateResponse belongs: refused unless the model's quirk allows it."""
    if PLAIN_INITIATE_RESPONSE not in settings.quirks:
        raise SecurityFailure(
            f"{what} in the AARE of a ciphered association: refused (unauthenticated; "
            f"the model quirk {PLAIN_INITIATE_RESPONSE!r} allows it for meters that do this)"
        )
    log.warning("aare_initiate_response_not_ciphered", meter_id=meter_id, quirk=True)


async def _hls_pass_3_4(
    x: Exchange,
    settings: SessionSettings,
    meter_id: str,
    server_system_title: bytes | None,
    aare: dict[str, Any],
    ctos: bytes,
    cipher: CipherContext | None,
    deadline: float,
    budget: float,
) -> None:
    stoc = aare.get("responding_authentication_value")
    if not stoc:
        raise ProtocolError("AARE for HLS-GMAC carries no server challenge (StoC)")
    if cipher is None:  # HLS without ciphering of the APDUs: keys still needed
        cipher = CipherContext(settings.security, meter_id)
        cipher.server_system_title = server_system_title
    # The request's counter is taken before f(StoC)'s, so a server that
    # checks counters in the order it processes them (decipher, then
    # verify f(StoC)) sees them increase.
    request_counter = cipher.next_counter() if x.cipher is not None else None
    reply = cipher.f_stoc(stoc, cipher.next_counter())
    what = "reply_to_HLS_authentication"
    request = {
        "apdu": "action-request-normal",
        "invoke_id_and_priority": x.next_invoke(),
        "method": {"class_id": 15, "obis": "0.0.40.0.0.255", "method_id": 1},
        "parameters_raw": _core.encode({"type": "octet-string", "value": reply.hex()}),
    }
    try:
        answer = await x.request(request, deadline, what, budget, counter=request_counter)
    except LimitExceeded:
        raise  # an oversize answer says nothing about our keys
    except ProtocolError as exc:
        raise AssociationRefused("rejected", "authentication-failure", str(exc)) from exc
    if answer["apdu"] != "action-response-normal":
        raise ProtocolError(f"{what}: got {answer['apdu']}")
    if answer["result"] != "success":
        raise AssociationRefused(
            "rejected", "authentication-failure", f"meter refused f(StoC): {answer['result']}"
        )
    ret = answer.get("return_data") or {}
    if "data_raw" not in ret:
        raise SecurityFailure("the meter returned no f(CtoS) in reply_to_HLS_authentication")
    value = _core.decode(ret["data_raw"])
    if value.get("type") != "octet-string":
        raise SecurityFailure(f"f(CtoS) is a {value.get('type')}, expected octet-string")
    cipher.verify_f_ctos(ctos, bytes.fromhex(value["value"]))


async def release(x: Exchange, settings: SessionSettings, meter_id: str) -> None:
    """RLRQ (with a ciphered InitiateRequest in a ciphered association) and wait for the RLRE."""
    rlrq: dict[str, Any] = {"apdu": "rlrq", "reason": "normal"}
    cipher = x.cipher
    if cipher is not None:
        initiate = {
            "apdu": "initiate-request",
            "proposed_dlms_version_number": 6,
            "proposed_conformance": list(settings.conformance),
            "client_max_receive_pdu_size": settings.max_pdu_size,
        }
        ciphered = cipher.cipher_initiate(_core.encode_apdu(initiate))
        rlrq["user_information"] = _core.decode_apdu(ciphered)
    await x.transport.send_apdu(_core.encode_apdu(rlrq))
    budget = settings.response_timeout
    data = await x.receive_raw(time.monotonic() + budget, "RLRE", budget)
    try:
        kind = _core.decode_apdu(data)["apdu"]
    except _core.ApduError as exc:
        raise ProtocolError(f"undecodable answer to the RLRQ: {exc}") from exc
    if kind != "rlre":
        log.debug("release_unexpected", meter_id=meter_id, apdu=kind)
