"""Signed firmware image manifests: what an image is, and proof of who released it.

A manifest is a JSON file beside the image (``IMAGE.manifest.json``)::

    {"format": "smmc-firmware-manifest/1",
     "identifier": "SMMC-SIM-2.0.0",      # image_identifier sent to the meter (ASCII)
     "version": "2.0.0", "model": "smmc-sim", "size": 4000,
     "sha256": "<64 hex>",
     "signature": {"algorithm": "ed25519", "keyId": "<16 hex>", "value": "<128 hex>"}}

The signature is Ed25519 over the canonical JSON of the manifest without its
``signature`` member (keys sorted, no spaces, UTF-8). ``keyId`` is the first 8 bytes
of the SHA-256 of the raw public key, so a verifier picks the right trusted key.
:func:`verify_image` checks the manifest's shape, the signature against the trusted
keys, and the image's size and digest; any failure raises :class:`ImageRefused`
naming what was wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "smmc-firmware-manifest/1"
MANIFEST_SUFFIX = ".manifest.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_IDENT = re.compile(r"^[\x21-\x7e]{1,64}$")


class ImageRefused(Exception):
    """The image or its manifest is not acceptable; the message says exactly why."""


@dataclass(frozen=True)
class Manifest:
    identifier: str
    version: str
    model: str
    size: int
    sha256: str
    key_id: str
    signature: str

    def unsigned(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "identifier": self.identifier,
            "version": self.version,
            "model": self.model,
            "size": self.size,
            "sha256": self.sha256,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.unsigned(),
            "signature": {"algorithm": "ed25519", "keyId": self.key_id, "value": self.signature},
        }


@dataclass(frozen=True)
class VerifiedImage:
    """An image whose manifest was signed by a trusted key and whose bytes match it."""

    manifest: Manifest
    data: bytes
    path: Path


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def manifest_path(image: Path) -> Path:
    return image.with_name(image.name + MANIFEST_SUFFIX)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ImageRefused(
            f"signing key {path}: not a readable unencrypted PEM private key ({exc})"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImageRefused(f"signing key {path}: is {type(key).__name__}, expected Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ImageRefused(f"trusted key {path}: not a readable PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ImageRefused(f"trusted key {path}: is {type(key).__name__}, expected Ed25519")
    return key


def trusted_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id; a directory contributes its ``*.pub`` files."""
    out: dict[str, Ed25519PublicKey] = {}
    for p in paths:
        files = sorted(p.glob("*.pub")) if p.is_dir() else [p]
        for f in files:
            k = load_public_key(f)
            out[key_id(k)] = k
    return out


def sign(
    image: bytes, private: Ed25519PrivateKey, *, identifier: str, version: str, model: str
) -> Manifest:
    if not _IDENT.match(identifier):
        raise ImageRefused(
            f"identifier {identifier!r}: must be 1..64 printable ASCII characters without spaces"
        )
    if not image:
        raise ImageRefused("the image is empty")
    m = Manifest(
        identifier,
        version,
        model,
        len(image),
        hashlib.sha256(image).hexdigest(),
        key_id(private.public_key()),
        "",
    )
    sig = private.sign(canonical(m.unsigned())).hex()
    return Manifest(m.identifier, m.version, m.model, m.size, m.sha256, m.key_id, sig)


def parse_manifest(doc: Any, where: str = "manifest") -> Manifest:
    """The manifest's fields, every shape problem named by its JSON path."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ImageRefused(f"{where}: must be a JSON object")
    if doc.get("format") != FORMAT:
        problems.append(f"{where}.format: {doc.get('format')!r}, expected {FORMAT!r}")
    for key in ("identifier", "version", "model", "sha256"):
        if not isinstance(doc.get(key), str):
            problems.append(f"{where}.{key}: missing or not a string")
    if isinstance(doc.get("identifier"), str) and not _IDENT.match(doc["identifier"]):
        problems.append(f"{where}.identifier: must be 1..64 printable ASCII characters")
    if isinstance(doc.get("sha256"), str) and not _HEX64.match(doc["sha256"]):
        problems.append(f"{where}.sha256: must be 64 lowercase hex digits")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        problems.append(f"{where}.size: must be a positive integer")
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        problems.append(f"{where}.signature: missing (the image is unsigned)")
        sig = {}
    else:
        if sig.get("algorithm") != "ed25519":
            problems.append(
                f"{where}.signature.algorithm: {sig.get('algorithm')!r}, expected 'ed25519'"
            )
        for key in ("keyId", "value"):
            if not isinstance(sig.get(key), str):
                problems.append(f"{where}.signature.{key}: missing or not a string")
    extra = set(doc) - {"format", "identifier", "version", "model", "size", "sha256", "signature"}
    if extra:
        problems.append(f"{where}: unknown member(s) {', '.join(sorted(extra))}")
    if problems:
        raise ImageRefused("; ".join(problems))
    return Manifest(
        doc["identifier"],
        doc["version"],
        doc["model"],
        int(doc["size"]),
        doc["sha256"],
        sig["keyId"],
        sig["value"],
    )


def verify_manifest(manifest: Manifest, trusted: dict[str, Ed25519PublicKey]) -> None:
    if not trusted:
        raise ImageRefused("no trusted firmware signing key is configured")
    public = trusted.get(manifest.key_id)
    if public is None:
        raise ImageRefused(
            f"manifest signed by key {manifest.key_id}, which is not trusted "
            f"(trusted: {', '.join(sorted(trusted))})"
        )
    try:
        public.verify(bytes.fromhex(manifest.signature), canonical(manifest.unsigned()))
    except (InvalidSignature, ValueError) as exc:
        raise ImageRefused(
            f"manifest signature does not verify with key {manifest.key_id}: "
            "the manifest was altered or signed by someone else"
        ) from exc


def verify_image(
    image_path: Path, trusted: dict[str, Ed25519PublicKey], manifest_file: Path | None = None
) -> VerifiedImage:
    """Read and check ``image_path`` against its manifest and the trusted keys."""
    try:
        data = image_path.read_bytes()
    except OSError as exc:
        raise ImageRefused(f"image {image_path}: cannot be read ({exc.strerror})") from exc
    return verify_data(data, image_path, trusted, manifest_file)


def verify_data(
    data: bytes,
    image_path: Path,
    trusted: dict[str, Ed25519PublicKey],
    manifest_file: Path | None = None,
) -> VerifiedImage:
    """Check ``data`` (the bytes read from ``image_path``) against the image's manifest
    and the trusted keys: what is checked is exactly what will be sent."""
    mpath = manifest_file or manifest_path(image_path)
    try:
        doc = json.loads(mpath.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ImageRefused(
            f"image {image_path.name} has no manifest {mpath.name}: unsigned images are refused"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ImageRefused(f"manifest {mpath}: not readable JSON ({exc})") from exc
    manifest = parse_manifest(doc)
    verify_manifest(manifest, trusted)
    if len(data) != manifest.size:
        raise ImageRefused(
            f"image {image_path.name}: {len(data)} bytes, the signed manifest "
            f"says {manifest.size}: the image was altered or truncated"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise ImageRefused(
            f"image {image_path.name}: SHA-256 {digest} differs from the signed "
            f"manifest's {manifest.sha256}: the image was altered"
        )
    return VerifiedImage(manifest, data, image_path)


def find_image(
    directory: Path, identifier: str, trusted: dict[str, Ed25519PublicKey]
) -> VerifiedImage:
    """The verified image whose manifest names ``identifier`` in ``directory``."""
    candidates: Sequence[Path] = (
        sorted(directory.glob("*" + MANIFEST_SUFFIX)) if directory.is_dir() else []
    )
    for mpath in candidates:
        try:
            doc = json.loads(mpath.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("identifier") == identifier:
            image = mpath.with_name(mpath.name[: -len(MANIFEST_SUFFIX)])
            return verify_image(image, trusted, mpath)
    raise ImageRefused(
        f"no image with identifier {identifier!r} in the firmware directory {directory}"
    )
