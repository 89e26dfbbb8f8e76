"""The DLMS/COSEM server of one simulated meter on one connection (sans-IO):
APDU in, APDUs out.

:meth:`DlmsServer.handle` takes the client SAP (HDLC client address or
wrapper source wPort) and one APDU, and returns the APDUs to send back. Each
client SAP has its association machine (``_core.ServerAssociation``), made
afresh for every AARQ from the meter's state (:mod:`~smmc_gateway.simulator.acse`):
it checks the AARQ and answers the AARE, serves HLS-GMAC, deciphers and
checks counters, reassembles blocks and general-block-transfer both ways and
refuses what it cannot serve with an exception-response, never silence.
Complete requests are answered by the meter's objects
(:mod:`~smmc_gateway.simulator.services`). This module moves APDUs, grants
the meter's own invocation counters one at a time, shares the clients' last
counters among the meter's connections and keeps the association objects'
status (0 non-associated, 1 pending HLS, 2 associated).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from datetime import datetime

from smmc_gateway import _core
from smmc_gateway.dlms.tags import TAGS
from smmc_gateway.simulator import services, sn
from smmc_gateway.simulator.acse import BASIC_CONFORMANCE, CipherCounters, association_config
from smmc_gateway.simulator.faults import StaleAssociations
from smmc_gateway.simulator.meter import SimulatedMeter, UnknownClientError

TAG_AARQ = TAGS["aarq"]
_REFUSING = _core.AssociationConfig()
_STATUS = {"idle": 0, "awaiting-hls": 1, "associated": 2}


class DlmsServer:
    """Every association of one connection to one meter."""

    def __init__(
        self,
        meter: SimulatedMeter,
        counters: CipherCounters,
        clock: Callable[[], datetime],
        *,
        log: Callable[[str], None] | None = None,
        offered: tuple[str, ...] = BASIC_CONFORMANCE,
        stale: StaleAssociations | None = None,
    ) -> None:
        self.offered = offered
        self.stale = stale  # fault: associations the meter keeps after a drop
        self.meter = meter
        self.counters = counters
        self.clock = clock
        self.log = log or (lambda _msg: None)
        self.associations: dict[int, _core.ServerAssociation] = {}

    def handle(self, client: int, apdu: bytes) -> list[bytes]:
        if not apdu:
            return []
        assoc = self.associations.get(client)
        if self.stale is not None:
            open_ = assoc is not None and assoc.state == "associated"
            held = self.stale.intercept(client, apdu, open_)
            if held is not None:
                return held
        aarq = apdu[0] == TAG_AARQ
        if assoc is None or aarq:
            assoc = self._fresh(client)
        assoc.receive_data(apdu, time.monotonic())
        if aarq and client in self.meter.associations:
            self.meter.association_step(client, "aarq")
        self._drain(client, assoc)
        return assoc.data_to_send()

    def close(self) -> None:
        """The connection is gone: every association on it ends."""
        for client, assoc in self.associations.items():
            if self.stale is not None and assoc.state == "associated":
                self.stale.dropped(client)  # no RLRQ came: a meter with the fault keeps it
            self._status(client, 0)
        self.associations.clear()

    def _fresh(self, client: int) -> _core.ServerAssociation:
        """A new machine for ``client`` (a new AARQ replaces any association)."""
        if client in self.associations:
            self._status(client, 0)
        try:
            cosem = self.meter.association(client)
        except UnknownClientError as exc:
            assoc = _core.ServerAssociation(_REFUSING)
            assoc.refuse_all(str(exc))
        else:
            if self.meter.options.referencing == "sn":
                assoc = sn.machine(self.meter, cosem, client)
            else:
                assoc = _core.ServerAssociation(association_config(self.meter, cosem, self.offered))
            if cosem.mechanism == "hls-gmac":
                assoc.set_challenge(secrets.token_bytes(16))
            for title, last in self.counters.seen.items():
                assoc.remember_peer_counter(title, last)
        self.associations[client] = assoc
        return assoc

    def _drain(self, client: int, assoc: _core.ServerAssociation) -> None:
        while events := assoc.events():
            for e in events:
                if isinstance(e, _core.Request):
                    self.meter.association_step(client, "request")
                    serve = sn.answer if self.meter.options.referencing == "sn" else services.answer
                    serve(assoc, e, self.meter, client, self.clock())
                    self.meter.association_step(client, "answered")
                elif isinstance(e, _core.NeedCounters):
                    assoc.grant_counters(self.counters.next_own(), 1)
                elif isinstance(e, _core.Associated):
                    self.log(f"client {client}: associated")
                    if e.agreement.mechanism == 5:
                        self.meter.association_step(client, "hls")
                elif isinstance(e, _core.Refused):
                    self.log(f"client {client}: AARQ rejected ({e.diagnostic_name}): {e.detail}")
                elif isinstance(e, _core.ProtocolError):
                    self.log(f"client {client}: {e.error.message}")
        title, last = assoc.client_system_title, assoc.last_incoming_counter
        if title is not None and last is not None:
            self.counters.saw(title, last)
        status = _STATUS[assoc.state]
        self._status(client, status)
        agreement = assoc.agreement
        if status and title is not None and agreement is not None and agreement.ciphered:
            self.meter.credentials.client_system_titles[client] = title  # security setup attr 4

    def _status(self, client: int, status: int) -> None:
        with contextlib.suppress(UnknownClientError):
            self.meter.association(client).status = status
