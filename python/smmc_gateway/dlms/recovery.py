"""Recovering a stale association (issue 10 item 8).

A meter that a client left without releasing (TCP dropped, a crashed head-end, an
HDLC link cut) may keep that association open and then answer the next client's
AARQ with a rejection (no reason given) or with an exception-response
service-not-allowed, or accept the AARQ and answer its first request with
service-not-allowed. :class:`~smmc_gateway.dlms.client.ClientSession` recovers once:
it releases (RLRQ: through the association machine when associated, else a plain
RLRQ), disconnects (HDLC DISC, or the TCP connection closed), reconnects and
associates again; the first request is then repeated. Each recovery is counted
(``smmc_association_recoveries_total{meter,cause}``) and logged once per meter and
cause (:mod:`smmc_gateway.dlms.observe`).

Refusals that a new association cannot cure are never retried: a wrong password or
key (authentication-failure), an unsupported application context or mechanism, an
initiate error in the user-information (a meter refusing our ciphered InitiateRequest
says so there), a rejection with any other diagnostic.
"""

from __future__ import annotations

import contextlib

from smmc_gateway.dlms.errors import (
    AssociationRefused,
    LinkLost,
    MeterTimeout,
    ServiceNotAllowed,
    SessionError,
)
from smmc_gateway.dlms.stream import Transport

#: A plain RLRQ, reason normal (0): what a meter holding an association needs to drop it.
RLRQ = bytes.fromhex("6203800100")

#: The AARE diagnostics of a meter refusing because it is busy with another association.
STALE_DIAGNOSTICS = frozenset({"null", "no-reason-given", "None"})

AARE_REJECTED = "aare-rejected"
SERVICE_NOT_ALLOWED = "service-not-allowed"


def stale_cause(exc: SessionError) -> str | None:
    """The recovery cause when ``exc`` may come from a stale association, else None."""
    if isinstance(exc, ServiceNotAllowed):
        return SERVICE_NOT_ALLOWED
    if (
        isinstance(exc, AssociationRefused)
        and exc.result in ("rejected-permanent", "rejected-transient")
        and exc.diagnostic in STALE_DIAGNOSTICS
        and not exc.detail  # an initiate error (wrong keys, …) is not a stale association
    ):
        return AARE_REJECTED
    return None


async def release_unassociated(transport: Transport, wait: float) -> None:
    """Send a plain RLRQ for the association the meter holds and read one answer (an
    RLRE, or whatever it says) within ``wait`` seconds; a meter that says nothing is fine."""
    with contextlib.suppress(LinkLost, MeterTimeout):
        await transport.send_apdu(RLRQ)
        await transport.receive_apdu(wait)
