"""The image of `smmc-gateway meter … firmware push`, verified before any connection.

An image is pushed only with a signed manifest (``IMAGE.manifest.json`` beside it, or
``--manifest FILE``; see :mod:`smmc_gateway.firmware.manifest` and
firmware-images/README.md) whose Ed25519 signature verifies with a trusted key and whose
size and SHA-256 match the bytes read; those very bytes are sent, and the image
identifier the meter receives is the signed one. Trusted keys, the first source that
is given: ``--trusted-key FILE|DIR`` (repeatable; a directory gives its ``*.pub``), then
``SMMC_FIRMWARE_TRUST`` (paths separated by ``:``), then the directory
``$XDG_CONFIG_HOME/smmc-gateway/firmware-trusted-keys/`` (``~/.config/…``). An image that
does not verify is refused (exit 2) naming why. ``--unsigned`` pushes without any
verification, on purpose: a warning says so and the audit record carries
``"unsigned": true`` (and the image's SHA-256, as for a signed one).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmc_gateway.cli.common import REDACT, UsageError
from smmc_gateway.firmware.manifest import ImageRefused, Manifest, trusted_keys, verify_data

TRUST_ENV = "SMMC_FIRMWARE_TRUST"


@dataclass(frozen=True)
class FirmwareImage:
    path: Path
    data: bytes
    identifier: bytes
    manifest: Manifest | None  # None: pushed --unsigned

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def audit_details(self, activate: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "image": self.path.name,
            "identifier": self.identifier.decode(errors="replace"),
            "size": len(self.data),
            "sha256": self.sha256,
            "activate": activate,
            "unsigned": self.manifest is None,
        }
        if self.manifest is not None:
            out["manifest"] = {
                "keyId": self.manifest.key_id,
                "version": self.manifest.version,
                "model": self.manifest.model,
            }
        return out


def default_trust_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "smmc-gateway" / "firmware-trusted-keys"


def trust_paths(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[list[Path], str]:
    """(paths of trusted keys, where they came from: the option, the variable or
    ``"default"``)."""
    env = os.environ if env is None else env
    given = getattr(args, "trusted_key", None)
    if given:
        return [Path(p) for p in given], "--trusted-key"
    if env.get(TRUST_ENV):
        return [Path(p) for p in env[TRUST_ENV].split(os.pathsep) if p], TRUST_ENV
    return [default_trust_dir(env)], "default"


def read_image(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"firmware push: cannot read {path} ({exc.strerror})") from None
    if not data:
        raise UsageError(f"firmware push: {path} is empty")
    return data


def load(args: argparse.Namespace) -> FirmwareImage:
    """The image to push, verified (or ``--unsigned``); UsageError (exit 2) otherwise."""
    path: Path = args.image
    data = read_image(path)
    given = args.identifier.encode() if args.identifier else None
    if args.unsigned:
        ident = given or path.stem.encode()
        if not 1 <= len(ident) <= 255:
            raise UsageError("firmware push: --identifier must be 1..255 bytes")
        sys.stderr.write(
            REDACT(
                f"smmc-gateway: warning: pushing {path.name} WITHOUT signature verification "
                "(--unsigned); the audit record says so\n"
            )
        )
        return FirmwareImage(path, data, ident, None)
    paths, source = trust_paths(args)
    how = (
        f"sign it (smmc-gateway firmware sign) and trust the signer's key "
        f"(--trusted-key KEY.pub, {TRUST_ENV} or {default_trust_dir()}), or push it on "
        "purpose with --unsigned (recorded in the audit record)"
    )
    try:
        # the default directory may not exist (no key trusted); given paths must
        keys = trusted_keys(p for p in paths if source != "default" or p.is_dir())
        if not keys:
            where = ", ".join(str(p) for p in paths)
            raise ImageRefused(f"no trusted firmware signing key ({where}: no *.pub)")
        verified = verify_data(data, path, keys, Path(args.manifest) if args.manifest else None)
    except ImageRefused as exc:
        raise UsageError(f"firmware push: refused: {exc}; {how}") from None
    signed = verified.manifest.identifier.encode()
    if given is not None and given != signed:
        raise UsageError(
            f"firmware push: --identifier {args.identifier!r} differs from the signed "
            f"manifest's identifier {verified.manifest.identifier!r}; the meter receives the "
            "signed one (leave --identifier out)"
        )
    return FirmwareImage(path, verified.data, signed, verified.manifest)


__all__ = ["FirmwareImage", "default_trust_dir", "load", "trust_paths"]
