"""What the client puts on the wire, checked against published bytes
(tests/vectors: Green Book examples as reproduced, jDLMS HLS pass 3), so the
client follows the standard's encodings and not only what our simulator takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.access import EntryAccess, RangeAccess, access_selection
from smmc_gateway.dlms.association import Security, SessionSettings, aarq_dict
from smmc_gateway.dlms.ciphering import CipherContext
from smmc_gateway.dlms.errors import SecurityFailure
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


def our_aarq(settings: SessionSettings, ctos: bytes | None = None) -> bytes:
    initiate = {
        "apdu": "initiate-request",
        "proposed_dlms_version_number": 6,
        "proposed_conformance": list(settings.conformance),
        "client_max_receive_pdu_size": settings.max_pdu_size,
    }
    return _core.encode_apdu(aarq_dict(settings, ctos, initiate))


def test_aarq_without_authentication_is_the_green_book_bytes() -> None:
    assert our_aarq(gb_settings(Security.none())) == apdu_vector("gb-aarq-no-auth")


def test_aarq_with_lls_is_the_green_book_bytes() -> None:
    settings = gb_settings(Security.lls(b"12345678"))
    assert our_aarq(settings) == apdu_vector("gb-aarq-lls")


def gb_cipher() -> CipherContext:
    store = InvocationCounterStore(":memory:")
    security = Security.hls_gmac(
        system_title=bytes.fromhex(GB["client_system_title"]),
        ek=bytes.fromhex(GB["ek"]),
        ak=bytes.fromhex(GB["ak"]),
        ic_store=store,
        ic_scope="gb",
    )
    return CipherContext(security, "gb")


def test_ciphered_initiate_request_is_the_green_book_bytes() -> None:
    case = next(c for c in GB["ciphered_apdus"] if c["name"].startswith("glo-initiateRequest"))
    cipher = gb_cipher()
    cipher.store.skip_to("gb", case["invocation_counter"])
    assert cipher.cipher_initiate(bytes.fromhex(case["plain"])) == bytes.fromhex(case["ciphered"])


def test_f_stoc_is_the_green_book_value() -> None:
    case = next(c for c in GB["hls_gmac"] if c["name"].startswith("f(StoC)"))
    reply = gb_cipher().f_stoc(bytes.fromhex(case["challenge"]), case["invocation_counter"])
    assert reply == bytes.fromhex(case["response"])


def test_server_f_ctos_is_verified_and_a_wrong_one_refused() -> None:
    case = next(c for c in GB["hls_gmac"] if c["name"].startswith("f(CtoS)"))
    cipher = gb_cipher()
    cipher.server_system_title = bytes.fromhex(GB["server_system_title"])
    response = bytes.fromhex(case["response"])
    cipher.verify_f_ctos(bytes.fromhex(case["challenge"]), response)
    tampered = response[:-1] + bytes([response[-1] ^ 1])
    with pytest.raises(SecurityFailure, match="HLS authentication"):
        cipher.verify_f_ctos(bytes.fromhex(case["challenge"]), tampered)


def test_reply_to_hls_authentication_has_the_published_layout() -> None:
    published = apdu_vector("jdlms-hls-reply-request")
    f_stoc = _core.decode(_core.decode_apdu(published)["parameters_raw"])
    ours = _core.encode_apdu(
        {
            "apdu": "action-request-normal",
            "invoke_id_and_priority": 0xC1,
            "method": {"class_id": 15, "obis": "0.0.40.0.0.255", "method_id": 1},
            "parameters_raw": _core.encode(f_stoc),
        }
    )
    assert ours == published


def test_selective_access_by_range_matches_a_published_request() -> None:
    published = _core.decode_apdu(apdu_vector("gosem-get-request-range"))
    params = _core.decode(published["attribute"]["access_selection"]["parameters_raw"])
    start = _core.decode_datetime(bytes.fromhex(params["value"][1]["value"]))
    end = _core.decode_datetime(bytes.fromhex(params["value"][2]["value"]))
    assert start is not None and end is not None
    ours = access_selection(RangeAccess(start=start, end=end))
    assert (
        ours is not None
        and ours["selector"] == published["attribute"]["access_selection"]["selector"]
    )
    mine = _core.decode(ours["parameters_raw"])["value"]
    theirs = params["value"]
    assert mine[0] == theirs[0]  # the clock capture object as restricting object
    assert mine[3] == theirs[3]  # all columns
    for i in (1, 2):  # the same instants (clock status may differ: not specified vs 0)
        assert _core.decode_datetime(bytes.fromhex(mine[i]["value"])) == (start, end)[i - 1]


def test_selective_access_by_entry_layout() -> None:
    sel = access_selection(EntryAccess(from_entry=1, to_entry=96, from_column=1, to_column=0))
    assert sel is not None and sel["selector"] == 2
    assert sel["parameters_raw"] == bytes.fromhex("020406000000010600000060120001120000")
