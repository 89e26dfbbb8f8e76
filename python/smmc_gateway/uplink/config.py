"""Configuration of the uplink (filled from the daemon's TOML by the ops layer)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from smmc_gateway.uplink.envelope import MessageClass
from smmc_gateway.uplink.outbox import ClassLimit
from smmc_gateway.uplink.requests import DEFAULT_NOUNS

#: Nouns whose handling is not bounded by ``command_timeout_s``: a firmware campaign
#: transfers images to many meters and may wait for an activation scheduled days ahead.
UNTIMED_NOUNS = frozenset({"EndDeviceFirmware"})


class TlsSetupError(ValueError):
    """A TLS set-up that cannot work: a CA bundle, certificate or key that cannot be
    loaded, or a broker whose certificate fails verification. The message names the
    file (or the broker) and the reason; retrying does not help."""


class _KeyNeedsPassword(Exception):
    """Raised by the password callback: the key is encrypted (never prompt for it)."""


def _refuse_password() -> bytes:
    raise _KeyNeedsPassword


def _reason(exc: BaseException) -> str:
    """OpenSSL's reason in words ("no certificate or crl found"), or the OS error."""
    if isinstance(exc, ssl.SSLError):
        if exc.reason:
            return str(exc.reason).lower().replace("_", " ")
        return "it is not in PEM format or is damaged"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class TlsFiles:
    """TLS to the broker: CA bundle (None: the system's CAs), and a client certificate
    and key for mutual TLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def context(self) -> ssl.SSLContext:
        """The one client context of this set-up (broker certificate and host name
        verified); :class:`TlsSetupError` naming the file and the reason when a file
        cannot be used. An encrypted key is refused, never prompted for."""
        if (self.cert is None) != (self.key is None):
            raise TlsSetupError("broker.tls: cert and key go together (both or neither)")
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise TlsSetupError(
                f"broker.tls.ca: {self.ca} is not a usable CA bundle: {_reason(exc)} "
                "(a PEM file of CA certificates is expected)"
            ) from None
        if self.cert is not None and self.key is not None:
            try:  # the certificate alone first, so that its problems are named as its own
                ssl.create_default_context().load_verify_locations(cafile=str(self.cert))
            except (OSError, ValueError) as exc:
                raise TlsSetupError(
                    f"broker.tls.cert: {self.cert} is not a usable certificate: {_reason(exc)} "
                    "(a PEM certificate is expected)"
                ) from None
            try:
                ctx.load_cert_chain(str(self.cert), str(self.key), password=_refuse_password)
            except _KeyNeedsPassword:
                raise TlsSetupError(
                    f"broker.tls.key: {self.key} is encrypted with a password; the gateway "
                    "takes an unencrypted key (readable by the service only)"
                ) from None
            except ssl.SSLError as exc:
                if exc.reason == "KEY_VALUES_MISMATCH":
                    raise TlsSetupError(
                        f"broker.tls: the certificate {self.cert} and the key {self.key} do "
                        "not match (the key is not the certificate's private key)"
                    ) from None
                raise TlsSetupError(
                    f"broker.tls.key: {self.key} is not a usable private key: {_reason(exc)} "
                    "(a PEM private key is expected)"
                ) from None
            except OSError as exc:
                raise TlsSetupError(
                    f"broker.tls.key: {self.key} cannot be read: {_reason(exc)}"
                ) from None
        return ctx


@dataclass(frozen=True)
class UplinkConfig:
    """Everything the uplink needs; the password is read from ``password_file`` at connect.

    Inbound requests: at most ``max_concurrent`` handlers run at once and ``max_queued``
    more wait (first come, first served); beyond that a request is answered FAILED
    ``Busy``. A handling longer than ``command_timeout_s`` (nouns in ``untimed_nouns``
    excepted) is cancelled and answered FAILED ``Timeout``; a request whose handling was
    started ``max_attempts`` times without an answer (the process died) is answered
    FAILED ``PoisonCommand``; a reply larger than ``max_reply_bytes`` is replaced by FAILED
    ``ReplyTooLarge``. Answered requests leave the journal after ``journal_retention_s``
    (checked at start and every ``prune_interval_s``)."""

    gateway_id: str
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str | None = None
    username: str | None = None
    password_file: Path | None = None
    tls: TlsFiles | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    max_inflight: int = 16
    publish_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    backoff_min_s: float = 0.2
    backoff_max_s: float = 30.0
    expire_interval_s: float = 10.0
    nouns: frozenset[str] = DEFAULT_NOUNS
    limits: dict[MessageClass, ClassLimit] = field(default_factory=dict)
    max_concurrent: int = 8
    max_queued: int = 256
    max_attempts: int = 2
    command_timeout_s: float = 3600.0
    untimed_nouns: frozenset[str] = UNTIMED_NOUNS
    max_reply_bytes: int = 1 << 20
    max_request_bytes: int = 1 << 20
    """A request body larger than this is answered FAILED ``RequestTooLarge`` unparsed;
    the broker is told (CONNECT Maximum Packet Size) never to send one larger than
    :meth:`max_packet_size`, and at most :meth:`receive_maximum` unacknowledged requests."""
    journal_retention_s: float = 30 * 86400.0
    prune_interval_s: float = 86400.0
    status_interval_s: float = 60.0
    """Without retained messages at the broker: how often ``online`` is re-published."""

    def __post_init__(self) -> None:
        for name in (
            "max_concurrent",
            "max_queued",
            "max_attempts",
            "max_reply_bytes",
            "max_request_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"uplink.{name}: must be >= 1, got {getattr(self, name)}")
        for name in (
            "command_timeout_s",
            "journal_retention_s",
            "prune_interval_s",
            "status_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"uplink.{name}: must be > 0, got {getattr(self, name)}")

    def max_packet_size(self) -> int:
        """What the broker may send us at most (MQTT v5 Maximum Packet Size): bigger
        packets are dropped by the broker, never buffered here."""
        return max(16 << 20, 2 * self.max_request_bytes)

    def receive_maximum(self) -> int:
        """Unacknowledged requests the broker may have in flight to us (MQTT v5)."""
        return min(65535, max(16, self.max_concurrent + self.max_queued))

    def read_password(self) -> str | None:
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(
                f"uplink.password_file: cannot read {self.password_file}: {exc.strerror}"
            ) from None
