"""`smmc-gateway meter … firmware push` (issue 7 item 12): an image goes to a meter only
with a signed manifest verified against a trusted key, checked before any connection
(refusals exit 2 with the reason); ``--unsigned`` overrides on purpose and the audit
record says so; the record carries the image's SHA-256 either way."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from smmc_gateway.cli import main
from smmc_gateway.firmware.manifest import load_private_key, manifest_path, sign
from smmc_gateway.ops.audit import read_spool_file

from tests.support_sim import SimulatorProcess, simulator_process

SAMPLES = Path(__file__).resolve().parents[2] / "firmware-images"
TEST_PUB = SAMPLES / "TEST-ONLY-signing-key.pub"
CLI = [sys.executable, "-m", "smmc_gateway.cli"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens: a connection attempt fails (exit 1)


def signed(
    path: Path,
    size: int = 3000,
    identifier: str = "SMMC-SIM-9.9",
    key: Ed25519PrivateKey | None = None,
) -> Path:
    data = os.urandom(size)
    path.write_bytes(data)
    key = key or load_private_key(SAMPLES / "TEST-ONLY-signing-key.pem")
    m = sign(data, key, identifier=identifier, version="9.9", model="smmc-sim")
    manifest_path(path).write_text(json.dumps(m.to_json()))
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No trusted key anywhere unless a test gives one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SMMC_FIRMWARE_TRUST", raising=False)
    return tmp_path


def push(capsys: pytest.CaptureFixture[str], image: Path, *extra: str) -> tuple[int, str]:
    rc = main(
        [
            "meter",
            "--tcp",
            f"127.0.0.1:{closed_port()}",
            "--timeout",
            "2",
            "--audit-dir",
            str(image.parent / "audit"),
            "firmware",
            "push",
            str(image),
            *extra,
        ]
    )
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_an_image_without_manifest_is_refused_before_connecting(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = env / "fw.bin"
    image.write_bytes(os.urandom(500))
    rc, text = push(capsys, image, "--trusted-key", str(TEST_PUB))
    assert rc == 2, text
    assert "refused: image fw.bin has no manifest fw.bin.manifest.json" in text
    assert "--unsigned" in text and "cannot open" not in text  # never connected


@pytest.mark.parametrize(
    "damage", ["tampered", "truncated", "untrusted", "no-keys", "bad-signature"]
)
def test_a_manifest_that_does_not_verify_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    image = signed(env / "fw.bin")
    trust = ["--trusted-key", str(TEST_PUB)]
    expected = {
        "tampered": "differs from the signed manifest",
        "truncated": "the image was altered or truncated",
        "untrusted": "which is not trusted",
        "no-keys": "no trusted firmware signing key",
        "bad-signature": "manifest signature does not verify",
    }[damage]
    if damage == "tampered":
        data = bytearray(image.read_bytes())
        data[100] ^= 1
        image.write_bytes(bytes(data))
    elif damage == "truncated":
        image.write_bytes(image.read_bytes()[:-1])
    elif damage == "untrusted":
        signed(image, key=Ed25519PrivateKey.generate())
    elif damage == "no-keys":
        trust = []
    else:
        doc = json.loads(manifest_path(image).read_text())
        doc["version"] = "10.0"
        manifest_path(image).write_text(json.dumps(doc))
    rc, text = push(capsys, image, *trust)
    assert rc == 2, text
    assert expected in text, text
    assert not (env / "audit").exists()  # nothing was done: nothing to audit


def test_identifier_must_be_the_signed_one(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = signed(env / "fw.bin", identifier="SMMC-SIM-9.9")
    rc, text = push(capsys, image, "--trusted-key", str(TEST_PUB), "--identifier", "OTHER-1")
    assert rc == 2 and "differs from the signed manifest's identifier 'SMMC-SIM-9.9'" in text


def test_trusted_keys_from_the_default_directory_and_the_variable(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified image gets past the check: the push then fails to connect (exit 1)."""
    image = signed(env / "fw.bin")
    trusted = env / "config" / "smmc-gateway" / "firmware-trusted-keys"
    trusted.mkdir(parents=True)
    (trusted / "test.pub").write_bytes(TEST_PUB.read_bytes())
    rc, text = push(capsys, image)
    # past the signature check; then no meter listens there
    assert rc == 1 and "cannot open tcp" in text, text
    other = env / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv("SMMC_FIRMWARE_TRUST", str(other))  # the variable replaces the default
    rc, text = push(capsys, image)
    assert rc == 2 and "which is not trusted" in text


# -- against the simulator: what the audit record says ----------------------------------
@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with simulator_process(["--tcp", "0", "--auth", "none"]) as s:
        yield s


def _cli(sim: SimulatorProcess, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    port = sim.info["meters"][0]["port"]
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
    }
    env.pop("SMMC_FIRMWARE_TRUST", None)
    return subprocess.run(
        [
            *CLI,
            "meter",
            "--tcp",
            f"127.0.0.1:{port}",
            "--client",
            "1",
            "--audit-dir",
            str(tmp / "audit"),
            "--json",
            "firmware",
            "push",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _record(tmp: Path) -> dict[str, Any]:
    (f,) = sorted((tmp / "audit").glob("*.jsonl"))
    (rec,), problems = read_spool_file(f)
    assert problems == []
    return rec


def test_signed_push_is_recorded_with_digest_and_signer(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    image = signed(tmp_path / "fw.bin", identifier="SMMC-SIM-9.9")
    proc = _cli(sim, tmp_path, str(image), "--trusted-key", str(TEST_PUB), "--no-activate")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["identifier"] == "SMMC-SIM-9.9"
    details = _record(tmp_path)["details"]
    assert details["unsigned"] is False
    assert details["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert details["manifest"]["version"] == "9.9" and len(details["manifest"]["keyId"]) == 16


def test_unsigned_push_is_allowed_on_purpose_and_recorded_as_such(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    image = tmp_path / "fw-x.bin"
    image.write_bytes(os.urandom(800))
    proc = _cli(sim, tmp_path, str(image), "--unsigned", "--no-activate")
    assert proc.returncode == 0, proc.stderr
    assert "WITHOUT signature verification (--unsigned)" in proc.stderr
    details = _record(tmp_path)["details"]
    assert details["unsigned"] is True and details["identifier"] == "fw-x"
    assert details["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
