"""What the client puts on the wire, checked against published bytes
(tests/vectors: Green Book examples as reproduced, jDLMS HLS pass 3), so the
client follows the standard's encodings and not only what our simulator takes.
The bytes come from the session's association machine configured from
SessionSettings (``core_config``), as a session would send them."""

from __future__ import annotations

import json
from pathlib import Path

from smmc_gateway import _core
from smmc_gateway.dlms.access import EntryAccess, RangeAccess, access_selection
from smmc_gateway.dlms.association import Security, SessionSettings, core_config
from smmc_gateway.dlms.ic_store import InvocationCounterStore

VECTORS = Path(__file__).parent / "vectors"
GB = json.loads((VECTORS / "security" / "green_book.json").read_text())


def apdu_vector(name: str) -> bytes:
    for line in (VECTORS / "apdu" / "vectors.txt").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return bytes.fromhex(parts[2])
    raise KeyError(name)


def gb_settings(security: Security) -> SessionSettings:
    """The Green Book example's proposal: conformance 0x007E1F, PDU 1200."""
    proposal = _core.decode_apdu(apdu_vector("gb-aarq-no-auth"))["user_information"]
    return SessionSettings(
        security=security,
        conformance=tuple(proposal["proposed_conformance"]),
        max_pdu_size=proposal["client_max_receive_pdu_size"],
    )


def our_aarq(settings: SessionSettings, first_counter: int = 1) -> bytes:
    """The AARQ the session's association machine sends for ``settings``."""
    assoc = _core.ClientAssociation(core_config(settings))
    assoc.grant_counters(first_counter, 10)
    hls = settings.security.level == "hls-gmac"
    assoc.open(0.0, b"K56iVagY" if hls else None)
    (aarq,) = assoc.data_to_send()
    return aarq


def test_aarq_without_authentication_is_the_green_book_bytes() -> None:
    assert our_aarq(gb_settings(Security.none())) == apdu_vector("gb-aarq-no-auth")


def test_aarq_with_lls_is_the_green_book_bytes() -> None:
    settings = gb_settings(Security.lls(b"12345678"))
    assert our_aarq(settings) == apdu_vector("gb-aarq-lls")


def gb_security(*, ciphered: bool = True) -> Security:
    return Security.hls_gmac(
        system_title=bytes.fromhex(GB["client_system_title"]),
        ek=bytes.fromhex(GB["ek"]),
        ak=bytes.fromhex(GB["ak"]),
        ciphered=ciphered,
        ic_store=InvocationCounterStore(":memory:"),
        ic_scope="gb",
    )


def test_ciphered_initiate_request_is_the_green_book_bytes() -> None:
    case = next(c for c in GB["ciphered_apdus"] if c["name"].startswith("glo-initiateRequest"))
    aarq = _core.decode_apdu(our_aarq(gb_settings(gb_security()), case["invocation_counter"]))
    assert _core.encode_apdu(aarq["user_information"]) == bytes.fromhex(case["ciphered"])
    assert aarq["calling_ap_title"] == bytes.fromhex(GB["client_system_title"])


def hls_pass_3(f_stoc_counter: int) -> tuple[_core.ClientAssociation, bytes]:
    """An HLS-GMAC association (not ciphered) after the AARE of the Green Book
    example: the machine and its reply_to_HLS_authentication request."""
    case = next(c for c in GB["hls_gmac"] if c["name"].startswith("f(StoC)"))
    assoc = _core.ClientAssociation(core_config(gb_settings(gb_security(ciphered=False))))
    assoc.grant_counters(f_stoc_counter, 10)
    assoc.open(0.0, b"K56iVagY")
    assoc.data_to_send()
    initiate = {
        "apdu": "initiate-response",
        "negotiated_dlms_version_number": 6,
        "negotiated_conformance": ["get", "action"],
        "server_max_receive_pdu_size": 1200,
        "vaa_name": 7,
    }
    aare = _core.encode_apdu(
        {
            "apdu": "aare",
            "application_context_name": "logical-name",
            "result": "accepted",
            "result_source_diagnostic": {
                "source": "acse-service-user",
                "value": "authentication-required",
            },
            "responding_ap_title": bytes.fromhex(GB["server_system_title"]),
            "responder_acse_requirements": True,
            "mechanism_name": "hls-gmac",
            "responding_authentication_value": bytes.fromhex(case["challenge"]),
            "user_information": initiate,
        }
    )
    assoc.receive_data(aare, 0.1)
    (request,) = assoc.data_to_send()
    return assoc, request


def test_f_stoc_is_the_green_book_value() -> None:
    case = next(c for c in GB["hls_gmac"] if c["name"].startswith("f(StoC)"))
    _assoc, request = hls_pass_3(case["invocation_counter"])
    f_stoc = _core.decode(_core.decode_apdu(request)["parameters_raw"])
    assert f_stoc == {"type": "octet-string", "value": case["response"].lower()}


def test_server_f_ctos_is_verified_and_a_wrong_one_refused() -> None:
    case = next(c for c in GB["hls_gmac"] if c["name"].startswith("f(CtoS)"))
    response = bytes.fromhex(case["response"])
    tampered = response[:-1] + bytes([response[-1] ^ 1])
    for f_ctos, good in ((response, True), (tampered, False)):
        assoc, request = hls_pass_3(1)
        iid = _core.decode_apdu(request)["invoke_id_and_priority"]
        assoc.receive_data(
            _core.encode_apdu(
                {
                    "apdu": "action-response-normal",
                    "invoke_id_and_priority": iid,
                    "result": "success",
                    "return_data": {
                        "data_raw": _core.encode({"type": "octet-string", "value": f_ctos.hex()})
                    },
                }
            ),
            0.2,
        )
        (event,) = [e for e in assoc.events() if not isinstance(e, _core.NeedCounters)]
        if good:
            assert isinstance(event, _core.Associated) and assoc.state == "associated"
        else:
            assert isinstance(event, _core.AssociationFailed), event
            assert event.error.kind == "authentication-failed", event.error.message


def test_reply_to_hls_authentication_has_the_published_layout() -> None:
    published = apdu_vector("jdlms-hls-reply-request")
    _assoc, ours = hls_pass_3(1)
    # the same APDU (invoke id, method, an octet-string of 17 bytes) but f(StoC) itself
    assert len(ours) == len(published)
    assert ours[:-17] == published[:-17]


def test_selective_access_by_range_matches_a_published_request() -> None:
    published = _core.decode_apdu(apdu_vector("gosem-get-request-range"))
    params = _core.decode(published["attribute"]["access_selection"]["parameters_raw"])
    start = _core.decode_datetime(bytes.fromhex(params["value"][1]["value"]))
    end = _core.decode_datetime(bytes.fromhex(params["value"][2]["value"]))
    assert start is not None and end is not None
    ours = access_selection(RangeAccess(start=start, end=end))
    assert (
        ours is not None and ours.selector == published["attribute"]["access_selection"]["selector"]
    )
    mine = _core.decode(ours.parameters)["value"]
    theirs = params["value"]
    assert mine[0] == theirs[0]  # the clock capture object as restricting object
    assert mine[3] == theirs[3]  # all columns
    for i in (1, 2):  # the same instants (clock status may differ: not specified vs 0)
        assert _core.decode_datetime(bytes.fromhex(mine[i]["value"])) == (start, end)[i - 1]


def test_selective_access_by_entry_layout() -> None:
    sel = access_selection(EntryAccess(from_entry=1, to_entry=96, from_column=1, to_column=0))
    assert sel is not None and sel.selector == 2
    assert sel.parameters == bytes.fromhex("020406000000010600000060120001120000")
