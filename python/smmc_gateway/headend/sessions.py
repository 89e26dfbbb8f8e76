"""Client sessions for configured meters: MeterConfig -> transport + security -> ClientSession.

The head-end never builds bytes: it picks the transport the configuration names
(TCP wrapper, HDLC over TCP, HDLC on a serial bus, the optical port), the
security (none, LLS, HLS-GMAC with the meter's keys and this gateway's system
title) and hands back an unopened :class:`~smmc_gateway.dlms.session.ClientSession`.
Invocation counters come from one persistent store (scope: the meter id).
"""

from __future__ import annotations

import threading

from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import HdlcSettings, HdlcTransport, Transport, WrapperTransport
from smmc_gateway.ops.config_model import (
    BusConfig,
    MeterConfig,
    OpticalConnection,
    SerialConnection,
    TcpConnection,
)

DEFAULT_SYSTEM_TITLE = b"SMMCGW00"


class BatchedCounterStore(InvocationCounterStore):
    """The invocation-counter store with the incoming counters persisted in batches.

    Sessions call ``flush()`` at close; with thousands of sessions that is one fsync per
    session on the event loop. Here ``flush()`` only wakes a writer thread that persists
    what was seen at most every ``interval_s`` (one transaction for many meters);
    ``close()`` persists the rest. Outgoing counters are untouched: they are still
    reserved in persisted blocks before use, so none is ever sent twice. What a crash
    can lose is under ``interval_s`` of *incoming* high-water marks (replay detection of
    a meter's responses in that window), never counter uniqueness.
    """

    def __init__(self, path: str, *, block: int = 1000, interval_s: float = 1.0) -> None:
        super().__init__(path, block=block)
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._run, name="ic-flush", daemon=True)
        self._writer.start()

    def flush(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            super().flush()
            self._stop.wait(self.interval_s)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._writer.join(timeout=10)
        super().close()


class SessionFactory:
    """Builds unopened sessions for configured meters."""

    def __init__(self, buses: dict[str, BusConfig] | None = None, *,
                 system_title: bytes | None = None, ic_store: InvocationCounterStore | None = None,
                 response_timeout: float = 10.0, operation_timeout: float = 120.0) -> None:
        self.buses = dict(buses or {})
        self.system_title = system_title or DEFAULT_SYSTEM_TITLE
        self.ic_store = ic_store
        self.response_timeout = response_timeout
        self.operation_timeout = operation_timeout

    def security(self, meter: MeterConfig) -> Security:
        keys = meter.keys
        if meter.security == "none":
            return Security.none()
        if keys is None:
            raise ValueError(f"meter {meter.id}: security {meter.security} needs keys")
        if meter.security == "lls":
            if keys.password is None:
                raise ValueError(f"meter {meter.id}: LLS needs a password (key {keys.key_id})")
            return Security.lls(keys.password.reveal())
        if keys.ek is None or keys.ak is None:
            raise ValueError(f"meter {meter.id}: HLS-GMAC needs ek and ak (key {keys.key_id})")
        return Security.hls_gmac(system_title=self.system_title, ek=keys.ek.reveal(),
                                 ak=keys.ak.reveal(), ic_store=self.ic_store, ic_scope=meter.id)

    def transport(self, meter: MeterConfig) -> Transport:
        conn = meter.connection
        a = meter.addresses
        hdlc = HdlcSettings(client_address=a.client, server_upper=a.server_logical,
                            server_lower=a.server_physical, address_size=a.address_size,
                            response_timeout=min(self.response_timeout, 5.0))
        if isinstance(conn, TcpConnection):
            if conn.framing == "wrapper":
                return WrapperTransport.tcp(conn.host, conn.port, client_sap=a.client,
                                            logical_device=a.server_logical)
            return HdlcTransport.tcp(conn.host, conn.port, hdlc)
        if isinstance(conn, SerialConnection):
            from smmc_gateway.dlms.serial import SerialHdlcTransport

            bus = self.buses.get(conn.bus)
            if bus is None:
                raise ValueError(f"meter {meter.id}: bus {conn.bus!r} is not configured")
            # One session per bus is enforced by the scheduler's bus gate, not here.
            return SerialHdlcTransport(str(bus.device), hdlc, baudrate=bus.baud, who=meter.id)
        if isinstance(conn, OpticalConnection):
            raise ValueError(f"meter {meter.id}: the optical port is for the technician's CLI, "
                             "not for scheduled sessions")
        raise ValueError(f"meter {meter.id}: unknown connection {conn!r}")

    def session(self, meter: MeterConfig) -> ClientSession:
        settings = SessionSettings(client_sap=meter.addresses.client,
                                   security=self.security(meter),
                                   response_timeout=self.response_timeout,
                                   operation_timeout=self.operation_timeout,
                                   association_timeout=max(self.response_timeout * 3, 10.0))
        return ClientSession(self.transport(meter), settings, meter_id=meter.id)
