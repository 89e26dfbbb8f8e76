"""Assembling a client session: an endpoint (where the meter is, how the link is
framed) and credentials -> a :class:`Transport` and a :class:`Security`.

One place for what the CLI (``cli/meter_session.py``), the head-end
(``headend/sessions.py``) and the public API (:mod:`smmc_gateway.api`) each need::

    ep = Endpoint("hdlc", host="192.0.2.7", port=4059)
    transport = build_transport(ep, Addressing(client=1, logical_device=1, physical=17),
                                hdlc_response_timeout=2.5)
    security = build_security("hls-gmac", ek=EK, ak=AK, system_title=TITLE,
                               ic_store=store, ic_scope=key_scope(EK, AK))

Kinds: ``wrapper`` (TCP, IEC 62056-47), ``hdlc`` (HDLC over TCP), ``mode-e`` (HDLC
over TCP after the IEC 62056-21 mode E sign-on: a meter port behind an optical- or
serial-to-TCP converter), ``serial`` (HDLC on a serial/RS-485 line), ``optical``
(mode E sign-on on the optical head, then HDLC). ``baud``: the serial speed, or the
highest rate a mode E sign-on may switch to (None: each transport's default).

Errors: :class:`ConfigurationError` (a ``ValueError``) whose ``part`` names what is
wrong or missing (``"password"``, ``"ek"``, ``"baud"``, ...); callers add their own
wording (option names, the meter id).

The system title and invocation-counter scope for a client that keeps its counters
in a store file: :func:`installation_title` (made once, kept beside the store,
``STORE.system-title``) and :func:`key_scope` (one counter sequence per key set).
The CLI and the API use the same two, so runs of either against the same store
share one (title, counter) sequence and never repeat an AES-GCM nonce.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from smmc_gateway.dlms.association import Security
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport

if TYPE_CHECKING:
    from smmc_gateway.dlms.ic_store import InvocationCounterStore

Kind = Literal["wrapper", "hdlc", "mode-e", "serial", "optical"]
KINDS: tuple[str, ...] = ("wrapper", "hdlc", "mode-e", "serial", "optical")

TITLE_PREFIX = b"SMC"
TITLE_SUFFIX = ".system-title"


class ConfigurationError(ValueError):
    """A connection or credential setting that is wrong or missing; ``part`` names it."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


class TitleFileError(ConfigurationError):
    """The system title file beside a counter store (part ``system_title``): ``damaged``
    when it is there but unreadable, not hex or not 8 bytes (removing it makes a new
    one); otherwise it could not be written. Callers word their own remedy from it."""

    def __init__(self, path: Path, message: str, *, damaged: bool) -> None:
        super().__init__("system_title", message)
        self.path = path
        self.damaged = damaged


@dataclass(frozen=True)
class Endpoint:
    """Where a meter is and how its link is framed (see the module doc)."""

    kind: Kind
    host: str = ""
    port: int = 0
    device: str = ""
    baud: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigurationError("kind", f"link kind {self.kind!r}: expected one of {KINDS}")
        if self.kind in ("wrapper", "hdlc", "mode-e"):
            if not self.host:
                raise ConfigurationError("host", f"{self.kind} over TCP needs a host")
            if not 0 < self.port < 65536:
                raise ConfigurationError("port", f"TCP port {self.port}: expected 1..65535")
        elif not self.device:
            raise ConfigurationError("device", f"{self.kind} needs a device path")
        if self.baud is not None and self.baud <= 0:
            raise ConfigurationError("baud", f"baud {self.baud}: must be a positive rate")

    def describe(self) -> str:
        """For messages (no secrets): ``tcp 192.0.2.7:4059 (HDLC)``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.kind == "wrapper":
            return f"tcp {host}:{self.port} (wrapper)"
        if self.kind == "hdlc":
            return f"tcp {host}:{self.port} (HDLC)"
        if self.kind == "mode-e":
            return f"tcp {host}:{self.port} (mode E sign-on, then HDLC)"
        if self.kind == "serial":
            return f"serial {self.device} at {self.baud or 9600} baud"
        return f"optical head {self.device} (mode E, up to {self.baud or 9600} baud)"


@dataclass(frozen=True)
class Addressing:
    """Client SAP, server logical device (upper HDLC address / wrapper wPort), server
    physical device (lower HDLC address; None: one-byte server address)."""

    client: int
    logical_device: int = 1
    physical: int | None = None
    address_size: int | None = None


def build_transport(
    endpoint: Endpoint,
    addressing: Addressing,
    *,
    hdlc_response_timeout: float = 3.0,
    hdlc_max_retries: int = 3,
    who: str = "",
) -> Transport:
    """The unopened transport for ``endpoint``. The serial and optical transports are
    imported only when used (pyserial is optional)."""
    a = addressing
    if endpoint.kind == "wrapper":
        return WrapperTransport.tcp(
            endpoint.host, endpoint.port, client_sap=a.client, logical_device=a.logical_device
        )
    hdlc = HdlcSettings(
        client_address=a.client,
        server_upper=a.logical_device,
        server_lower=a.physical,
        address_size=a.address_size,
        response_timeout=hdlc_response_timeout,
        max_retries=hdlc_max_retries,
    )
    if endpoint.kind == "hdlc":
        return HdlcTransport.tcp(endpoint.host, endpoint.port, hdlc)
    if endpoint.kind == "mode-e":
        from smmc_gateway.dlms.mode_e_tcp import DEFAULT_MAX_BAUD, ModeETcpTransport

        try:
            return ModeETcpTransport(
                endpoint.host, endpoint.port, hdlc, max_baud=endpoint.baud or DEFAULT_MAX_BAUD
            )
        except ValueError as exc:
            raise ConfigurationError("baud", f"baud {endpoint.baud}: {exc}") from None
    if endpoint.kind == "serial":
        from smmc_gateway.dlms.serial import SerialHdlcTransport

        return SerialHdlcTransport(endpoint.device, hdlc, baudrate=endpoint.baud or 9600, who=who)
    from smmc_gateway.dlms.optical_port import OpticalTransport

    try:
        return OpticalTransport(endpoint.device, hdlc, max_baud=endpoint.baud or 9600)
    except ValueError as exc:
        raise ConfigurationError("baud", f"baud {endpoint.baud}: {exc}") from None


def build_security(
    level: str,
    *,
    password: bytes | None = None,
    ek: bytes | None = None,
    ak: bytes | None = None,
    system_title: bytes | None = None,
    ic_store: InvocationCounterStore | None = None,
    ic_scope: str = "",
) -> Security:
    """The :class:`Security` of ``level`` ("none", "lls", "hls-gmac"); a missing or
    malformed credential raises :class:`ConfigurationError` naming it."""
    if level == "none":
        return Security.none()
    if level == "lls":
        if not password:
            raise ConfigurationError("password", "LLS authentication needs a password")
        return Security.lls(password)
    if level != "hls-gmac":
        raise ConfigurationError(
            "auth", f"authentication {level!r}: expected 'none', 'lls' or 'hls-gmac'"
        )
    for name, key in (("ek", ek), ("ak", ak)):
        if key is None:
            raise ConfigurationError(name, f"HLS-GMAC needs the {_KEY_NAMES[name]} ({name})")
        if len(key) != 16:
            raise ConfigurationError(name, f"{name} has {len(key)} bytes, expected 16 (AES-128)")
    if system_title is None:
        raise ConfigurationError("system_title", "HLS-GMAC needs our system title")
    if len(system_title) != 8:
        raise ConfigurationError(
            "system_title", f"system title has {len(system_title)} bytes, expected 8"
        )
    assert ek is not None and ak is not None
    return Security.hls_gmac(
        system_title=system_title, ek=ek, ak=ak, ic_store=ic_store, ic_scope=ic_scope
    )


_KEY_NAMES = {"ek": "global unicast encryption key", "ak": "authentication key"}


def key_scope(ek: bytes, ak: bytes) -> str:
    """The invocation-counter scope of a key set in a client's own store (the key set
    itself is not recoverable from it). The prefix is the CLI's, kept for its stores."""
    return "cli-" + hashlib.sha256(b"smmc-ic-scope" + ek + ak).hexdigest()[:16]


def title_path(store: Path) -> Path:
    return store.with_name(store.name + TITLE_SUFFIX)


def installation_title(store: Path) -> bytes:
    """Our system title kept beside the counter store ``store``; made on first use
    (``b"SMC"`` + 5 random bytes, hex, mode 0600), never replaced. ConfigurationError
    (part ``system_title``; a :class:`TitleFileError`) when it cannot be read or written."""
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
        raise TitleFileError(
            path,
            f"system title file {path}: cannot write it ({exc.strerror or exc})",
            damaged=False,
        ) from None
    return title


def _read_title(path: Path) -> bytes:
    try:
        title = bytes.fromhex(path.read_text("ascii").strip())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise TitleFileError(
            path, f"system title file {path}: unreadable or not hex ({exc})", damaged=True
        ) from None
    if len(title) != 8:
        raise TitleFileError(
            path, f"system title file {path}: {len(title)} bytes, expected 8", damaged=True
        )
    return title


def fresh_title() -> bytes:
    """A random system title for a client without a counter store: its counters start
    at 1 each time, so only a new title keeps (title, counter) nonces unique."""
    return TITLE_PREFIX + secrets.token_bytes(8 - len(TITLE_PREFIX))
