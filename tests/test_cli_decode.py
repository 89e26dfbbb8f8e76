"""`smmc-gateway decode`: exit codes, human and JSON output, secrets never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from smmc_gateway import _core
from smmc_gateway.cli import main

GB = json.loads((Path(__file__).parent / "vectors" / "security" / "green_book.json").read_text())
EK, AK = GB["ek"], GB["ak"]
TITLE = GB["server_system_title"]
GLO_GET = GB["ciphered_apdus"][0]["ciphered"].replace(" ", "")
SNRM = "7EA0070321930F017E"
UA = "7EA020210373739881801405020200060202000704000000010804000000016FEF7E"
BAD_FCS = "7EA0070321930F027E"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_snrm_human(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "decode", SNRM)
    assert rc == 0, err
    assert "SNRM P/F=1" in out
    assert "FCS: 0f01" in out and "checked" in out


def test_ua_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", "--json", UA)
    assert rc == 0
    doc = json.loads(out)
    assert doc["valid"] is True
    params = doc["layers"][0]["layers"][0]
    assert params["layer"] == "HDLC parameters"
    values = {f["name"]: f["value"] for f in params["fields"]}
    assert values["max_info_field_length_rx"] == 512


def test_bad_fcs_exit_1_names_field_and_offset(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", BAD_FCS)
    assert rc == 1
    assert "ERROR in FCS at byte 6" in out
    rc, out, _ = run(capsys, "decode", "--json", BAD_FCS)
    err = json.loads(out)["layers"][0]["error"]
    assert rc == 1 and err["field"] == "FCS" and err["offset"] == 6


@pytest.mark.parametrize("bad", ["7EA", "hello", ""])
def test_bad_hex_is_usage_error(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    rc, out, err = run(capsys, "decode", bad)
    assert rc == 2
    assert out == ""
    assert "decode:" in err and "hex" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(SNRM[:8] + "\n" + SNRM[8:] + "\n"))
    rc, out, _ = run(capsys, "decode", "-")
    assert rc == 0 and "SNRM" in out


def test_ciphered_without_keys_hints(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "decode", GLO_GET)
    assert rc == 0
    assert "authenticated encryption" in out and "--ek" in out


def test_ciphered_with_keys_from_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMMC_EK", EK)
    monkeypatch.setenv("SMMC_AK", AK)
    rc, out, err = run(capsys, "decode", "--system-title", TITLE, GLO_GET)
    assert rc == 0, err
    assert "verified" in out
    assert EK.lower() not in out.lower() and AK.lower() not in (out + err).lower()


def test_wrong_key_exit_1_and_key_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "A1" * 16
    rc, out, err = run(
        capsys, "decode", "--json", "--ek", wrong, "--ak", AK, "--system-title", TITLE, GLO_GET
    )
    assert rc == 1
    assert json.loads(out)["layers"][0]["error"]["field"] == "authentication tag"
    for secret in (wrong, AK):
        assert secret.lower() not in (out + err).lower()


def test_bad_key_length_is_usage_error_without_value(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "decode", "--ek", "00112233445566778899", "--ak", AK, GLO_GET)
    assert rc == 2
    assert "--ek: 20 hex digits, expected 32" in err
    assert "00112233445566778899" not in err + out


def test_only_one_key_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "decode", "--ek", EK, GLO_GET)
    assert rc == 2 and "both --ek and --ak" in err


def test_ciphered_frame_full_stack_json(capsys: pytest.CaptureFixture[str]) -> None:
    plain = bytes.fromhex(GB["ciphered_apdus"][0]["plain"])
    ciphered = _core.cipher_apdu(
        plain,
        security_control=0x30,
        system_title=bytes.fromhex(TITLE),
        invocation_counter=5,
        ek=bytes.fromhex(EK),
        ak=bytes.fromhex(AK),
    )
    wrapper = _core.wrapper_encode(1, 16, ciphered).hex()
    rc, out, _ = run(
        capsys, "decode", "--json", "--ek", EK, "--ak", AK, "--system-title", TITLE, wrapper
    )
    assert rc == 0
    doc = json.loads(out)
    w = doc["layers"][0]
    assert w["layer"] == "wrapper"
    cip = w["layers"][0]
    assert {f["name"]: f["value"] for f in cip["fields"]}["invocation counter"] == 5
    assert cip["layers"][0]["length"] == len(plain)


def test_entry_point_subprocess(tmp_path: Path) -> None:
    """The installed console script path: `python -m smmc_gateway.cli`."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "smmc_gateway.cli", "decode", UA],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "window_size_rx: 1" in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour codes when not a terminal


def test_usage_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err
