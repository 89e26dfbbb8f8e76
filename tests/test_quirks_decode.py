"""`smmc-gateway decode` and tolerant reception: the decode is strict; an APDU that
decodes only with a quirk is not valid (exit 1) but its value is shown and the quirk
named; an input holding no frame or APDU is never "valid"."""

from __future__ import annotations

import json

import pytest
from smmc_gateway.cli import main

CLOCK = "C401C100090C07EA0C0304100000FF800000"
JUNK18 = "000102030405060708090A0B0C0D0E0F1011"
# Iskraemeco SN meter, AARE in an HDLC frame (OpenMUC jDLMS HdlcFrameTest.decode3): the
# InitiateResponse is one byte longer than its octet string and the lengths around it.
ISKRA_FRAME = (
    "7EA0372103306C7CE6E7006128A109060760857405080102A203020100A305A103020100BE0F040D08"
    "00065F1F04001802200960FA000AA87E"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("hexstr", ["7ea0", "7e", "7e7e", "7ea07e", "7e a0 7e a0"])
def test_too_short_inputs_are_not_valid(capsys: pytest.CaptureFixture[str], hexstr: str) -> None:
    rc, out, err = run(capsys, "decode", "--json", hexstr)
    assert rc == 1, out + err
    doc = json.loads(out)
    assert doc["valid"] is False


def test_7ea0_says_there_is_no_frame(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", "7ea0")
    assert rc == 1
    assert "no HDLC frame in 2 byte(s)" in out


def test_empty_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "decode", "")
    assert rc == 2 and "no bytes given" in err


def test_trailing_bytes_value_shown_quirk_named_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", CLOCK + JUNK18)
    assert rc == 1
    assert "2026-12-03T16:00:00" in out  # the clock value is shown
    assert "trailing-bytes" in out and "18 trailing byte(s)" in out
    rc, out, _ = run(capsys, "decode", "--json", CLOCK + JUNK18)
    doc = json.loads(out)
    assert rc == 1 and doc["valid"] is False and doc["quirks"] == ["trailing-bytes"]
    apdu = doc["layers"][0]
    assert apdu["quirks"][0]["quirk"] == "trailing-bytes"
    assert apdu["error"]["message"].startswith("xDLMS APDU: APDU: 18 trailing byte(s)")


def test_a_clean_apdu_is_valid_without_quirks(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", "--json", CLOCK)
    doc = json.loads(out)
    assert rc == 0 and doc["valid"] is True and doc["quirks"] == []


def test_the_sn_meters_aare_in_its_hdlc_frame(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", "--json", ISKRA_FRAME)
    doc = json.loads(out)
    assert rc == 1 and doc["quirks"] == ["initiate-response-length"]
    text = json.dumps(doc)
    assert '"server_max_receive_pdu_size"' in text and "2400" in text


def test_no_quirk_inside_a_ciphered_apdu(capsys: pytest.CaptureFixture[str]) -> None:
    # An authenticated-only glo-get-response whose plaintext (shown without keys) has bytes
    # after the value: the plaintext is decoded strictly, no quirk is offered.
    plain = CLOCK + "0000"
    body = "10" + "00000001" + plain + "00" * 12
    apdu = "CC" + f"{len(body) // 2:02X}" + body
    rc, out, _ = run(capsys, "decode", "--json", apdu)
    doc = json.loads(out)
    assert rc == 1 and doc["quirks"] == []
