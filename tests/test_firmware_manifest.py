"""`smmc-gateway firmware sign|verify`: signed manifests; tampering is refused (exit 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from smmc_gateway.cli import main
from smmc_gateway.firmware.manifest import ImageRefused, find_image, trusted_keys

SAMPLES = Path(__file__).resolve().parent.parent / "firmware-images"
IMAGE = "smmc-sim-2.0.0.img"
TEST_PUB = SAMPLES / "TEST-ONLY-signing-key.pub"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in (IMAGE, IMAGE + ".manifest.json"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    return tmp_path


def _verify(image: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["firmware", "verify", str(image), "--trust", str(TEST_PUB), *extra])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_the_sample_image_verifies(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, text = _verify(work / IMAGE, capsys, "--json")
    assert rc == 0, text
    doc = json.loads(text)
    assert doc["verified"] is True and doc["identifier"] == "SMMC-SIM-2.0.0"
    assert doc["size"] == (work / IMAGE).stat().st_size


def test_sign_then_verify_with_a_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "k.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "fw.bin").write_bytes(b"\x01\x02" * 300)
    assert (
        main(
            [
                "firmware",
                "sign",
                str(tmp_path / "fw.bin"),
                "--key",
                str(tmp_path / "k.pem"),
                "--identifier",
                "FW-9",
                "--version",
                "9",
                "--model",
                "m",
            ]
        )
        == 0
    )
    assert (tmp_path / "fw.bin.manifest.json").exists()
    capsys.readouterr()
    assert (
        main(["firmware", "verify", str(tmp_path / "fw.bin"), "--trust", str(tmp_path / "k.pub")])
        == 0
    )
    # the TEST key does not vouch for it
    rc, text = _verify(tmp_path / "fw.bin", capsys)
    assert rc == 1 and "not trusted" in text


def test_a_tampered_image_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray((work / IMAGE).read_bytes())
    data[100] ^= 0x01
    (work / IMAGE).write_bytes(bytes(data))
    rc, text = _verify(work / IMAGE, capsys)
    assert rc == 1 and "SHA-256" in text and "altered" in text


def test_a_truncated_image_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / IMAGE).write_bytes((work / IMAGE).read_bytes()[:-1])
    rc, text = _verify(work / IMAGE, capsys)
    assert rc == 1 and "4053 bytes" in text


def test_a_tampered_manifest_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mpath = work / (IMAGE + ".manifest.json")
    doc = json.loads(mpath.read_text())
    doc["version"] = "9.9.9"
    mpath.write_text(json.dumps(doc))
    rc, text = _verify(work / IMAGE, capsys)
    assert rc == 1 and "signature does not verify" in text


def test_unsigned_and_malformed_manifests_are_refused(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mpath = work / (IMAGE + ".manifest.json")
    doc = json.loads(mpath.read_text())
    del doc["signature"]
    mpath.write_text(json.dumps(doc))
    rc, text = _verify(work / IMAGE, capsys)
    assert rc == 1 and "manifest.signature: missing (the image is unsigned)" in text
    mpath.unlink()
    rc, text = _verify(work / IMAGE, capsys)
    assert rc == 1 and "unsigned images are refused" in text


def test_verify_without_a_trusted_key_is_a_usage_error(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMMC_FIRMWARE_TRUST", raising=False)
    assert main(["firmware", "verify", str(work / IMAGE)]) == 2
    assert "--trust" in capsys.readouterr().err
    monkeypatch.setenv("SMMC_FIRMWARE_TRUST", str(TEST_PUB))
    assert main(["firmware", "verify", str(work / IMAGE)]) == 0


def test_find_image_by_identifier(work: Path) -> None:
    trusted = trusted_keys([TEST_PUB])
    assert find_image(work, "SMMC-SIM-2.0.0", trusted).data == (work / IMAGE).read_bytes()
    with pytest.raises(ImageRefused, match="no image with identifier 'NOPE'"):
        find_image(work, "NOPE", trusted)
