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
never repeat a nonce of another store. The title file and the counter scope are those of
:mod:`smmc_gateway.dlms.endpoint`, which also builds the transport and the Security: a
script using the Python API with the same ``ic_store`` shares this one sequence.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smmc_gateway.cli.common import OperationFailed, UsageError
from smmc_gateway.cli.secrets import Credentials, resolve_keys
from smmc_gateway.dlms import endpoint
from smmc_gateway.dlms.association import DEFAULT_QUIRKS, Security, SessionSettings
from smmc_gateway.dlms.endpoint import Addressing, ConfigurationError, Endpoint, TitleFileError
from smmc_gateway.dlms.endpoint import title_path as title_path  # re-exported (tests, docs)
from smmc_gateway.dlms.transport import Transport


@dataclass(frozen=True)
class Target:
    """What we connect to, for messages (no secrets)."""

    description: str
    client: int
    level: str
    kind: str = "tcp"
    """tcp, serial or optical: which hints apply."""


def default_ic_store() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smmc-gateway" / "invocation-counters.sqlite"


def ic_store_path(args: argparse.Namespace) -> Path:
    return Path(args.ic_store) if getattr(args, "ic_store", None) else default_ic_store()


def installation_title(store: Path) -> bytes:
    """The CLI's own system title kept beside ``store``, made on first use (0600): the
    file the Python API uses too (:func:`smmc_gateway.dlms.endpoint.installation_title`)."""
    try:
        return endpoint.installation_title(store)
    except TitleFileError as exc:
        if exc.damaged:
            hint = "remove it (a new title is made) or give --system-title HEX"
        else:
            hint = "give a writable --ic-store FILE or --system-title HEX"
        raise UsageError(f"{exc}; {hint}") from None


def security_from(args: argparse.Namespace, creds: Credentials) -> Security:
    level = args.auth
    if level is None:
        level = "hls-gmac" if creds.ek is not None else "lls" if creds.password else "none"
    if level == "lls":
        if creds.password is None:
            raise UsageError(
                "--auth lls needs a password: --password, SMMC_PASSWORD or --secrets-file"
            )
        return _security("lls", password=creds.password.reveal())
    if level == "hls-gmac":
        if creds.ek is None or creds.ak is None:
            raise UsageError(
                "--auth hls-gmac needs both keys: --ek and --ak (or SMMC_EK / "
                "SMMC_AK, or --secrets-file)"
            )
        ek, ak = creds.ek.reveal(), creds.ak.reveal()
        store = _ic_store(args)
        title = creds.system_title or installation_title(ic_store_path(args))
        return _security(
            level,
            ek=ek,
            ak=ak,
            system_title=title,
            ic_store=store,
            ic_scope=endpoint.key_scope(ek, ak),
        )
    return _security("none")


def _security(level: str, **credentials: Any) -> Security:
    """:func:`~smmc_gateway.dlms.endpoint.build_security`, its refusal a UsageError (the
    options were checked already: this is the shared builder's own check)."""
    try:
        return endpoint.build_security(level, **credentials)
    except ConfigurationError as exc:
        raise UsageError(f"--auth {level}: {exc}") from None


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
        referencing=getattr(args, "referencing", "auto"),
    )
    if getattr(args, "mode_e", False) and (args.tcp is None or not args.hdlc):
        raise UsageError(
            "--mode-e is the IEC 62056-21 sign-on before HDLC over TCP: use it with --tcp "
            "HOST:PORT --hdlc (the optical head, --optical DEV, signs on by itself)"
        )
    option = _option(args)
    addressing = Addressing(client=client, logical_device=args.logical_device, physical=args.server)
    try:
        ep = _endpoint(args)
        # --timeout bounds the wait for an answer, HDLC retransmissions included.
        transport = endpoint.build_transport(
            ep, addressing, hdlc_response_timeout=max(timeout / 4, 0.5), hdlc_max_retries=3
        )
    except ConfigurationError as exc:
        if exc.part == "baud":
            raise UsageError(f"--{exc}") from None  # "--baud N: why"
        raise UsageError(f"{option}: {exc}") from None
    except ImportError as exc:
        raise OperationFailed(f"{option} is not available in this build ({exc})") from None
    kind = "tcp" if args.tcp is not None else "serial" if args.serial is not None else "optical"
    return transport, settings, Target(ep.describe(), client, security.level, kind)


def _option(args: argparse.Namespace) -> str:
    """The option that names the link (for messages)."""
    if args.tcp is not None:
        return "--mode-e" if args.hdlc and getattr(args, "mode_e", False) else "--tcp"
    return "--serial" if args.serial is not None else "--optical"


def _endpoint(args: argparse.Namespace) -> Endpoint:
    """The endpoint the connection options name (ConfigurationError naming a bad part)."""
    if args.tcp is not None:
        host, port = args.tcp
        if args.hdlc and getattr(args, "mode_e", False):
            return Endpoint("mode-e", host=host, port=port, baud=args.baud)
        return Endpoint("hdlc" if args.hdlc else "wrapper", host=host, port=port)
    if args.serial is not None:
        return Endpoint("serial", device=args.serial, baud=args.baud)
    return Endpoint("optical", device=args.optical, baud=args.baud)
