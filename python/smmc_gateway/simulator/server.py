"""The DLMS/COSEM server of one simulated meter on one connection (sans-IO):
APDU in, APDUs out.

:meth:`DlmsServer.handle` takes the client SAP (HDLC client address or
wrapper source wPort) and one APDU, and returns the APDUs to send back. It
holds one :class:`~smmc_gateway.simulator.acse.Association` per client SAP:
AARQ -> AARE (acse.py), RLRQ -> RLRE, and in between GET / SET / ACTION
(normal, with-list, block transfer both ways, general-block-transfer)
answered by the :class:`SimulatedMeter`. In a ciphered context every request
must be glo-/ded-/general-glo-ciphered with the meter's keys and an
increasing invocation counter, with at least the protection the security
setup's policy asks of requests; the answer is ciphered the same way (plus
what the policy asks of responses) with the meter's own increasing counter.
A request the meter cannot serve gets an exception-response, never silence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway import _core
from smmc_gateway.simulator import gbt
from smmc_gateway.simulator.acse import (
    BASIC_CONFORMANCE,
    Association,
    CipherCounters,
    Rejected,
    establish,
    hls_reply,
    initiate_response,
)
from smmc_gateway.simulator.meter import SimulatedMeter
from smmc_gateway.simulator.services import dispatch

# Security setup version 1 security_policy bits (Blue Book).
POLICY_AUTH_REQUEST, POLICY_ENC_REQUEST = 0x04, 0x08
POLICY_AUTH_RESPONSE, POLICY_ENC_RESPONSE = 0x20, 0x40
CIPHER_OVERHEAD = 24  # tag + length + SC + IC + GMAC tag of a glo- APDU
TAG_AARQ, TAG_RLRQ = 0x60, 0x62
REQUEST_KINDS = ("get-request", "set-request", "action-request")


def _exception(state: str, service: str, ic: int | None = None) -> bytes:
    return _core.encode_apdu(
        {
            "apdu": "exception-response",
            "state_error": state,
            "service_error": service,
            "invocation_counter": ic,
        }
    )


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
    ) -> None:
        self.offered = offered
        self.meter = meter
        self.counters = counters
        self.clock = clock
        self.log = log or (lambda _msg: None)
        self.associations: dict[int, Association] = {}

    # ------------------------------------------------------------------ entry
    def handle(self, client: int, apdu: bytes) -> list[bytes]:
        if not apdu:
            return []
        if apdu[0] == TAG_AARQ:
            return [self._aarq(client, apdu)]
        if apdu[0] == TAG_RLRQ:
            return [self._rlrq(client, apdu)]
        assoc = self.associations.get(client)
        if assoc is None:
            self.log(f"client {client}: APDU 0x{apdu[0]:02x} without an association")
            return [_exception("service-not-allowed", "operation-not-possible")]
        try:
            decoded = _core.decode_apdu(apdu)
        except _core.DlmsError as exc:
            self.log(f"client {client}: undecodable APDU: {exc}")
            return [_exception("service-unknown", "service-not-supported")]
        kind: str = decoded["apdu"]
        if kind == "general-block-transfer":
            return self._gbt(assoc, decoded)
        protection: tuple[int, bool, bool] | None = None
        if kind.startswith(("glo-", "ded-", "general-glo-", "general-ded-")):
            deciphered = self._decipher(assoc, apdu, kind)
            if isinstance(deciphered, bytes):
                return [deciphered]
            decoded, protection = deciphered
            kind = decoded["apdu"]
        elif assoc.ciphered and kind.startswith(REQUEST_KINDS):
            self.log(f"client {client}: plain {kind} in a ciphered context refused")
            return [_exception("service-not-allowed", "operation-not-possible")]
        replies = dispatch(self, assoc, decoded)
        if replies is None:
            return [_exception("service-not-allowed", "service-not-supported")]
        out = [self._protect(assoc, r, protection) for r in replies]
        if "general-block-transfer" in assoc.conformance:
            out = [
                gbt.start(assoc.gbt, r, assoc.client_max_pdu)
                if len(r) > assoc.client_max_pdu
                else r
                for r in out
            ]
        return out

    def _gbt(self, assoc: Association, block: dict[str, Any]) -> list[bytes]:
        if "general-block-transfer" not in assoc.conformance:
            return [_exception("service-not-allowed", "service-not-supported")]
        blocks, request = gbt.receive(assoc.gbt, block)
        if request is None:
            return blocks
        gbt.finish_incoming(assoc.gbt)
        return self.handle(assoc.client, request)

    def close(self) -> None:
        """The connection is gone: every association on it ends."""
        for client in list(self.associations):
            self._drop(client)

    # ------------------------------------------------------------------ ACSE
    def _aarq(self, client: int, data: bytes) -> bytes:
        try:
            aarq = _core.decode_apdu(data)
        except _core.DlmsError as exc:
            self.log(f"client {client}: bad AARQ: {exc}")
            return _core.encode_apdu(
                {
                    "apdu": "aare",
                    "application_context_name": "logical-name",
                    "result": "rejected-permanent",
                    "result_source_diagnostic": {
                        "source": "acse-service-provider",
                        "value": "no-reason-given",
                    },
                }
            )
        self._drop(client)
        try:
            assoc, aare = establish(self.meter, self.counters, client, aarq, offered=self.offered)
        except Rejected as exc:
            self.log(f"client {client}: AARQ rejected: {exc}")
            return exc.aare
        self.associations[client] = assoc
        self.log(f"client {client}: associated ({assoc.mechanism})")
        return aare

    def _rlrq(self, client: int, data: bytes) -> bytes:
        """RLRQ -> RLRE. In a ciphered association the RLRQ may carry a
        glo-initiate-request (Green Book: an authenticated release); it must
        decipher, and the RLRE then carries a ciphered InitiateResponse. One
        that does not decipher leaves the association as it is."""
        assoc = self.associations.get(client)
        try:
            ui = _core.decode_apdu(data).get("user_information")
        except _core.DlmsError:
            ui = None
        answer = None
        if assoc is not None and assoc.ciphered and ui is not None:
            creds = self.meter.credentials
            try:
                _core.decipher_apdu(
                    _core.encode_apdu(ui),
                    system_title=assoc.client_title,
                    ek=creds.guek,
                    ak=creds.gak,
                )
            except _core.DlmsError as exc:
                self.log(f"client {client}: RLRQ user-information does not decipher: {exc}")
                return _core.encode_apdu(
                    {"apdu": "rlre", "reason": "not-finished", "user_information": None}
                )
            answer = _core.decode_apdu(
                _core.cipher_apdu(
                    initiate_response(assoc.conformance),
                    security_control=0x30,
                    system_title=creds.system_title,
                    invocation_counter=self.counters.next_own(),
                    ek=creds.guek,
                    ak=creds.gak,
                )
            )
        self._drop(client)
        return _core.encode_apdu({"apdu": "rlre", "reason": "normal", "user_information": answer})

    def _drop(self, client: int) -> None:
        if self.associations.pop(client, None) is not None:
            with contextlib.suppress(ValueError):
                self.meter.association(client).status = 0

    # ------------------------------------------------------------------ ciphering
    def _keys(self, assoc: Association, dedicated: bool) -> tuple[bytes, bytes]:
        creds = self.meter.credentials
        if dedicated and assoc.dedicated_key is not None:
            return assoc.dedicated_key, creds.gak
        return creds.guek, creds.gak

    def _decipher(
        self, assoc: Association, apdu: bytes, kind: str
    ) -> tuple[dict[str, Any], tuple[int, bool, bool]] | bytes:
        if not assoc.ciphered:
            return _exception("service-not-allowed", "operation-not-possible")
        dedicated = kind.startswith(("ded-", "general-ded-"))
        general = kind.startswith("general-")
        ek, ak = self._keys(assoc, dedicated)
        policy = self.meter.security.policy
        required = (0x10 if policy & POLICY_AUTH_REQUEST else 0) | (
            0x20 if policy & POLICY_ENC_REQUEST else 0
        )
        try:
            plain, sc, ic, title = _core.decipher_apdu(
                apdu,
                system_title=assoc.client_title,
                ek=ek,
                ak=ak,
                required_protection=required,
            )
        except _core.DlmsError as exc:
            self.log(f"client {assoc.client}: deciphering failed: {exc}")
            return _exception("service-not-allowed", "deciphering-error")
        if general and title != assoc.client_title:
            return _exception("service-not-allowed", "deciphering-error")
        if not self.counters.accept(assoc.client_title, ic):
            expected = self.counters.expected(assoc.client_title)
            self.log(f"client {assoc.client}: invocation counter {ic} replayed")
            return _exception("service-not-allowed", "invocation-counter-error", expected)
        try:
            decoded = _core.decode_apdu(plain)
        except _core.DlmsError:
            return _exception("service-unknown", "service-not-supported")
        return decoded, (sc, dedicated, general)

    def _protect(
        self, assoc: Association, reply: bytes, protection: tuple[int, bool, bool] | None
    ) -> bytes:
        if protection is None or reply[0] == 0xD8:  # exception-responses stay plain
            return reply
        sc, dedicated, general = protection
        ek, ak = self._keys(assoc, dedicated)
        policy = self.meter.security.policy
        sc = (sc & 0x30) | (0x10 if policy & POLICY_AUTH_RESPONSE else 0)
        sc |= 0x20 if policy & POLICY_ENC_RESPONSE else 0
        return _core.cipher_apdu(
            reply,
            security_control=sc or 0x30,
            system_title=self.meter.credentials.system_title,
            invocation_counter=self.counters.next_own(),
            ek=ek,
            ak=ak,
            dedicated=dedicated and assoc.dedicated_key is not None,
            general=general,
        )

    # ------------------------------------------------------------------ for services.py
    def room(self, assoc: Association) -> int:
        """The largest plain APDU the client accepts in one piece."""
        if "general-block-transfer" in assoc.conformance:
            return 1 << 30  # whole answers; GBT splits them after ciphering
        overhead = CIPHER_OVERHEAD if assoc.ciphered else 0
        return max(assoc.client_max_pdu - overhead, 32)

    def now(self) -> datetime:
        return self.clock()

    def hls(self, assoc: Association, f_stoc: bytes) -> bytes | None:
        return hls_reply(self.meter, self.counters, assoc, f_stoc)
