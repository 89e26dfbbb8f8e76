"""One home per protocol fact: the tag and result tables Python uses are the core's."""

from __future__ import annotations

import json
from pathlib import Path

from smmc_gateway import _core, translate
from smmc_gateway.cosem.classes import ACTION_RESULTS, DATA_ACCESS_RESULTS
from smmc_gateway.translate import Keys, Layer

GB = json.loads((Path(__file__).parent / "vectors" / "security" / "green_book.json").read_text())
EK = bytes.fromhex(GB["ek"])
AK = bytes.fromhex(GB["ak"])
TITLE = bytes.fromhex(GB["server_system_title"])


def fields(layer: Layer) -> dict[str, object]:
    return {f.name: f.value for f in layer.fields}


def offsets(layer: Layer) -> dict[str, int | None]:
    return {f.name: f.offset for f in layer.fields}


def test_ciphered_tags_are_the_cores_and_pair_with_their_plain_tags() -> None:
    rows = _core.ciphered_apdu_tags()
    names = dict(_core.apdu_tag_names())
    assert len(rows) == 34  # 16 plain APDUs x (glo-, ded-) + general-glo/ded-ciphering
    for tag, name, plain, dedicated in rows:
        assert names[tag] == name
        if plain is None:
            assert name == ("general-ded-ciphering" if dedicated else "general-glo-ciphering")
        else:
            assert name == ("ded-" if dedicated else "glo-") + names[plain]
    assert {t: n for t, n, _, _ in rows} == translate._CIPHERED_TAGS
    assert translate._PLAIN_TAGS[0xC4] == "get-response"
    assert translate._PLAIN_TAGS[0x0F] == "data-notification"
    assert 0xC8 not in translate._PLAIN_TAGS


def test_result_tables_are_the_cores() -> None:
    assert {n: v for v, n in _core.data_access_results()} == DATA_ACCESS_RESULTS
    assert DATA_ACCESS_RESULTS["read-write-denied"] == 3
    assert DATA_ACCESS_RESULTS["object-undefined"] == 4
    assert DATA_ACCESS_RESULTS["data-block-number-invalid"] == 19
    assert ACTION_RESULTS["long-action-aborted"] == 15
    assert "long-get-aborted" not in ACTION_RESULTS


def test_sn_ciphered_response_is_shown_as_ciphered_and_verified() -> None:
    # glo-read-response (0x2C) was missing from the translator's own copy of the table.
    plain = bytes.fromhex("0c0100090412345678")  # read-response, one data: octet-string
    data = _core.cipher_apdu(
        plain, security_control=0x30, system_title=TITLE, invocation_counter=9, ek=EK, ak=AK
    )
    assert data[0] == 0x2C
    layer = translate.translate(data, Keys(EK, AK, TITLE))[0]
    assert layer.name == "APDU glo-read-response"
    f = fields(layer)
    assert f["security control"] == "30" and f["invocation counter"] == 9
    assert {x.name: x.text for x in layer.fields}["authentication tag"] == "verified"


def test_general_ciphering_fields_sit_where_the_core_read_them() -> None:
    data = _core.cipher_apdu(
        bytes.fromhex("c001c1000301000000ff0200"),
        security_control=0x30,
        system_title=TITLE,
        invocation_counter=7,
        ek=EK,
        ak=AK,
        general=True,
    )
    layer = translate.translate(data)[0]
    assert layer.error is None
    at = offsets(layer)
    assert at["system title"] == 2 and at["length"] == 10
    assert (at["security control"], at["invocation counter"], at["ciphertext"]) == (11, 12, 16)
    assert at["authentication tag"] == len(data) - 12
    assert fields(layer)["length"] == len(data) - 11


def test_truncated_ciphered_apdu_is_the_cores_error() -> None:
    data = bytes.fromhex("c80a3000000001010203")  # announces 10 content bytes, 8 follow
    layer = translate.translate(data)[0]
    assert layer.name == "APDU glo-get-request"
    assert layer.error is not None
    assert (layer.error.field, layer.error.offset) == ("ciphered content length", 1)
    assert "truncated" in layer.error.message


def _ua(info: bytes) -> bytes:
    return _core.hdlc_encode("UA", dest_upper=0x10, src_upper=1, src_lower=17, info=info)


def test_hdlc_parameters_are_the_cores_parse() -> None:
    info = bytes.fromhex("81800d050202000a0109080400000003")
    assert _core.hdlc_parameters(info) == [
        (5, "max_info_field_length_tx", 512, 3),
        (0x0A, None, 9, 7),
        (8, "window_size_rx", 3, 10),
    ]
    frame = _ua(info)
    hdlc = translate.translate(frame)[0]
    params = hdlc.children[0]
    at = params.offset
    assert [(f.name, f.value, f.offset) for f in params.fields][3:] == [
        ("max_info_field_length_tx", 512, at + 3),
        ("parameter 0x0a", 9, at + 7),
        ("window_size_rx", 3, at + 10),
    ]
    # the addresses span what the core read: 1-byte client, 2-byte server
    addr = {f.name: (f.value, f.offset) for f in hdlc.fields}
    assert addr["destination address"] == ("21", 3)
    assert addr["source address"] == ("0223", 4)


def test_hdlc_parameter_errors_are_the_cores() -> None:
    params = translate.translate(_ua(bytes.fromhex("818103050180")))[0].children[0]
    assert params.error is not None
    assert params.error.field == "parameter group identifier"
    assert params.error.offset == params.offset + 1
    # a parameter running past the group length is refused, not read beyond it
    params = translate.translate(_ua(bytes.fromhex("8180030502020000")))[0].children[0]
    assert params.error is not None and params.error.field == "parameter value"


def test_wrapper_header_is_the_cores() -> None:
    frame = _core.wrapper_encode(16, 1, bytes.fromhex("c001c1000301000000ff0200"))
    assert _core.wrapper_header(frame) == (1, 16, 1, 12)
    layers = translate.translate(frame + frame[:3])
    first, cut = layers
    assert {f.name: f.value for f in first.fields}["source wPort"] == 16
    assert first.error is None
    assert cut.name == "wrapper" and cut.error is not None
    assert cut.error.field == "header" and "truncated" in cut.error.message
    assert cut.error.offset == len(frame) + 3


def test_python_takes_apdu_tags_by_name_from_the_core() -> None:
    from smmc_gateway.dlms import push
    from smmc_gateway.dlms.tags import TAGS
    from smmc_gateway.simulator import faults

    assert {n: t for t, n in _core.apdu_tag_names()} == TAGS
    assert (TAGS["aarq"], TAGS["rlrq"], TAGS["exception-response"]) == (0x60, 0x62, 0xD8)
    assert (faults.TAG_AARQ, faults.TAG_RLRQ) == (0x60, 0x62)
    assert push.PUSHED == (0x0F, 0xC2, 0x18)
    assert (push.GENERAL_GLO_CIPHERING, push.GENERAL_BLOCK_TRANSFER) == (0xDB, 0xE0)
