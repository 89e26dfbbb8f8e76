"""`smmc-gateway meter`: argument checking (exit 2 before connecting), exit 1 when the
meter cannot be reached, and secrets never in the output."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from smmc_gateway.cli import main
from smmc_gateway.cli.common import REDACT, OperationFailed, UsageError
from smmc_gateway.cli.meter_args import parse_reference, parse_time, parse_typed

PASSWORD = "Xy7-hunter2-secret"
EK = "00112233445566778899aabbccddeeff"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when we leave: connection refused


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    ("text", "cid", "obis", "member"),
    [("8/0.0.1.0.0.255/2", 8, "0.0.1.0.0.255", 2), ("3/1-0:1.8.0*255/3", 3, "1.0.1.8.0.255", 3)],
)
def test_reference(text: str, cid: int, obis: str, member: int) -> None:
    ref = parse_reference(text)
    assert (ref.class_id, str(ref.obis), ref.member) == (cid, obis, member)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8/0.0.1.0.0.255", "three parts"),
        ("x/0.0.1.0.0.255/2", "class 'x'"),
        ("8/0.0.1.0.0/2", "groups"),
        ("8/0.0.1.0.0.256/2", "255"),
        ("8/0.0.1.0.0.255/0", "attribute '0'"),
    ],
)
def test_bad_reference(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_reference(text)


def test_method_reference_accepts_m_prefix() -> None:
    assert parse_reference("70/0.0.96.3.10.255/m1", "method").member == 1


def test_time_without_offset_is_local() -> None:
    t = parse_time("2026-11-27T10:00", "--from")
    assert t.tzinfo is not None and t.hour == 10
    with pytest.raises(UsageError, match="ISO-8601"):
        parse_time("yesterday", "--from")


def test_typed_json() -> None:
    assert parse_typed('{"type":"long-unsigned","value":5}', "VALUE")["value"] == 5
    with pytest.raises(UsageError, match="not JSON"):
        parse_typed("{type: long}", "VALUE")
    with pytest.raises(UsageError, match='"type" and "value"'):
        parse_typed("5", "VALUE")
    with pytest.raises(UsageError, match="not a valid typed value"):
        parse_typed('{"type":"unsigned","value":300}', "VALUE")
    with pytest.raises(UsageError, match="not a valid typed value"):
        parse_typed('{"type":"no-such-type","value":1}', "VALUE")


def test_typed_json_from_file(tmp_path: Path) -> None:
    f = tmp_path / "v.json"
    f.write_text('{"type": "structure", "value": [{"type": "boolean", "value": true}]}')
    assert parse_typed(f"@{f}", "VALUE")["type"] == "structure"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["meter", "get", "8/0.0.1.0.0.255/2"], "one of the arguments --tcp"),
        (["meter", "--tcp", "nohost", "get", "8/0.0.1.0.0.255/2"], "HOST:PORT"),
        (["meter", "--tcp", "127.0.0.1:1", "get", "8/0.0.1.0.0.255"], "three parts"),
        (["meter", "--tcp", "127.0.0.1:1", "set", "3/1.0.1.8.0.255/2", "{"], "not JSON"),
        (["meter", "--tcp", "127.0.0.1:1", "get", "7/1.0.99.1.0.255/2", "--from", "x"], "ISO-8601"),
        (
            ["meter", "--tcp", "127.0.0.1:1", "get", "7/1.0.99.1.0.255/2", "--from", "2026-01-01"],
            "--from and --to go together",
        ),
        (["meter", "--tcp", "127.0.0.1:1", "--auth", "lls", "clock"], "needs a password"),
        (["meter", "--tcp", "127.0.0.1:1", "--auth", "hls-gmac", "clock"], "needs both keys"),
        (["meter", "--tcp", "127.0.0.1:1", "--ek", "00", "clock"], "--ek: 2 hex digits"),
        (["meter", "--tcp", "127.0.0.1:1", "limit", "--off", "--threshold", "5"], "exclude"),
        (
            ["meter", "--tcp", "127.0.0.1:1", "firmware", "push", "/nonexistent/img.bin"],
            "cannot read",
        ),
        (["meter", "--tcp", "127.0.0.1:1", "frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_before_connecting(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert message in err
    assert out == ""


def test_unreachable_meter_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(
        capsys, "meter", "--tcp", f"127.0.0.1:{closed_port()}", "--timeout", "2", "clock"
    )
    assert rc == 1
    assert "cannot open" in err or "refused" in err.lower()
    assert out == ""


def test_secrets_never_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    runs = [
        ["meter", "--tcp", f"127.0.0.1:{port}", "--password", PASSWORD, "clock"],
        [
            "meter",
            "--tcp",
            f"127.0.0.1:{port}",
            "--json",
            "--ek",
            EK,
            "--ak",
            AK,
            "--ic-store",
            str(tmp_path / "ic.sqlite"),
            "get",
            "8/0.0.1.0.0.255/2",
        ],
        [
            "meter",
            "--tcp",
            f"127.0.0.1:{port}",
            "--ek",
            EK,
            "--ak",
            AK[:-2],
            "--ic-store",
            str(tmp_path / "ic.sqlite"),
            "clock",
        ],
        [
            "meter",
            "--tcp",
            f"127.0.0.1:{port}",
            "--auth",
            "lls",
            "--password",
            PASSWORD,
            "set",
            "3/1.0.1.8.0.255/2",
            "not-json",
        ],
    ]
    for argv in runs:
        rc, out, err = run(capsys, *argv)
        assert rc in (1, 2)
        text = (out + err).lower()
        for secret in (PASSWORD.lower(), EK, AK, AK[:-2]):
            assert secret not in text, (argv, text)
    # from the environment and from a file too
    monkeypatch.setenv("SMMC_PASSWORD", PASSWORD)
    rc, out, err = run(capsys, "meter", "--tcp", f"127.0.0.1:{port}", "clock")
    assert rc == 1 and PASSWORD not in out + err
    monkeypatch.delenv("SMMC_PASSWORD")
    f = tmp_path / "secrets.toml"
    f.write_text(f'ek = "{EK}"\nak = "{AK}"\npassword = "{PASSWORD}"\n')
    f.chmod(0o600)
    rc, out, err = run(
        capsys,
        "meter",
        "--tcp",
        f"127.0.0.1:{port}",
        "--secrets-file",
        str(f),
        "--ic-store",
        str(tmp_path / "ic.sqlite"),
        "clock",
    )
    assert rc == 1 and PASSWORD not in out + err and EK not in (out + err).lower()


def test_secrets_file_errors_name_the_key_not_the_value(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    f = tmp_path / "secrets.toml"
    f.write_text(f'passwd = "{PASSWORD}"\n')
    f.chmod(0o600)
    rc, out, err = run(capsys, "meter", "--tcp", "127.0.0.1:1", "--secrets-file", str(f), "clock")
    assert rc == 2 and "unknown key 'passwd'" in err and PASSWORD not in err + out
    f.write_text(f'ek = "{EK[:-4]}zzzz"\n')
    rc, _out, err = run(capsys, "meter", "--tcp", "127.0.0.1:1", "--secrets-file", str(f), "clock")
    assert rc == 2 and "ek in the secrets file: not hex" in err and EK[:-4] not in err


def test_redactor_covers_hex_spellings() -> None:
    REDACT.add_bytes(bytes.fromhex(EK))
    assert REDACT(f"key {EK.upper()} and {EK}") == "key *** and ***"
    assert json.loads(json.dumps(REDACT.scrub({"k": [EK]}))) == {"k": ["***"]}


def test_unavailable_plugin_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from smmc_gateway.cli import _register_plugin

    parser = argparse.ArgumentParser(prog="t")
    sub = parser.add_subparsers(dest="command")
    _register_plugin(sub, "smmc_gateway.no_such_plugin", ("ghost",))
    args, extra = parser.parse_known_args(["ghost", "--config", "x.toml"])
    assert args.accepts_extra and "--config" in extra
    with pytest.raises(OperationFailed, match="'ghost' is not available in this build"):
        args.handler(args)
