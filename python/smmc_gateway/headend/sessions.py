"""Client sessions for configured meters: MeterConfig -> transport + security -> ClientSession.

The head-end never builds bytes: it picks the transport the configuration names
(TCP wrapper, HDLC over TCP with or without the IEC 62056-21 mode E sign-on, HDLC on
a serial bus, the optical port), the
security (none, LLS, HLS-GMAC with the meter's keys and this gateway's system
title) and hands back an unopened :class:`~smmc_gateway.dlms.session.ClientSession`.
Invocation counters come from one persistent store (scope: the meter id). The transport
and the Security are made by :mod:`smmc_gateway.dlms.endpoint` (shared with the CLI and
the Python API); its refusals (:class:`~smmc_gateway.dlms.endpoint.ConfigurationError`,
a ValueError) are re-raised with the meter id in front.

HLS-GMAC keys: a meter with an entry in the :class:`KeyJournal` (use case 10, key
change) takes its keys from there, not from the key file: the new keys first and, while
the change is unsettled, the old ones when the new fail to associate (SecurityFailure or
AssociationRefused); the association that works settles the journal (``confirm`` or
``abandon``) unless a key change for that meter is running (it settles itself).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

import structlog

from smmc_gateway.dlms.endpoint import (
    Addressing,
    ConfigurationError,
    Endpoint,
    Kind,
    build_security,
    build_transport,
)
from smmc_gateway.dlms.errors import AssociationRefused, SecurityFailure
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.observe import SessionObserver
from smmc_gateway.dlms.session import DEFAULT_QUIRKS, ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import Transport
from smmc_gateway.ops.config_model import (
    BusConfig,
    MeterConfig,
    ModelConfig,
    OpticalConnection,
    SerialConnection,
    TcpConnection,
)
from smmc_gateway.usecases.key_change import KeyJournal, KeySet

log = structlog.get_logger("smmc_gateway.headend")

DEFAULT_SYSTEM_TITLE = b"SMMCGW00"
KEY_JOURNAL_NAME = "key-journal.json"

# Keys forced for a meter by the running task only (the key change's own sessions).
_forced_keys: ContextVar[dict[str, KeySet] | None] = ContextVar("smmc_forced_keys", default=None)


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


class KeyFallbackSession(ClientSession):
    """A session that associates with the first key set that works (new, then old) and
    settles the key journal by the outcome (see the module doc)."""

    def __init__(
        self, factory: SessionFactory, meter: MeterConfig, candidates: list[KeySet], settle: bool
    ) -> None:
        self._factory, self._meter = factory, meter
        self._candidates, self._settle = candidates, settle
        super().__init__(
            factory.transport(meter),
            factory.settings(meter, candidates[0]),
            meter_id=meter.id,
            observer=factory.observer,
        )

    async def open(self) -> None:
        journal = self._factory.key_journal
        first_error: SecurityFailure | AssociationRefused | None = None
        for n, keys in enumerate(self._candidates):
            if n:  # a fresh transport and settings for the next key set
                ClientSession.__init__(
                    self,
                    self._factory.transport(self._meter),
                    self._factory.settings(self._meter, keys),
                    meter_id=self._meter.id,
                    observer=self._factory.observer,
                )
            try:
                await super().open()
            except (SecurityFailure, AssociationRefused) as exc:
                first_error = first_error or exc
                log.info(
                    "key_set_refused",
                    meter_id=self._meter.id,
                    tried="new keys" if n == 0 else "old keys",
                    error_type=type(exc).__name__,
                )
                continue
            # A key change that began after this session was built settles itself; and the
            # journal acts only if it still holds this (old, new) pair, so a session of an
            # older change can never settle a newer one.
            if (
                self._settle
                and journal is not None
                and self._meter.id not in self._factory.changing
            ):
                new, old = self._candidates[0], self._candidates[-1]
                if n == 0:
                    if journal.confirm(self._meter.id, old, new):
                        log.info(
                            "key_change_confirmed",
                            meter_id=self._meter.id,
                            by="association with the new keys",
                        )
                        if self._factory.on_key_confirmed is not None:
                            self._factory.on_key_confirmed(self._meter.id)
                elif journal.abandon(self._meter.id, old, new):
                    log.warning(
                        "key_change_abandoned",
                        meter_id=self._meter.id,
                        by="association with the old keys",
                    )
            return
        assert first_error is not None
        raise first_error


class SessionFactory:
    """Builds unopened sessions for configured meters.

    ``key_journal``: the key change journal (use case 10); by default
    ``key-journal.json`` beside the invocation-counter store's file (none for an
    in-memory store). ``models``: the meter models (their quirks reach the
    session settings); ``max_block_transfer``: the ceiling on one answer
    reassembled from blocks (``[limits] max_block_transfer``).

    The factory keeps no per-meter state: each session is built from the MeterConfig
    the fleet holds at that moment, so a meter provisioned, changed or removed while
    running is reached (or not) from its next session on. ``buses`` and ``models`` are
    its own dicts, updated in place by a configuration reload."""

    def __init__(
        self,
        buses: dict[str, BusConfig] | None = None,
        *,
        system_title: bytes | None = None,
        ic_store: InvocationCounterStore | None = None,
        response_timeout: float = 10.0,
        operation_timeout: float = 120.0,
        key_journal: KeyJournal | None = None,
        models: Mapping[str, ModelConfig] | None = None,
        max_block_transfer: int = 8 << 20,
    ) -> None:
        self.buses = dict(buses or {})
        self.models = dict(models or {})
        self.max_block_transfer = max_block_transfer
        self.system_title = system_title or DEFAULT_SYSTEM_TITLE
        self.ic_store = ic_store
        self.response_timeout = response_timeout
        self.operation_timeout = operation_timeout
        if key_journal is None and ic_store is not None and ic_store.path not in ("", ":memory:"):
            key_journal = KeyJournal(Path(ic_store.path).parent / KEY_JOURNAL_NAME)
        self.key_journal = key_journal
        self.changing: set[str] = set()
        """Meters whose key change is running: their sessions do not settle the journal."""
        self.observer: SessionObserver | None = None
        """Counts what sessions report (quirks taken, stale associations recovered): the
        daemon's metrics."""
        self.on_key_confirmed: Callable[[str], None] | None = None
        """Called with the meter id when a session confirms a pending key change (key
        escrow publishes the new keys, wrapped)."""

    @staticmethod
    def configured_keys(meter: MeterConfig) -> KeySet:
        """The HLS-GMAC keys of the key file; ValueError when the meter has none."""
        keys = meter.keys
        if meter.security != "hls-gmac":
            raise ValueError(f"meter {meter.id}: security {meter.security} has no global keys")
        if keys is None:
            raise ValueError(f"meter {meter.id}: security {meter.security} needs keys")
        if keys.ek is None or keys.ak is None:
            raise ValueError(f"meter {meter.id}: HLS-GMAC needs ek and ak (key {keys.key_id})")
        return KeySet(keys.ek.reveal(), keys.ak.reveal())

    def candidates(self, meter: MeterConfig) -> list[KeySet]:
        """The key sets a session with ``meter`` tries, in order (HLS-GMAC only)."""
        forced = (_forced_keys.get() or {}).get(meter.id)
        if forced is not None:
            return [forced]
        configured = self.configured_keys(meter)
        if self.key_journal is None:
            return [configured]
        return self.key_journal.current(meter.id, configured)

    @contextlib.contextmanager
    def using_keys(self, meter_id: str, keys: KeySet) -> Iterator[None]:
        """Sessions for ``meter_id`` built in this task (and only here) use ``keys``."""
        current = dict(_forced_keys.get() or {})
        current[meter_id] = keys
        token = _forced_keys.set(current)
        try:
            yield
        finally:
            _forced_keys.reset(token)

    def security(self, meter: MeterConfig, keys: KeySet | None = None) -> Security:
        """The meter's security; for HLS-GMAC with ``keys``, or the first candidate."""
        if meter.security == "none":
            return build_security("none")
        if meter.keys is None:
            raise ValueError(f"meter {meter.id}: security {meter.security} needs keys")
        try:
            if meter.security == "lls":
                if meter.keys.password is None:
                    raise ValueError(
                        f"meter {meter.id}: LLS needs a password (key {meter.keys.key_id})"
                    )
                return build_security("lls", password=meter.keys.password.reveal())
            k = keys or self.candidates(meter)[0]
            return build_security(
                "hls-gmac",
                ek=k.ek,
                ak=k.ak,
                system_title=self.system_title,
                ic_store=self.ic_store,
                ic_scope=meter.id,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(exc.part, f"meter {meter.id}: {exc}") from None

    def transport(self, meter: MeterConfig) -> Transport:
        conn = meter.connection
        a = meter.addresses
        addressing = Addressing(
            client=a.client,
            logical_device=a.server_logical,
            physical=a.server_physical,
            address_size=a.address_size,
        )
        hdlc_timeout = min(self.response_timeout, 5.0)
        try:
            if isinstance(conn, TcpConnection):
                kind: Kind = (
                    "wrapper" if conn.framing == "wrapper" else "mode-e" if conn.mode_e else "hdlc"
                )
                return build_transport(
                    Endpoint(kind, host=conn.host, port=conn.port),
                    addressing,
                    hdlc_response_timeout=hdlc_timeout,
                )
            if isinstance(conn, SerialConnection):
                bus = self.buses.get(conn.bus)
                if bus is None:
                    raise ValueError(f"meter {meter.id}: bus {conn.bus!r} is not configured")
                # One session per bus is enforced by the scheduler's bus gate, not here.
                return build_transport(
                    Endpoint("serial", device=str(bus.device), baud=bus.baud),
                    addressing,
                    hdlc_response_timeout=hdlc_timeout,
                    who=meter.id,
                )
        except ConfigurationError as exc:
            raise ConfigurationError(exc.part, f"meter {meter.id}: {exc}") from None
        if isinstance(conn, OpticalConnection):
            raise ValueError(
                f"meter {meter.id}: the optical port is for the technician's CLI, "
                "not for scheduled sessions"
            )
        raise ValueError(f"meter {meter.id}: unknown connection {conn!r}")

    def settings(self, meter: MeterConfig, keys: KeySet | None = None) -> SessionSettings:
        model = self.models.get(meter.model)
        return SessionSettings(
            client_sap=meter.addresses.client,
            security=self.security(meter, keys),
            response_timeout=self.response_timeout,
            operation_timeout=self.operation_timeout,
            association_timeout=max(self.response_timeout * 3, 10.0),
            max_block_transfer=self.max_block_transfer,
            quirks=model.quirks if model is not None else DEFAULT_QUIRKS,
            referencing=meter.addresses.referencing,
        )

    def session(self, meter: MeterConfig) -> ClientSession:
        if meter.security == "hls-gmac":
            candidates = self.candidates(meter)
            if len(candidates) > 1:
                return KeyFallbackSession(
                    self, meter, candidates, settle=meter.id not in self.changing
                )
            return ClientSession(
                self.transport(meter),
                self.settings(meter, candidates[0]),
                meter_id=meter.id,
                observer=self.observer,
            )
        return ClientSession(
            self.transport(meter), self.settings(meter), meter_id=meter.id, observer=self.observer
        )
