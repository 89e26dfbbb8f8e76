"""Secrets for the CLI: passwords and keys from options, environment or a file.

Order of precedence: the option (``--password``, ``--ek``, ``--ak``), then the
environment (``SMMC_PASSWORD``, ``SMMC_EK``, ``SMMC_AK``), then ``--secrets-file``
(TOML: ``password = "…"``, ``ek = "hex"``, ``ak = "hex"``). Values are wrapped in
:class:`Secret` and registered with the output redactor the moment they are read;
error messages say which source was wrong and how, never the value.

A secret on the command line is visible to every user of the machine (``ps``,
``/proc/PID/cmdline``) and stays in the shell's history: ``--help`` says so and
recommends the variables or the file. The secrets file must be a regular file that
only its owner may read or write (mode 0600 or stricter): one readable by the group or
others is refused before anything is read from it, as ``ssh`` refuses such a key.

A wrapped key bundle (``--key-bundle FILE --kek-file FILE``, issue 11): the keys the
gateway escrowed after a remote key change (its ``KeyBundle`` message, or the bundle in
it, as JSON; :mod:`smmc_gateway.usecases.key_bundle`), unwrapped here with the central
key-encryption key (a file of hex). Both files must be 0600 like ``--secrets-file``. A
bundle gives the keys whole: it is not combined with ``--ek``/``--ak``/``--password``,
their variables or a secrets file. A bundle of a key change not yet settled
(``state`` ``pending``) holds two key sets: the new one is used, ``--bundle-previous``
takes the other.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from smmc_gateway.cli.common import REDACT, UsageError
from smmc_gateway.ops.config_model import Secret
from smmc_gateway.usecases.key_bundle import BundleError, ClearKeys, unwrap_bundle, unwrap_previous

_HEX = set("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Credentials:
    password: Secret | None
    ek: Secret | None
    ak: Secret | None
    system_title: bytes | None


_VISIBLE = "; discouraged: visible to other users (ps) and kept in the shell history"


def add_key_options(p: argparse.ArgumentParser, *, with_password: bool) -> None:
    g = p.add_argument_group(
        "security",
        "Secrets given as options are visible to every user of this machine (ps, "
        "/proc) and stay in the shell history: prefer the SMMC_PASSWORD, SMMC_EK and "
        "SMMC_AK variables or --secrets-file (mode 0600).",
    )
    if with_password:
        g.add_argument(
            "--password", metavar="TEXT", help=f"LLS password (better: SMMC_PASSWORD){_VISIBLE}"
        )
    g.add_argument(
        "--ek",
        metavar="HEX",
        help=f"global unicast encryption key, 16 bytes (better: SMMC_EK){_VISIBLE}",
    )
    g.add_argument(
        "--ak", metavar="HEX", help=f"authentication key, 16 bytes (better: SMMC_AK){_VISIBLE}"
    )
    g.add_argument(
        "--system-title",
        metavar="HEX",
        help="system title, 8 bytes (decode: the sender's; meter: ours, default: one made "
        "for this installation and kept beside the invocation counter store)",
    )
    g.add_argument(
        "--secrets-file",
        metavar="FILE",
        type=Path,
        help="TOML file with password / ek / ak; must be a regular file of mode 0600 "
        "(readable by no one else), else it is refused",
    )
    g.add_argument(
        "--key-bundle",
        metavar="FILE",
        type=Path,
        help="the meter's keys as the gateway escrowed them (KeyBundle JSON, keys wrapped "
        "with the central KEK); needs --kek-file; mode 0600",
    )
    g.add_argument(
        "--kek-file",
        metavar="FILE",
        type=Path,
        help="the central key-encryption key (hex) that unwraps --key-bundle; mode 0600",
    )
    g.add_argument(
        "--bundle-previous",
        action="store_true",
        help="with a pending bundle: use its previous key set (the meter did not take the new)",
    )


def resolve_keys(args: argparse.Namespace) -> Credentials:
    bundle = getattr(args, "key_bundle", None)
    if bundle is not None or getattr(args, "kek_file", None) is not None:
        return _from_bundle(args)
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


def _from_bundle(args: argparse.Namespace) -> Credentials:
    bundle_path: Path | None = getattr(args, "key_bundle", None)
    kek_path: Path | None = getattr(args, "kek_file", None)
    if bundle_path is None or kek_path is None:
        raise UsageError(
            "--key-bundle and --kek-file go together: the bundle's keys are "
            "wrapped with the central key-encryption key"
        )
    others = [
        name
        for name, given in (
            ("--password", getattr(args, "password", None)),
            ("--ek", args.ek),
            ("--ak", args.ak),
            ("--secrets-file", getattr(args, "secrets_file", None)),
            ("SMMC_PASSWORD", os.environ.get("SMMC_PASSWORD")),
            ("SMMC_EK", os.environ.get("SMMC_EK")),
            ("SMMC_AK", os.environ.get("SMMC_AK")),
        )
        if given
    ]
    if others:
        raise UsageError(f"--key-bundle gives the keys whole; not with {', '.join(others)}")
    kek_text = read_private_file(kek_path, "--kek-file")
    try:
        digits = "".join(line.split("#", 1)[0] for line in kek_text.decode().splitlines())
        kek = bytes.fromhex(digits.replace(" ", "").replace(":", ""))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"--kek-file {kek_path}: not hex (value not shown)") from None
    if len(kek) not in (16, 24, 32):
        raise UsageError(f"--kek-file {kek_path}: {len(kek)} bytes; a KEK is 16, 24 or 32")
    REDACT.add_bytes(kek)
    try:
        doc = json.loads(read_private_file(bundle_path, "--key-bundle"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"--key-bundle {bundle_path}: not JSON") from None
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict):
        doc = doc["payload"]  # the whole MQTT message
    if isinstance(doc, dict) and isinstance(doc.get("KeyBundle"), list):
        if len(doc["KeyBundle"]) != 1:
            raise UsageError(
                f"--key-bundle {bundle_path}: {len(doc['KeyBundle'])} bundles; "
                "give the file one meter's bundle"
            )
        doc = doc["KeyBundle"][0]
    try:
        keys = unwrap_bundle(doc, kek, "--key-bundle")
        previous = unwrap_previous(doc, kek, "--key-bundle")
    except BundleError as exc:
        raise UsageError(f"{exc} ({bundle_path})") from None
    if getattr(args, "bundle_previous", False):
        if previous is None:
            raise UsageError(
                "--bundle-previous: the bundle holds no previous key set (its "
                "key change is settled)"
            )
        keys = ClearKeys(ek=previous.ek, ak=previous.ak, password=keys.password)
    for raw in (keys.ek, keys.ak, keys.password, keys.master_key):
        if raw is not None:
            REDACT.add_bytes(raw)
            REDACT.add_text(raw.hex())
    title = None
    if args.system_title is not None:
        title = _hex_bytes(args.system_title, "--system-title", 8)
    return Credentials(
        Secret(keys.password) if keys.password is not None else None,
        Secret(keys.ek) if keys.ek is not None else None,
        Secret(keys.ak) if keys.ak is not None else None,
        title,
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


MAX_SECRETS_FILE = 64 * 1024


def read_private_file(path: Path, option: str) -> bytes:
    """The bytes of ``path`` if it is a regular file no one but its owner may access
    (checked on the open file, so what is checked is what is read); else UsageError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{option} {path}: not a regular file; give a file of mode 0600")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise UsageError(
                f"{option} {path}: mode {mode:04o} lets other users read or change it; "
                f"refused: run 'chmod 600 {path}' (and check who else could have read it)"
            )
        if st.st_size > MAX_SECRETS_FILE:
            raise UsageError(
                f"{option} {path}: {st.st_size} bytes, more than a secrets file has "
                f"(at most {MAX_SECRETS_FILE})"
            )
        chunks: list[bytes] = []
        while chunk := os.read(fd, MAX_SECRETS_FILE + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > MAX_SECRETS_FILE:
                raise UsageError(f"{option} {path}: grew beyond {MAX_SECRETS_FILE} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror})") from None
    finally:
        os.close(fd)


def _read_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    raw = read_private_file(path, "--secrets-file")
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
