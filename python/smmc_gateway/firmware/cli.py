"""The ``firmware`` subcommand: sign an image (writes its manifest) and verify one.

    smmc-gateway firmware sign IMAGE --key KEY.pem --identifier ID --version V --model M
    smmc-gateway firmware verify IMAGE [--manifest FILE] --trust KEY.pub|DIR ...

Trusted keys come from ``--trust`` (repeatable; a directory means its ``*.pub``) or
``SMMC_FIRMWARE_TRUST`` (paths separated by ``:``). Exit 0 ok, 1 the image or manifest
is refused (tampered, unsigned, untrusted key), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from smmc_gateway.cli.common import OperationFailed, UsageError
from smmc_gateway.firmware.manifest import (
    ImageRefused,
    load_private_key,
    manifest_path,
    sign,
    trusted_keys,
    verify_image,
)


def _sign(args: argparse.Namespace) -> int:
    image = Path(args.image)
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise UsageError(f"IMAGE {image}: cannot be read ({exc.strerror})") from exc
    try:
        key = load_private_key(Path(args.key))
        manifest = sign(
            data, key, identifier=args.identifier, version=args.version, model=args.model
        )
    except ImageRefused as exc:
        raise UsageError(str(exc)) from exc
    out = Path(args.manifest) if args.manifest else manifest_path(image)
    out.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", "utf-8")
    if args.json:
        print(json.dumps({"manifest": str(out), **manifest.to_json()}))
    else:
        print(
            f"signed {image.name} ({manifest.size} bytes, sha256 {manifest.sha256[:16]}…) "
            f"with key {manifest.key_id}: {out}"
        )
    return 0


def _trust(args: argparse.Namespace) -> list[Path]:
    paths = [Path(p) for p in args.trust or []]
    env = os.environ.get("SMMC_FIRMWARE_TRUST")
    if env:
        paths += [Path(p) for p in env.split(os.pathsep) if p]
    if not paths:
        raise UsageError(
            "no trusted key: give --trust KEY.pub (or a directory of *.pub), "
            "or set SMMC_FIRMWARE_TRUST"
        )
    return paths


def _verify(args: argparse.Namespace) -> int:
    paths = _trust(args)
    try:
        trusted = trusted_keys(paths)
        verified = verify_image(
            Path(args.image), trusted, Path(args.manifest) if args.manifest else None
        )
    except ImageRefused as exc:
        raise OperationFailed(f"refused: {exc}") from exc
    m = verified.manifest
    if args.json:
        print(json.dumps({"verified": True, **m.to_json()}))
    else:
        print(
            f"OK {verified.path.name}: {m.identifier} version {m.version} for {m.model}, "
            f"{m.size} bytes, signed by trusted key {m.key_id}"
        )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "firmware",
        help="sign and verify firmware images",
        description="Sign firmware images (writes IMAGE.manifest.json) "
        "and verify them against trusted Ed25519 keys.",
    )
    sub = p.add_subparsers(dest="firmware_command", required=True, metavar="ACTION")
    s = sub.add_parser("sign", help="write a signed manifest for IMAGE")
    s.add_argument("image", metavar="IMAGE")
    s.add_argument(
        "--key", required=True, metavar="KEY.pem", help="Ed25519 private key (PEM, unencrypted)"
    )
    s.add_argument(
        "--identifier",
        required=True,
        help="image_identifier the meters receive (ASCII, e.g. SMMC-SIM-2.0.0)",
    )
    s.add_argument("--version", required=True, help="firmware version, e.g. 2.0.0")
    s.add_argument("--model", required=True, help="target meter model")
    s.add_argument(
        "--manifest", metavar="FILE", help="where to write (default IMAGE.manifest.json)"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_sign)
    v = sub.add_parser("verify", help="check IMAGE against its signed manifest")
    v.add_argument("image", metavar="IMAGE")
    v.add_argument("--manifest", metavar="FILE", help="default IMAGE.manifest.json")
    v.add_argument(
        "--trust",
        action="append",
        metavar="KEY.pub|DIR",
        help="trusted public key (repeatable); also SMMC_FIRMWARE_TRUST",
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=_verify)
