"""Configuration of the uplink (filled from the daemon's TOML by the ops layer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from smmc_gateway.uplink.envelope import MessageClass
from smmc_gateway.uplink.outbox import ClassLimit
from smmc_gateway.uplink.requests import DEFAULT_NOUNS


@dataclass(frozen=True)
class TlsFiles:
    """TLS to the broker: CA bundle, and a client certificate and key for mutual TLS."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class UplinkConfig:
    """Everything the uplink needs; the password is read from ``password_file`` at connect."""

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

    def read_password(self) -> str | None:
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(
                f"uplink.password_file: cannot read {self.password_file}: {exc.strerror}"
            ) from None
