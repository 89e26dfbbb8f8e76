"""Association LN (class 15, version 2) for one client SAP, and SAP assignment
(class 17).

0.0.40.0.0.255 always means "the current association": the meter keeps one
:class:`AssociationLN` per client SAP and answers with the caller's. The
object_list is produced by the meter for that client (exactly the objects and
rights it has). association_status is set by the session layer (0
non-associated, 1 association-pending, 2 associated). Over the wire, method 1
(reply_to_HLS_authentication) of an HLS-GMAC association is served by the
association machine itself (``_core.ServerAssociation``: f(StoC) checked,
f(CtoS) answered) and never reaches this object; a direct call of the object
(the meter's API) uses the injected ``hls_reply(client, f(StoC)) -> f(CtoS) or None``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    bit_string,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
    visible_string,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

MECHANISMS = {"none": 0, "lls": 1, "hls-gmac": 5}
# Conformance bits (Green Book) the simulated meter offers, as acse.py
# negotiates them: general-protection, block-transfer-with-get/set/action,
# multiple-references, data-notification, get, set, selective-access,
# event-notification, action (numbering MSB first of the 24-bit string).
CONFORMANCE_BITS = (1, 11, 12, 13, 14, 16, 19, 20, 21, 22, 23)

HlsReply = Callable[[int, bytes], bytes | None]


def _oid(last_arc_group: int, value: int) -> TypedValue:
    """The Association LN version 1+ form of a context/mechanism name:
    {2, 16, 756, 5, 8, group, value}."""
    return structure(
        [
            unsigned(2),
            unsigned(16),
            long_unsigned(756),
            unsigned(5),
            unsigned(8),
            unsigned(last_arc_group),
            unsigned(value),
        ]
    )


class AssociationLN(CosemObject):
    class_id = 15
    write_only = frozenset({7})
    methods = frozenset({1, 2})

    def __init__(
        self,
        client: int,
        *,
        mechanism: str,
        secret: bytes,
        object_list: Callable[[], TypedValue],
        ciphered: bool = False,
        server_sap: int = 1,
        max_pdu: int = 1024,
        hls_reply: HlsReply | None = None,
    ) -> None:
        super().__init__("0.0.40.0.0.255")
        if mechanism not in MECHANISMS:
            raise ValueError(f"mechanism {mechanism!r}, allowed {sorted(MECHANISMS)}")
        self.client = client
        self.mechanism = mechanism
        self.secret = secret
        self.object_list = object_list
        self.ciphered = ciphered
        self.server_sap = server_sap
        self.max_pdu = max_pdu
        self.status = 0
        self.hls_reply = hls_reply
        self.conformance_bits: tuple[int, ...] = CONFORMANCE_BITS

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            return self.object_list()
        if attribute_id == 3:
            return structure([integer(self.client), long_unsigned(self.server_sap)])
        if attribute_id == 4:
            return _oid(1, 3 if self.ciphered else 1)
        if attribute_id == 5:
            conformance = [i in self.conformance_bits for i in range(24)]
            return structure(
                [
                    bit_string(conformance),
                    long_unsigned(self.max_pdu),
                    long_unsigned(self.max_pdu),
                    unsigned(6),
                    integer(0),
                    octet_string(b""),
                ]
            )
        if attribute_id == 6:
            return _oid(2, MECHANISMS[self.mechanism])
        if attribute_id == 8:
            return enum(self.status)
        if attribute_id == 9:
            return octet_string(bytes([0, 0, 43, 0, 1, 255]))
        if attribute_id == 10:
            return array([])
        if attribute_id == 11:
            return structure([unsigned(0), visible_string("")])
        return "read-write-denied"  # 7: the secret is write-only

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        secret = as_bytes(value)
        if not secret:
            return "other-reason"
        self.secret = secret
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is None:
            return ("type-unmatched", None)
        data = as_bytes(parameters)
        if method_id == 2:
            if not data:
                return ("other-reason", None)
            self.secret = data
            return ("success", None)
        if self.hls_reply is None or self.mechanism != "hls-gmac":
            return ("other-reason", None)
        reply = self.hls_reply(self.client, data)
        if reply is None:
            return ("other-reason", None)
        return ("success", octet_string(reply))


class SapAssignment(CosemObject):
    class_id = 17

    def __init__(self, devices: dict[int, bytes]) -> None:
        super().__init__("0.0.41.0.0.255")
        self.devices = devices

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return array(
            [
                structure([long_unsigned(sap), octet_string(name)])
                for sap, name in sorted(self.devices.items())
            ]
        )
