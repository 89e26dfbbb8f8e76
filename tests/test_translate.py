"""The decode translator's layer walk (smmc_gateway.translate) on published and built frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from smmc_gateway import _core
from smmc_gateway.translate import Keys, Layer, any_error, parse_hex, translate

VECTORS = Path(__file__).parent / "vectors"
GB = json.loads((VECTORS / "security" / "green_book.json").read_text())
EK = bytes.fromhex(GB["ek"])
AK = bytes.fromhex(GB["ak"])
SERVER_TITLE = bytes.fromhex(GB["server_system_title"])
GLO_GET = bytes.fromhex(GB["ciphered_apdus"][0]["ciphered"].replace(" ", ""))
PLAIN_GET = bytes.fromhex(GB["ciphered_apdus"][0]["plain"])


def _vectors(name: str) -> list[list[str]]:
    rows = []
    for line in (VECTORS / "hdlc" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append([c.strip() for c in line.split("|")])
    return rows


def fields(layer: Layer) -> dict[str, object]:
    return {f.name: f.value for f in layer.fields}


def texts(layer: Layer) -> dict[str, str | None]:
    return {f.name: f.text for f in layer.fields}


def walk(layers: list[Layer]) -> list[Layer]:
    out: list[Layer] = []
    for layer in layers:
        out.append(layer)
        out.extend(walk(layer.children))
    return out


@pytest.mark.parametrize("row", _vectors("frames.txt"), ids=lambda r: r[0])
def test_published_frames_decode(row: list[str]) -> None:
    _name, kind, dest, src, control, segmented, _info, frame = row
    layers = translate(bytes.fromhex(frame))
    assert not any_error(layers)
    hdlc = layers[0]
    assert hdlc.name == "HDLC frame"
    f, t = fields(hdlc), texts(hdlc)
    assert f["control"] == control.lower()
    assert str(t["control"]).startswith(kind)
    assert f"upper {dest.split('/')[0]} " in str(t["destination address"])
    assert f"upper {src.split('/')[0]} " in str(t["source address"])
    assert t["format"] is not None and f"segmentation {segmented}" in t["format"]


@pytest.mark.parametrize("row", _vectors("bad_frames.txt"), ids=lambda r: r[0])
def test_bad_frames_name_field_and_offset(row: list[str]) -> None:
    _name, field, offset, frame = row
    layers = translate(bytes.fromhex(frame))
    assert any_error(layers)
    err = layers[0].error
    assert err is not None
    assert err.field == field
    assert err.offset == int(offset)


def test_ua_parameters() -> None:
    frame = bytes.fromhex("7EA020210373739881801405020200060202000704000000010804000000016FEF7E")
    params = translate(frame)[0].children[0]
    assert params.name == "HDLC parameters"
    assert fields(params) | {} == {
        "format identifier": "81",
        "group identifier": "80",
        "group length": 20,
        "max_info_field_length_tx": 512,
        "max_info_field_length_rx": 512,
        "window_size_tx": 1,
        "window_size_rx": 1,
    }
    # offsets are absolute in the input
    assert [f.offset for f in params.fields][3:] == [11, 15, 19, 25]


def test_i_frame_llc_and_apdu_offsets() -> None:
    frame = bytes.fromhex("7EA0190321326FD8E6E600C0018100010101000001FF0200A8E37E")
    hdlc = translate(frame)[0]
    llc, apdu = hdlc.children
    assert llc.name == "LLC" and llc.offset == 8
    assert texts(llc)["source LSAP"] == "command (client to server)"
    assert apdu.offset == 11 and apdu.length == 13
    assert "N(S)=1 N(R)=1 P/F=1" in str(texts(hdlc)["control"])


def test_noise_between_frames_and_shared_flag() -> None:
    snrm = bytes.fromhex("7EA0070321930F017E")
    ua = bytes.fromhex("7EA00721037301407E")
    data = b"\x00\x11" + snrm + ua[1:] + b"\xff"  # UA shares the SNRM's closing flag
    layers = translate(data)
    assert [layer.name for layer in layers] == ["noise", "HDLC frame", "HDLC frame", "noise"]
    assert layers[2].offset == 2 + len(snrm) - 1
    assert not any_error(layers)


def test_truncated_frame() -> None:
    layers = translate(bytes.fromhex("7EA0190321326FD8E6E600C001"))
    assert any_error(layers)
    err = layers[0].error
    assert err is not None and err.field == "length" and "truncated" in err.message


def test_segmented_i_frames_are_reassembled() -> None:
    apdu = bytes.fromhex("C401C1000906") + b"\x30" * 6  # get-response with a 6-byte octet-string
    info = b"\xe6\xe7\x00" + apdu
    first = _core.hdlc_encode(
        "I", dest_upper=16, src_upper=1, info=info[:8], segmented=True, send_seq=0
    )
    second = _core.hdlc_encode("I", dest_upper=16, src_upper=1, info=info[8:], send_seq=1)
    layers = translate(first + second)
    assert not any(layer.error for layer in layers)
    assert layers[0].notes and "segmented" in layers[0].notes[0]
    whole = layers[1].children[-1]
    assert whole.length == len(apdu)


def test_wrapper_frame() -> None:
    data = _core.wrapper_encode(16, 1, PLAIN_GET)
    layers = translate(data)
    w = layers[0]
    assert w.name == "wrapper"
    assert fields(w) == {
        "version": 1,
        "source wPort": 16,
        "destination wPort": 1,
        "length": len(PLAIN_GET),
    }
    assert w.children[0].offset == 8


def test_wrapper_length_beyond_input() -> None:
    data = _core.wrapper_encode(16, 1, PLAIN_GET)[:-3]
    w = translate(data)[0]
    assert w.error is not None and w.error.field == "length" and w.error.offset == 6


def test_ciphered_without_keys_shows_security_header() -> None:
    layer = translate(GLO_GET)[0]
    f, t = fields(layer), texts(layer)
    assert f["security control"] == "30"
    assert t["security control"] == "authenticated encryption, suite 0, unicast key"
    assert f["invocation counter"] == 0x01234567
    assert f["authentication tag"] == GLO_GET[-12:].hex()
    assert not layer.children
    assert not any_error([layer])


def test_ciphered_with_keys_is_verified_and_deciphered() -> None:
    layer = translate(GLO_GET, Keys(EK, AK, SERVER_TITLE))[0]
    assert layer.error is None
    assert texts(layer)["authentication tag"] == "verified"
    inner = layer.children[0]
    assert inner.length == len(PLAIN_GET)
    assert fields(inner).get("tag", "c0") == "c0" or inner.name.startswith("APDU get-request")


def test_ciphered_with_wrong_key_is_an_error_at_the_tag() -> None:
    layer = translate(GLO_GET, Keys(AK, AK, SERVER_TITLE))[0]
    assert layer.error is not None
    assert layer.error.field == "authentication tag"
    assert layer.error.offset == len(GLO_GET) - 12


def test_ciphered_tampered() -> None:
    tampered = bytearray(GLO_GET)
    tampered[10] ^= 1
    layer = translate(bytes(tampered), Keys(EK, AK, SERVER_TITLE))[0]
    assert layer.error is not None and layer.error.field == "authentication tag"


def test_general_glo_ciphering_carries_its_title() -> None:
    data = _core.cipher_apdu(
        PLAIN_GET,
        security_control=0x30,
        system_title=SERVER_TITLE,
        invocation_counter=7,
        ek=EK,
        ak=AK,
        general=True,
    )
    layer = translate(data, Keys(EK, AK, None))[0]
    assert layer.error is None, layer.error
    assert fields(layer)["system title"] == SERVER_TITLE.hex()
    assert fields(layer)["invocation counter"] == 7
    assert layer.children[0].length == len(PLAIN_GET)


def test_ciphered_hdlc_frame_whole_stack() -> None:
    ciphered = _core.cipher_apdu(
        PLAIN_GET,
        security_control=0x30,
        system_title=SERVER_TITLE,
        invocation_counter=9,
        ek=EK,
        ak=AK,
    )
    frame = _core.hdlc_encode("I", dest_upper=1, src_upper=1, info=b"\xe6\xe6\x00" + ciphered)
    layers = translate(b"\x55" + frame, Keys(EK, AK, SERVER_TITLE))
    names = [layer.name for layer in walk(layers)]
    assert names[:4] == ["noise", "HDLC frame", "LLC", "APDU glo-get-request"]
    assert not any_error(layers)


def test_axdr_data_tree_via_decode_apdu() -> None:
    if not hasattr(_core, "decode_apdu"):
        pytest.skip("this core build has no decode_apdu yet")
    body = _core.encode(
        {
            "type": "structure",
            "value": [
                {"type": "octet-string", "value": "0100010800ff"},
                {"type": "double-long-unsigned", "value": 1234},
            ],
        }
    )
    apdu = bytes.fromhex("C40181 00".replace(" ", "")) + body
    layers = translate(apdu)
    data = [layer for layer in walk(layers) if layer.name.startswith("A-XDR data")]
    assert data and data[0].fields[0].typed
    assert data[0].fields[0].value["value"][1]["value"] == 1234


def test_bad_axdr_is_an_error_in_its_layer() -> None:
    if not hasattr(_core, "decode_apdu"):
        pytest.skip("this core build has no decode_apdu yet")
    apdu = bytes.fromhex("C40181000906303030")  # octet-string of 6 with 3 bytes
    layers = translate(apdu)
    assert any_error(layers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7e a0:07-03", b"\x7e\xa0\x07\x03"), ("0x7E 0xA0", b"\x7e\xa0"), ("\n7EA0\n", b"\x7e\xa0")],
)
def test_parse_hex_accepts_common_spellings(text: str, expected: bytes) -> None:
    assert parse_hex(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("7EA", "odd number"), ("7EAG", "'G' at character 4"), ("  ", "no bytes")],
)
def test_parse_hex_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hex(text)


def test_keys_repr_hides_material() -> None:
    assert EK.hex() not in repr(Keys(EK, AK, None))


def test_aarq_ciphered_initiate_deciphered_with_calling_ap_title() -> None:
    if not hasattr(_core, "encode_apdu"):
        pytest.skip("this core build has no encode_apdu yet")
    client_title = bytes.fromhex(GB["client_system_title"])
    initiate = _core.encode_apdu(
        {
            "apdu": "initiate-request",
            "dedicated_key": None,
            "response_allowed": True,
            "proposed_quality_of_service": None,
            "proposed_dlms_version_number": 6,
            "proposed_conformance": ["get", "set", "action"],
            "client_max_receive_pdu_size": 1024,
        }
    )
    glo = _core.cipher_apdu(
        initiate,
        security_control=0x30,
        system_title=client_title,
        invocation_counter=3,
        ek=EK,
        ak=AK,
    )
    aarq = _core.encode_apdu(
        {
            "apdu": "aarq",
            "application_context_name": "logical-name-with-ciphering",
            "calling_ap_title": client_title,
            "user_information": _core.decode_apdu(glo),
        }
    )
    layers = translate(aarq, Keys(EK, AK, None))  # no --system-title: the AP title is used
    names = [layer.name for layer in walk(layers)]
    assert "user-information: APDU glo-initiate-request" in names
    assert "APDU initiate-request" in names
    assert not any_error(layers)
    glo_layer = next(x for x in walk(layers) if x.name.endswith("glo-initiate-request"))
    assert glo_layer.offset == len(aarq) - len(glo)
    assert texts(glo_layer)["authentication tag"] == "verified"


def test_four_byte_server_address_and_rr() -> None:
    snrm = _core.hdlc_encode("SNRM", dest_upper=1, dest_lower=17, src_upper=16, address_size=4)
    rr = _core.hdlc_encode(
        "RR", dest_upper=16, src_upper=1, src_lower=0x3FFF, recv_seq=5, address_size=4
    )
    first, second = translate(snrm + rr)
    assert texts(first)["destination address"] == "upper 1 (0x1), lower 17 (0x11)"
    assert fields(first)["destination address"] == "00020023"
    assert texts(second)["source address"] == "upper 1 (0x1), lower 16383 (0x3fff)"
    assert texts(second)["control"] == "RR N(R)=5 P/F=1"
    assert [f.offset for f in second.fields if f.name == "control"] == [len(snrm) + 8]


def _apdu_vectors() -> list[Any]:
    rows = []
    for line in (VECTORS / "apdu" / "vectors.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            rows.append(pytest.param(*parts, id=parts[0]))
    return rows


@pytest.mark.parametrize(("name", "kind", "hexdata"), _apdu_vectors())
def test_published_apdus(name: str, kind: str, hexdata: str) -> None:
    if not hasattr(_core, "decode_apdu"):
        pytest.skip("this core build has no decode_apdu yet")
    layers = translate(bytes.fromhex(hexdata))
    top = layers[0]
    assert top.name.startswith("APDU ")
    assert kind in top.name or fields(top).get("kind", "").startswith(kind)  # type: ignore[union-attr]
    assert not any_error(layers), [x.error for x in walk(layers)]
