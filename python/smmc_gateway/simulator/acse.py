"""What the simulated meter's associations are configured with (Green Book
9.4.2): per client SAP, the configuration of its association machine, and
the invocation counters the meter shares among its connections.

The machine (``_core.ServerAssociation``) checks the AARQ in Green Book
order (application context, mechanism, LLS password or HLS challenge,
calling AP title, the glo-InitiateRequest deciphered with the meter's keys
and its counter checked, DLMS version, PDU size, common conformance),
refuses with the diagnostic that names the fault, serves HLS-GMAC pass 3/4
and ciphers. :func:`association_config` reads the meter's current state for
it: the association object of the client SAP (mechanism, secret, ciphered
context), the security setup (keys, system title, policy), the conformance
the fleet offers, so a key change or a new LLS secret applies to the next AARQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smmc_gateway import _core
from smmc_gateway.simulator.meter import SimulatedMeter
from smmc_gateway.simulator.objects.association import AssociationLN

SERVER_MAX_PDU = 1024
# What the simulated meter offers (Green Book conformance bit names).
SERVER_CONFORMANCE = (
    "general-protection",
    "general-block-transfer",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "data-notification",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
)
# Without general-block-transfer (it is offered only when enabled).
BASIC_CONFORMANCE = tuple(c for c in SERVER_CONFORMANCE if c != "general-block-transfer")

# Security setup version 1 security_policy bits (Blue Book).
POLICY_AUTH_REQUEST, POLICY_ENC_REQUEST = 0x04, 0x08
POLICY_AUTH_RESPONSE, POLICY_ENC_RESPONSE = 0x20, 0x40


@dataclass
class CipherCounters:
    """Invocation counters of one meter, shared by all its connections: its own
    (granted one at a time to the association machines, so they increase in
    the order the APDUs leave) and the last one seen from each client system
    title (a request must carry a larger one)."""

    own: int = 1
    seen: dict[bytes, int] = field(default_factory=dict)

    def next_own(self) -> int:
        ic = self.own
        self.own += 1
        return ic

    def saw(self, title: bytes, counter: int) -> None:
        """An association accepted requests from ``title`` up to ``counter``."""
        if counter > self.seen.get(title, -1):
            self.seen[title] = counter

    def highest_seen(self) -> int:
        """The largest IC received from any client (0 before any)."""
        return max(self.seen.values(), default=0)


def security_control(policy: int) -> int:
    """The protection the security policy asks of requests and answers
    (the machine requires it of requests and adds it to answers); at least
    authentication in a ciphered context."""
    sc = 0x10 if policy & (POLICY_AUTH_REQUEST | POLICY_AUTH_RESPONSE) else 0
    sc |= 0x20 if policy & (POLICY_ENC_REQUEST | POLICY_ENC_RESPONSE) else 0
    return sc or 0x10


def association_config(
    meter: SimulatedMeter, cosem: AssociationLN, offered: tuple[str, ...], referencing: str = "ln"
) -> _core.AssociationConfig:
    """The machine's configuration for ``cosem``'s client SAP, from the meter's
    state now; ``referencing`` "sn" serves short names (the SN contexts only)."""
    creds = meter.credentials
    hls = cosem.mechanism == "hls-gmac"
    keyed = hls or cosem.ciphered
    return _core.AssociationConfig(
        authentication=cosem.mechanism,  # type: ignore[arg-type]
        password=cosem.secret if cosem.mechanism == "lls" else None,
        system_title=creds.system_title if keyed else None,
        ek=creds.guek if keyed else None,
        ak=creds.gak if keyed else None,
        security_control=security_control(meter.security.policy) if cosem.ciphered else None,
        conformance=offered,
        max_receive_pdu=SERVER_MAX_PDU,
        referencing=referencing,
    )
