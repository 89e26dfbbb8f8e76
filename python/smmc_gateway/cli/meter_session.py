"""Opening a client session from `smmc-gateway meter` options.

Defaults follow IDIS: without security the public client (16), with LLS or
HLS-GMAC the management client (1); logical device 1. The authentication level
is taken from ``--auth``, else inferred (keys: hls-gmac, password: lls, none).
HLS invocation counters persist in ``--ic-store`` (default under
``$XDG_STATE_HOME/smmc-gateway``) so two CLI runs never reuse one.

Our system title (HLS): ``--system-title``, else one made for this installation: the
first run writes ``b"SMC"`` + 5 random bytes (hex, mode 0600) beside the invocation
counter store (``STORE.system-title``) and later runs reuse it. The AES-GCM nonce is
(system title, invocation counter) under the meter's key: the daemon has its own title
(``gateway.client_system_title``) and its own counters, so were the CLI to send with the
daemon's title and the same key, the two independent counters would repeat nonces. A
title kept beside the counter store pairs one title with one counter sequence: a new
store (another ``--ic-store``) gets a new title, so its counters starting again can
never repeat a nonce of another store.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmc_gateway.cli.common import OperationFailed, UsageError
from smmc_gateway.cli.secrets import Credentials, resolve_keys
from smmc_gateway.dlms.association import DEFAULT_QUIRKS, Security, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport


@dataclass(frozen=True)
class Target:
    """What we connect to, for messages (no secrets)."""

    description: str
    client: int
    level: str
    kind: str = "tcp"
    """tcp, serial or optical: which hints apply."""


TITLE_PREFIX = b"SMC"  # a manufacturer-style prefix; the daemon's default is b"SMMCGW00"
TITLE_SUFFIX = ".system-title"


def default_ic_store() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smmc-gateway" / "invocation-counters.sqlite"


def ic_store_path(args: argparse.Namespace) -> Path:
    return Path(args.ic_store) if getattr(args, "ic_store", None) else default_ic_store()


def title_path(store: Path) -> Path:
    return store.with_name(store.name + TITLE_SUFFIX)


def installation_title(store: Path) -> bytes:
    """The CLI's own system title kept beside ``store``; made on first use (0600)."""
    path = title_path(store)
    try:
        return _read_title(path)
    except FileNotFoundError:
        pass
    title = TITLE_PREFIX + secrets.token_bytes(8 - len(TITLE_PREFIX))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, title.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces one another run made meanwhile
        except FileExistsError:
            return _read_title(path)
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise UsageError(
            f"system title file {path}: cannot write it ({exc.strerror or exc}); give a "
            "writable --ic-store FILE or --system-title HEX"
        ) from None
    return title


def _read_title(path: Path) -> bytes:
    try:
        text = path.read_text("ascii").strip()
        title = bytes.fromhex(text)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"system title file {path}: unreadable or not hex ({exc}); remove it (a new "
            "title is made) or give --system-title HEX"
        ) from None
    if len(title) != 8:
        raise UsageError(
            f"system title file {path}: {len(title)} bytes, expected 8; remove it (a new "
            "title is made) or give --system-title HEX"
        )
    return title


def security_from(args: argparse.Namespace, creds: Credentials) -> Security:
    level = args.auth
    if level is None:
        level = "hls-gmac" if creds.ek is not None else "lls" if creds.password else "none"
    if level == "lls":
        if creds.password is None:
            raise UsageError(
                "--auth lls needs a password: --password, SMMC_PASSWORD or --secrets-file"
            )
        return Security.lls(creds.password.reveal())
    if level == "hls-gmac":
        if creds.ek is None or creds.ak is None:
            raise UsageError(
                "--auth hls-gmac needs both keys: --ek and --ak (or SMMC_EK / "
                "SMMC_AK, or --secrets-file)"
            )
        ek, ak = creds.ek.reveal(), creds.ak.reveal()
        store = _ic_store(args)
        title = creds.system_title or installation_title(ic_store_path(args))
        scope = "cli-" + hashlib.sha256(b"smmc-ic-scope" + ek + ak).hexdigest()[:16]
        return Security.hls_gmac(
            system_title=title,
            ek=ek,
            ak=ak,
            ic_store=store,
            ic_scope=scope,
        )
    return Security.none()


def _ic_store(args: argparse.Namespace) -> Any:
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

    path = ic_store_path(args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return InvocationCounterStore(path)
    except OSError as exc:
        raise UsageError(
            f"invocation counter store {path}: cannot open it ({exc.strerror or exc}); "
            "give a writable --ic-store FILE"
        ) from None


def build(args: argparse.Namespace) -> tuple[Transport, SessionSettings, Target]:
    creds = resolve_keys(args)
    security = security_from(args, creds)
    client = args.client if args.client is not None else (16 if security.level == "none" else 1)
    timeout: float = args.timeout
    settings = SessionSettings(
        client_sap=client,
        security=security,
        response_timeout=timeout,
        association_timeout=max(30.0, timeout * 3),
        quirks=frozenset() if getattr(args, "strict", False) else DEFAULT_QUIRKS,
    )
    hdlc = HdlcSettings(
        client_address=client,
        server_upper=args.logical_device,
        server_lower=args.server,
        # --timeout bounds the wait for an answer, HDLC retransmissions included.
        response_timeout=max(timeout / 4, 0.5),
        max_retries=3,
    )
    transport: Transport
    if getattr(args, "mode_e", False) and (args.tcp is None or not args.hdlc):
        raise UsageError(
            "--mode-e is the IEC 62056-21 sign-on before HDLC over TCP: use it with --tcp "
            "HOST:PORT --hdlc (the optical head, --optical DEV, signs on by itself)"
        )
    if args.tcp is not None:
        host, port = args.tcp
        if args.hdlc and getattr(args, "mode_e", False):
            transport = _mode_e_tcp(host, port, args.baud, hdlc)
            what = f"tcp {host}:{port} (mode E sign-on, then HDLC)"
        elif args.hdlc:
            transport = HdlcTransport.tcp(host, port, hdlc)
            what = f"tcp {host}:{port} (HDLC)"
        else:
            transport = WrapperTransport.tcp(
                host, port, client_sap=client, logical_device=args.logical_device
            )
            what = f"tcp {host}:{port} (wrapper)"
    elif args.serial is not None:
        transport = _serial(args.serial, args.baud, hdlc)
        what = f"serial {args.serial} at {args.baud} baud"
    else:
        transport = _optical(args.optical, args.baud, hdlc)
        what = f"optical head {args.optical} (mode E, up to {args.baud} baud)"
    kind = "tcp" if args.tcp is not None else "serial" if args.serial is not None else "optical"
    return transport, settings, Target(what, client, security.level, kind)


def _serial(device: str, baud: int, hdlc: HdlcSettings) -> Transport:
    mod = _load("smmc_gateway.dlms.serial", "--serial")
    transport: Transport = mod.SerialHdlcTransport(device, hdlc, baudrate=baud)
    return transport


def _mode_e_tcp(host: str, port: int, baud: int, hdlc: HdlcSettings) -> Transport:
    mod = _load("smmc_gateway.dlms.mode_e_tcp", "--mode-e")
    try:
        transport: Transport = mod.ModeETcpTransport(host, port, hdlc, max_baud=baud)
    except ValueError as exc:
        raise UsageError(f"--baud {baud}: {exc}") from None
    return transport


def _optical(device: str, baud: int, hdlc: HdlcSettings) -> Transport:
    mod = _load("smmc_gateway.dlms.optical_port", "--optical")
    transport: Transport = mod.OpticalTransport(device, hdlc, max_baud=baud)
    return transport


def _load(module: str, option: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OperationFailed(f"{option} is not available in this build ({exc})") from None
