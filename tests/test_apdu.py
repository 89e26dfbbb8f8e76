"""decode_apdu / encode_apdu: published vectors, one full dict per kind,
error reporting, and property tests (hypothesis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smmc_gateway._core import ApduError, apdu_kinds, decode_apdu, encode_apdu

VECTORS = Path(__file__).parent / "vectors" / "apdu" / "vectors.txt"


def load_vectors() -> list[tuple[str, str, bytes]]:
    out = []
    for line in VECTORS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, hexstr = line.split()
            out.append((name, kind, bytes.fromhex(hexstr)))
    return out


ALL_VECTORS = load_vectors()
BY_NAME = {name: data for name, _, data in ALL_VECTORS}


@pytest.mark.parametrize(("name", "kind", "data"), ALL_VECTORS, ids=[v[0] for v in ALL_VECTORS])
def test_published_vector_decodes_and_re_encodes(name: str, kind: str, data: bytes) -> None:
    d = decode_apdu(data)
    assert d["apdu"] == kind
    assert encode_apdu(d) == data


def test_green_book_aarq_lls() -> None:
    d = decode_apdu(BY_NAME["gb-aarq-lls"])
    assert d["application_context_name"] == "logical-name"
    assert d["mechanism_name"] == "lls"
    assert d["sender_acse_requirements"] is True
    assert d["calling_authentication_value"] == b"12345678"
    ui = d["user_information"]
    assert ui["apdu"] == "initiate-request"
    assert ui["proposed_dlms_version_number"] == 6
    assert ui["client_max_receive_pdu_size"] == 1200
    assert "get" in ui["proposed_conformance"] and "read" not in ui["proposed_conformance"]
    assert ui["dedicated_key"] is None and ui["response_allowed"] is None


def test_aare_results_and_diagnostics() -> None:
    d = decode_apdu(BY_NAME["gb-aare-accepted"])
    assert d["result"] == "accepted"
    assert d["result_source_diagnostic"] == {"source": "acse-service-user", "value": "null"}
    assert d["user_information"]["vaa_name"] == 7
    assert d["user_information"]["server_max_receive_pdu_size"] == 500
    d = decode_apdu(BY_NAME["gosem-aare-auth-failure"])
    assert (d["result"], d["result_source_diagnostic"]["value"]) == (
        "rejected-permanent",
        "authentication-failure",
    )
    d = decode_apdu(BY_NAME["hx-aare-hls"])
    assert d["mechanism_name"] == "hls"
    assert d["responding_authentication_value"] == b"3C520C17"
    d = decode_apdu(BY_NAME["gosem-aare-confirmed-service-error"])
    assert d["user_information"] == {
        "apdu": "confirmed-service-error",
        "service": "initiate-error",
        "error": "initiate",
        "value": "refused-by-the-vde-handler",
    }
    d = decode_apdu(BY_NAME["gosem-aare-no-user-information"])
    assert (
        d["user_information"] is None
        and d["result_source_diagnostic"]["value"] == "authentication-failure"
    )


def test_hls_association_vectors() -> None:
    d = decode_apdu(BY_NAME["cxo-aarq-hls-gmac"])
    assert (d["mechanism_name"], d["calling_authentication_value"]) == ("hls-gmac", b"K56iVagY")
    d = decode_apdu(BY_NAME["cxo-aare-hls-gmac-long"])
    assert d["mechanism_name"] == "hls-gmac" and d["responding_ap_title"] == b"ELS00000"
    assert len(d["responding_authentication_value"]) == 64
    assert d["user_information"]["apdu"] == "glo-initiate-response"
    assert (
        decode_apdu(BY_NAME["cxo-aare-qos"])["user_information"]["negotiated_quality_of_service"]
        == 0x12
    )


def test_set_block_vectors() -> None:
    d = decode_apdu(BY_NAME["gosem-set-request"])
    assert d["attribute"]["obis"] == "0.1.94.35.11.255"
    assert d["value_raw"] == bytes.fromhex("0600002710")
    assert decode_apdu(BY_NAME["gosem-set-response-rejected"])["result"] == "read-write-denied"
    d = decode_apdu(BY_NAME["gosem-set-first-datablock"])
    assert (d["last_block"], d["block_number"], len(d["raw_data"])) == (False, 1, 0x6B)
    d = decode_apdu(BY_NAME["gosem-set-with-list-first-datablock"])
    assert len(d["attributes"]) == 10 and d["attributes"][2]["obis"] == "1.0.0.9.11.255"
    d = decode_apdu(BY_NAME["gosem-set-response-last-datablock-with-list"])
    assert d["results"] == ["success"] * 10 and d["block_number"] == 2


def test_hls_pass_3_4_action_vectors() -> None:
    d = decode_apdu(BY_NAME["jdlms-hls-reply-request"])
    assert d["method"] == {"class_id": 15, "obis": "0.0.40.0.0.255", "method_id": 1}
    assert d["parameters_raw"][:3] == bytes.fromhex("091110")  # octet-string(17): SC 0x10, IC, tag
    d = decode_apdu(BY_NAME["jdlms-hls-reply-response"])
    assert d["result"] == "success"
    assert d["return_data"]["data_raw"][:3] == bytes.fromhex("091110")


def test_ciphered_framing() -> None:
    d = decode_apdu(BY_NAME["gosem-aarq-ciphered-lls"])
    assert d["application_context_name"] == "logical-name-with-ciphering"
    assert d["calling_ap_title"] == bytes.fromhex("4349520000000001")
    ui = d["user_information"]
    assert ui["apdu"] == "glo-initiate-request"
    assert (ui["security_control"], ui["invocation_counter"], len(ui["ciphertext"])) == (
        0x30,
        0x59,
        0x2B,
    )
    d = decode_apdu(BY_NAME["gosem-ded-get-request"])
    assert d == {
        "apdu": "ded-get-request",
        "security_control": 0x30,
        "invocation_counter": 1,
        "ciphertext": bytes.fromhex("D3B903996D9508C5B6BCDEB025DD1800A5C92775FB55F317CF"),
    }


def test_xdlms_vectors() -> None:
    assert decode_apdu(BY_NAME["gosem-get-request"]) == {
        "apdu": "get-request-normal",
        "invoke_id_and_priority": 0xC1,
        "attribute": {
            "class_id": 8,
            "obis": "0.0.1.0.0.255",
            "attribute_id": 3,
            "access_selection": None,
        },
    }
    d = decode_apdu(BY_NAME["gosem-get-response"])
    assert d["result"] == {"data_raw": bytes.fromhex("10003C")}
    d = decode_apdu(BY_NAME["cxo-data-notification"])
    assert d["long_invoke_id_and_priority"] == 1 and len(d["date_time"]) == 12
    assert d["body_raw"][:2] == b"\x02\x03"
    d = decode_apdu(BY_NAME["gxt-action-response"])
    assert (d["result"], d["return_data"]) == ("type-unmatched", None)
    assert decode_apdu(BY_NAME["gosem-exception-response"])["state_error"] == "service-not-allowed"


U16 = bytes.fromhex("12003C")  # long-unsigned 60
ATTR = {"class_id": 3, "obis": "1.0.1.8.0.255", "attribute_id": 2, "access_selection": None}
ATTR_SEL = {
    "class_id": 7,
    "obis": "1.0.99.1.0.255",
    "attribute_id": 2,
    "access_selection": {
        "selector": 2,
        "parameters_raw": bytes.fromhex("020406000000010600000000120001120000"),
    },
}
METHOD = {"class_id": 70, "obis": "0.0.96.3.10.255", "method_id": 1}
BLOCK = {"last_block": True, "block_number": 2, "raw_data": b"\x01\x02\x03"}
IID = {"invoke_id_and_priority": 0xC1}


def full_dicts() -> list[dict[str, Any]]:
    """One complete dict (every documented key) for every non-ciphered kind."""
    ir = {
        "apdu": "initiate-request",
        "dedicated_key": bytes(range(16)),
        "response_allowed": False,
        "proposed_quality_of_service": 1,
        "proposed_dlms_version_number": 6,
        "proposed_conformance": ["general-protection", "get", "set", "action"],
        "client_max_receive_pdu_size": 0xFFFF,
    }
    ires = {
        "apdu": "initiate-response",
        "negotiated_quality_of_service": None,
        "negotiated_dlms_version_number": 6,
        "negotiated_conformance": ["get", "selective-access"],
        "server_max_receive_pdu_size": 512,
        "vaa_name": 7,
    }
    return [
        {
            "apdu": "aarq",
            "protocol_version": b"\x07\x80",
            "application_context_name": "logical-name-with-ciphering",
            "called_ap_title": None,
            "called_ae_qualifier": None,
            "called_ap_invocation_id": None,
            "called_ae_invocation_id": None,
            "calling_ap_title": b"MMM\x00\x00\xbcaN",
            "calling_ae_qualifier": None,
            "calling_ap_invocation_id": None,
            "calling_ae_invocation_id": 7,
            "sender_acse_requirements": True,
            "mechanism_name": "hls-gmac",
            "calling_authentication_value": b"K56iVagY",
            "implementation_information": None,
            "user_information": {
                "apdu": "glo-initiate-request",
                "security_control": 0x30,
                "invocation_counter": 1,
                "ciphertext": bytes(31),
            },
        },
        {
            "apdu": "aare",
            "protocol_version": None,
            "application_context_name": "logical-name",
            "result": "rejected-permanent",
            "result_source_diagnostic": {
                "source": "acse-service-provider",
                "value": "no-common-acse-version",
            },
            "responding_ap_title": b"SIM00001",
            "responding_ae_qualifier": None,
            "responding_ap_invocation_id": None,
            "responding_ae_invocation_id": None,
            "responder_acse_requirements": True,
            "mechanism_name": "2.16.756.5.8.2.9",
            "responding_authentication_value": b"P6wRJ21F",
            "implementation_information": None,
            "user_information": ires,
        },
        {"apdu": "rlrq", "reason": "normal", "user_information": None},
        {"apdu": "rlre", "reason": "not-finished", "user_information": None},
        ir,
        ires,
        {"apdu": "confirmed-service-error", "service": "read", "error": "access", "value": 2},
        {"apdu": "get-request-normal", **IID, "attribute": ATTR_SEL},
        {"apdu": "get-request-next", **IID, "block_number": 5},
        {"apdu": "get-request-with-list", **IID, "attributes": [ATTR, ATTR_SEL]},
        {
            "apdu": "get-response-normal",
            **IID,
            "result": {"data_access_result": "object-undefined"},
        },
        {
            "apdu": "get-response-with-datablock",
            **IID,
            "last_block": False,
            "block_number": 1,
            "raw_data": b"\x01\x82",
            "data_access_result": None,
        },
        {
            "apdu": "get-response-with-datablock",
            **IID,
            "last_block": True,
            "block_number": 3,
            "raw_data": None,
            "data_access_result": "long-get-aborted",
        },
        {
            "apdu": "get-response-with-list",
            **IID,
            "results": [{"data_raw": U16}, {"data_access_result": "read-write-denied"}],
        },
        {"apdu": "set-request-normal", **IID, "attribute": ATTR, "value_raw": U16},
        {"apdu": "set-request-with-first-datablock", **IID, "attribute": ATTR, **BLOCK},
        {"apdu": "set-request-with-datablock", **IID, **BLOCK},
        {
            "apdu": "set-request-with-list",
            **IID,
            "attributes": [ATTR, ATTR],
            "values_raw": [U16, b"\x00"],
        },
        {
            "apdu": "set-request-with-list-and-first-datablock",
            **IID,
            "attributes": [ATTR_SEL],
            **BLOCK,
        },
        {"apdu": "set-response-normal", **IID, "result": "success"},
        {"apdu": "set-response-datablock", **IID, "block_number": 1},
        {
            "apdu": "set-response-last-datablock",
            **IID,
            "result": "type-unmatched",
            "block_number": 2,
        },
        {
            "apdu": "set-response-last-datablock-with-list",
            **IID,
            "results": ["success", "other-reason"],
            "block_number": 2,
        },
        {"apdu": "set-response-with-list", **IID, "results": ["success", 99]},
        {"apdu": "action-request-normal", **IID, "method": METHOD, "parameters_raw": b"\x0f\x00"},
        {"apdu": "action-request-normal", **IID, "method": METHOD, "parameters_raw": None},
        {"apdu": "action-request-next-pblock", **IID, "block_number": 1},
        {"apdu": "action-request-with-list", **IID, "methods": [METHOD], "parameters_raw": [U16]},
        {"apdu": "action-request-with-first-pblock", **IID, "method": METHOD, **BLOCK},
        {
            "apdu": "action-request-with-list-and-first-pblock",
            **IID,
            "methods": [METHOD, METHOD],
            **BLOCK,
        },
        {"apdu": "action-request-with-pblock", **IID, **BLOCK},
        {
            "apdu": "action-response-normal",
            **IID,
            "result": "success",
            "return_data": {"data_raw": U16},
        },
        {"apdu": "action-response-with-pblock", **IID, **BLOCK},
        {
            "apdu": "action-response-with-list",
            **IID,
            "results": [
                {"result": "success", "return_data": None},
                {
                    "result": "long-action-aborted",
                    "return_data": {"data_access_result": "temporary-failure"},
                },
            ],
        },
        {"apdu": "action-response-next-pblock", **IID, "block_number": 9},
        {
            "apdu": "data-notification",
            "long_invoke_id_and_priority": 7,
            "date_time": bytes(12),
            "body_raw": U16,
        },
        {
            "apdu": "event-notification-request",
            "time": None,
            "attribute": ATTR | {},
            "value_raw": U16,
        },
        {
            "apdu": "exception-response",
            "state_error": "service-unknown",
            "service_error": "invocation-counter-error",
            "invocation_counter": 0x1234,
        },
        {
            "apdu": "general-block-transfer",
            "last_block": False,
            "streaming": True,
            "window": 5,
            "block_number": 1,
            "block_number_ack": 0,
            "block_data": bytes(200),
        },
        {
            "apdu": "general-glo-ciphering",
            "system_title": b"SIM00001",
            "security_control": 0x30,
            "invocation_counter": 3,
            "ciphertext": bytes(20),
        },
        {
            "apdu": "general-ded-ciphering",
            "system_title": b"SIM00001",
            "security_control": 0x10,
            "invocation_counter": 4,
            "ciphertext": bytes(12),
        },
        *SN_DICTS,
    ]


_NAME = {"access": "variable-name", "name": 0x3008}
SN_DICTS: list[dict[str, Any]] = [
    {
        "apdu": "read-request",
        "variables": [
            _NAME,
            {
                "access": "parameterized-access",
                "name": 0x3108,
                "selector": 1,
                "parameters_raw": U16,
            },
            {"access": "block-number-access", "block_number": 2},
            {
                "access": "read-data-block-access",
                "last_block": True,
                "block_number": 1,
                "raw_data": b"\x01",
            },
            {"access": "write-data-block-access", "last_block": False, "block_number": 3},
        ],
    },
    {
        "apdu": "read-response",
        "results": [
            {"data_raw": U16},
            {"data_access_result": "object-undefined"},
            {"last_block": False, "block_number": 1, "raw_data": b"\x01\x02"},
            {"block_number": 4},
        ],
    },
    {"apdu": "write-request", "variables": [_NAME], "data_raw": [U16]},
    {"apdu": "unconfirmed-write-request", "variables": [_NAME], "data_raw": [U16]},
    {"apdu": "write-response", "results": ["success", "read-write-denied", {"block_number": 2}]},
    {
        "apdu": "information-report-request",
        "current_time": bytes(12),
        "variables": [_NAME],
        "data_raw": [U16],
    },
]


def _canonical(d: dict[str, Any]) -> dict[str, Any]:
    # event-notification carries a plain Attribute (no access_selection)
    if d["apdu"] == "event-notification-request":
        d = d | {"attribute": {k: v for k, v in d["attribute"].items() if k != "access_selection"}}
    return d


@pytest.mark.parametrize("d", full_dicts(), ids=lambda d: str(d["apdu"]))
def test_every_kind_dict_round_trips(d: dict[str, Any]) -> None:
    d = _canonical(d)
    data = encode_apdu(d)
    assert decode_apdu(data) == d
    assert encode_apdu(decode_apdu(data)) == data


def test_every_kind_is_covered() -> None:
    kinds = set(apdu_kinds())
    covered = {d["apdu"] for d in full_dicts()}
    ciphered = {k for k in kinds if k.startswith(("glo-", "ded-"))}
    assert kinds == covered | ciphered
    assert {"glo-get-request", "ded-action-response", "glo-initiate-response"} <= ciphered


@pytest.mark.parametrize("kind", [k for k in apdu_kinds() if k.startswith(("glo-", "ded-"))])
def test_ciphered_kinds_round_trip(kind: str) -> None:
    d = {
        "apdu": kind,
        "security_control": 0x30,
        "invocation_counter": 0xDEADBEEF,
        "ciphertext": b"\xaa" * 140,
    }
    data = encode_apdu(d)
    assert data[1:3] == b"\x81\x91"  # 145 content bytes: long A-XDR length
    assert decode_apdu(data) == d


def test_encode_accepts_ints_and_omitted_optionals() -> None:
    data = encode_apdu(
        {
            "apdu": "get-request-normal",
            "invoke_id_and_priority": 0xC1,
            "attribute": {"class_id": 8, "obis": "0.0.1.0.0.255", "attribute_id": 3},
        }
    )
    assert data == BY_NAME["gosem-get-request"]
    assert encode_apdu(
        {"apdu": "set-response-normal", "invoke_id_and_priority": 0xC1, "result": 4}
    ) == bytes.fromhex("C501C104")
    ir = {
        "apdu": "initiate-request",
        "proposed_dlms_version_number": 6,
        "proposed_conformance": 0x007E1F,
        "client_max_receive_pdu_size": 0x04B0,
    }
    assert encode_apdu(ir) == bytes.fromhex("01000000065F1F0400007E1F04B0")


@pytest.mark.parametrize(
    ("data", "field", "offset"),
    [
        (b"", "APDU tag", 0),
        (b"\x99", "APDU tag", 0),
        (bytes.fromhex("C407C1"), "get-response choice", 1),
        (bytes.fromhex("C101C100080000010000FF020007"), "value", 13),
        (bytes.fromhex("C001C100080000010000FF0202"), "access-selection", 12),
        (bytes.fromhex("C401C10010003C00"), "APDU", 7),
        (bytes.fromhex("6000"), "application-context-name", 2),
        # Connexo ACSE tests: AARE whose declared length is one short (P6wRJ21F example)
        (
            bytes.fromhex(
                "6141A109060760857405080101A203020100A305A10302010E88020780890760857405080202"
                "AA0A8008503677524A323146BE10040E0800065F1F040000501F01F40007"
            ),
            "ACSE APDU",
            67,
        ),
        # Connexo ACSE tests: malformed AAREs (bad conformance header; stray tag 0x0A)
        (
            bytes.fromhex(
                "6129a109060760857405080101a203020101a305a10302010dbe10040e0800065f1f000c00101904180007"
            ),
            "conformance",
            32,
        ),
        (
            bytes.fromhex(
                "6133a1090607608574050801010a03020101a305a10302010da4084b414d0000000009"
                "be10040e0800065f1f040000101904180007"
            ),
            "ACSE field",
            13,
        ),
    ],
)
def test_decode_errors_name_field_and_offset(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(ApduError) as e:
        decode_apdu(data)
    assert e.value.field == field
    assert e.value.offset == offset
    assert field in str(e.value)


@pytest.mark.parametrize(
    ("d", "field"),
    [
        ({"apdu": "no-such-kind"}, "apdu"),
        ({"apdu": "get-request-next", "invoke_id_and_priority": 1}, "block_number"),
        (
            {"apdu": "get-request-next", "invoke_id_and_priority": 300, "block_number": 1},
            "invoke_id_and_priority",
        ),
        ({"apdu": "set-response-normal", "invoke_id_and_priority": 1, "result": "fine"}, "result"),
        (
            {"apdu": "set-request-normal", **IID, "attribute": ATTR, "value_raw": b"\x12\x00"},
            "value_raw",
        ),
        (
            {
                "apdu": "set-request-normal",
                **IID,
                "attribute": ATTR | {"obis": "1.0.1.8.0"},
                "value_raw": U16,
            },
            "obis",
        ),
        (
            {"apdu": "data-notification", "long_invoke_id_and_priority": 1, "body_raw": "hi"},
            "body_raw",
        ),
        (
            {
                "apdu": "general-block-transfer",
                "last_block": True,
                "streaming": False,
                "window": 64,
            },
            "window",
        ),
        ({"apdu": "rlrq", "reason": "normal", "user_info": None}, "apdu"),
    ],
)
def test_encode_errors_name_the_key(d: dict[str, Any], field: str) -> None:
    with pytest.raises(ApduError) as e:
        encode_apdu(d)
    assert e.value.field == field


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_apdu_error(data: bytes) -> None:
    try:
        d = decode_apdu(data)
    except ApduError:
        return
    assert decode_apdu(encode_apdu(d)) == d


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([v[2] for v in ALL_VECTORS]), st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_vectors_raise_only_apdu_error(data: bytes, pos: int, byte: int) -> None:
    b = bytearray(data)
    b[pos % len(b)] = byte
    try:
        d = decode_apdu(bytes(b))
    except ApduError:
        return
    assert decode_apdu(encode_apdu(d)) == d


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 255), min_size=6, max_size=6),
    st.integers(-128, 127),
    st.one_of(st.none(), st.tuples(st.integers(0, 255), st.binary(max_size=20))),
)
def test_generated_get_requests_round_trip(
    iid: int, class_id: int, obis: list[int], attr: int, access: tuple[int, bytes] | None
) -> None:
    sel = (
        None
        if access is None
        else {
            "selector": access[0],
            "parameters_raw": b"\x09" + bytes([len(access[1])]) + access[1],
        }
    )
    d = {
        "apdu": "get-request-normal",
        "invoke_id_and_priority": iid,
        "attribute": {
            "class_id": class_id,
            "obis": ".".join(map(str, obis)),
            "attribute_id": attr,
            "access_selection": sel,
        },
    }
    assert decode_apdu(encode_apdu(d)) == d
