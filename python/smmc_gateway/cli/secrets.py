"""Secrets for the CLI: passwords and keys from options, environment or a file.

Order of precedence: the option (``--password``, ``--ek``, ``--ak``), then the
environment (``SMMC_PASSWORD``, ``SMMC_EK``, ``SMMC_AK``), then ``--secrets-file``
(TOML: ``password = "…"``, ``ek = "hex"``, ``ak = "hex"``). Values are wrapped in
:class:`Secret` and registered with the output redactor the moment they are read;
error messages say which source was wrong and how, never the value.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from smmc_gateway.cli.common import REDACT, UsageError
from smmc_gateway.ops.config_model import Secret

_HEX = set("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Credentials:
    password: Secret | None
    ek: Secret | None
    ak: Secret | None
    system_title: bytes | None


def add_key_options(p: argparse.ArgumentParser, *, with_password: bool) -> None:
    g = p.add_argument_group("security (secrets may also come from SMMC_* variables or a file)")
    if with_password:
        g.add_argument("--password", metavar="TEXT", help="LLS password (or SMMC_PASSWORD)")
    g.add_argument(
        "--ek", metavar="HEX", help="global unicast encryption key, 16 bytes (or SMMC_EK)"
    )
    g.add_argument("--ak", metavar="HEX", help="authentication key, 16 bytes (or SMMC_AK)")
    g.add_argument(
        "--system-title",
        metavar="HEX",
        help="system title, 8 bytes (decode: the sender's; meter: ours)",
    )
    g.add_argument(
        "--secrets-file", metavar="FILE", type=Path, help="TOML file with password / ek / ak"
    )


def resolve_keys(args: argparse.Namespace) -> Credentials:
    file_values = _read_file(getattr(args, "secrets_file", None))
    password = _pick(getattr(args, "password", None), "SMMC_PASSWORD", file_values.get("password"))
    if password is not None:
        REDACT.add_text(password[1])
        REDACT.add_bytes(password[1].encode())
    ek = _key(_pick(args.ek, "SMMC_EK", file_values.get("ek")), "ek")
    ak = _key(_pick(args.ak, "SMMC_AK", file_values.get("ak")), "ak")
    title = None
    if args.system_title is not None:
        title = _hex_bytes(args.system_title, "--system-title", 8)
    return Credentials(
        Secret(password[1].encode()) if password is not None else None, ek, ak, title
    )


def _pick(option: str | None, env: str, from_file: str | None) -> tuple[str, str] | None:
    """(source name, value) of the first source that has the value."""
    if option is not None:
        return ("--" + env.removeprefix("SMMC_").lower(), option)
    if os.environ.get(env):
        return (env, os.environ[env])
    if from_file is not None:
        return (f"{env.removeprefix('SMMC_').lower()} in the secrets file", from_file)
    return None


def _key(picked: tuple[str, str] | None, name: str) -> Secret | None:
    if picked is None:
        return None
    source, text = picked
    REDACT.add_text(text)
    raw = _hex_bytes(text, source, 16)
    REDACT.add_bytes(raw)
    return Secret(raw)


def _hex_bytes(text: str, source: str, size: int) -> bytes:
    cleaned = text.strip().replace(" ", "").replace(":", "")
    if not cleaned or any(c not in _HEX for c in cleaned):
        raise UsageError(f"{source}: not hex; expected {size * 2} hex digits ({size} bytes)")
    if len(cleaned) != size * 2:
        raise UsageError(f"{source}: {len(cleaned)} hex digits, expected {size * 2} ({size} bytes)")
    return bytes.fromhex(cleaned)


def _read_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--secrets-file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The TOML error quotes no values, only the position.
        raise UsageError(
            f"--secrets-file {path}: not valid TOML ({type(exc).__name__}); "
            'expected lines like password = "…", ek = "00…0f", ak = "d0…df"'
        ) from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in ("password", "ek", "ak"):
            raise UsageError(
                f"--secrets-file {path}: unknown key {key!r}; allowed: password, ek, ak"
            )
        if not isinstance(value, str):
            raise UsageError(f"--secrets-file {path}: {key} must be a string")
        if key == "password":
            REDACT.add_text(value)
        out[key] = value
    return out
