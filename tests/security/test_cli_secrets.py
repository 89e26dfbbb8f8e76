"""The technician CLI's secrets (issue 7 item 12): ``--help`` says keys on the command
line are visible to others and recommends the variables or a file; a ``--secrets-file``
others may read (or that is not a regular file) is refused before it is read."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from smmc_gateway.cli import main

EK = "00112233445566778899aabbccddeeff"
AK = "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize("command", ["meter", "decode"])
def test_help_discourages_keys_on_the_command_line(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    rc, text = run(capsys, command, "--help")
    assert rc == 0
    flat = " ".join(text.split())
    assert "visible to every user of this machine (ps, /proc)" in flat
    assert "SMMC_EK" in flat and "--secrets-file" in flat and "mode 0600" in flat
    for option in ("--ek HEX", "--ak HEX"):
        line = flat.rsplit(option, 1)[1][:160]  # the option's help, not the usage line
        assert "discouraged: visible to other users (ps)" in line, line


def _secrets(tmp: Path, mode: int) -> Path:
    f = tmp / "secrets.toml"
    f.write_text(f'ek = "{EK}"\nak = "{AK}"\n')
    f.chmod(mode)
    return f


def _clock(capsys: pytest.CaptureFixture[str], tmp: Path, secrets: Path) -> tuple[int, str]:
    return run(
        capsys,
        "meter",
        "--tcp",
        f"127.0.0.1:{closed_port()}",
        "--timeout",
        "2",
        "--ic-store",
        str(tmp / "ic.sqlite"),
        "--secrets-file",
        str(secrets),
        "clock",
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620], ids=oct)
def test_a_secrets_file_others_may_access_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: int
) -> None:
    f = _secrets(tmp_path, mode)
    rc, text = _clock(capsys, tmp_path, f)
    assert rc == 2, text
    assert f"mode {mode:04o} lets other users read or change it" in text
    assert f"chmod 600 {f}" in text
    assert EK not in text.lower() and AK not in text.lower()


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_a_private_secrets_file_is_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: int
) -> None:
    rc, text = _clock(capsys, tmp_path, _secrets(tmp_path, mode))
    assert rc == 1 and "--secrets-file" not in text, text  # read; then no meter answered


def test_a_secrets_file_that_is_not_a_regular_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)  # opening must not wait for a writer
    rc, text = _clock(capsys, tmp_path, fifo)
    assert rc == 2 and "not a regular file" in text, text
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    rc, text = _clock(capsys, tmp_path, directory)
    assert rc == 2 and "not a regular file" in text, text


def test_a_symlink_is_judged_by_the_file_it_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = _secrets(tmp_path, 0o644)
    link = tmp_path / "link.toml"
    link.symlink_to(target)  # a symlink's own mode is 0777: the file's mode is what counts
    rc, text = _clock(capsys, tmp_path, link)
    assert rc == 2 and "mode 0644" in text
    target.chmod(0o600)
    rc, text = _clock(capsys, tmp_path, link)
    assert rc == 1, text
