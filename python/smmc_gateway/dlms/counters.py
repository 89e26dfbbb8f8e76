"""Invocation counters between the persistent store and the association machine.

The machine (``_core.ClientAssociation``) never invents a counter: it asks
(:class:`~smmc_gateway._core.NeedCounters`) and this glue grants it a run
taken from the :class:`~smmc_gateway.dlms.ic_store.InvocationCounterStore`
(reserved on disk before use, never handed out twice). What the meter sends
back is checked by the machine (each counter above the last, recorded only
from an authenticated APDU); the store tells it the persisted last counters
before the association opens and records where it ended when it closes.

A meter's counter hint (an exception-response naming the counter it
expects, unauthenticated) goes through the store's rules (:meth:`hint`):
ignored when not ahead, refused beyond ``max_counter_jump``, else followed
*tentatively*: the next grant starts at the hint. The store persists it once
an authenticated answer confirmed a counter of the tentative run
(:meth:`confirm`, after every answer).
"""

from __future__ import annotations

from smmc_gateway import _core
from smmc_gateway.dlms.association import Security
from smmc_gateway.dlms.ic_store import InvocationCounterStore, memory_store

GRANT = 8
"""Counters granted at a time: the ones an association does not use are
skipped (never reused), a handful per session."""


class CounterGrants:
    """The counter glue of one session: store, scope (one key set) and what
    the machine was granted and confirmed."""

    def __init__(self, security: Security, meter_id: str) -> None:
        self.store: InvocationCounterStore = security.ic_store or memory_store()
        self.scope = security.ic_scope or meter_id or security.system_title.hex()
        self._confirmed: int | None = None

    def __repr__(self) -> str:
        return f"CounterGrants(scope={self.scope!r})"

    def prime(self, assoc: _core.ClientAssociation) -> None:
        """Tell the machine the last counters persisted for this scope's meters."""
        for title, last in self.store.known_incoming(self.scope):
            if len(title) == 8:
                assoc.remember_peer_counter(title, last)

    def grant(self, assoc: _core.ClientAssociation) -> None:
        """A run of counters from the store (the machine asked for them)."""
        first, n = self.store.take(self.scope, GRANT)
        assoc.grant_counters(first, n)

    def hint(self, assoc: _core.ClientAssociation, counter: int, max_jump: int) -> bool:
        """The meter says it expects ``counter``: the store's rules decide
        (SecurityFailure when too far); when followed the next grant starts
        there and replaces what the machine has left."""
        followed = self.store.hint(self.scope, counter, max_jump)
        if followed:
            self.grant(assoc)
        return followed

    def confirm(self, assoc: _core.ClientAssociation) -> None:
        """Persist a followed hint once an authenticated answer confirmed a
        counter of its run (the store ignores any other counter)."""
        confirmed = assoc.confirmed_outgoing_counter
        if confirmed is not None and confirmed != self._confirmed:
            self._confirmed = confirmed
            self.store.confirm(self.scope, confirmed)

    def finish(self, assoc: _core.ClientAssociation, server_title: bytes | None) -> None:
        """Record the server's last authenticated counter and persist it."""
        last = assoc.last_incoming_counter
        if server_title is not None and last is not None:
            self.store.record_incoming(self.scope, server_title, last)
        self.store.flush()
