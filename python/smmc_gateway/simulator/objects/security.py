"""Security setup (class 64, version 1): policy, suite, system titles and the
keys a meter holds.

The keys live in :class:`SecurityCredentials`, shared with the session layer
(which does the ciphering). Method 2 key_transfer receives wrapped keys; the
unwrapping (RFC 3394 with the master key) is the caller's crypto, injected as
``unwrap(kek, wrapped) -> key``; a key that does not unwrap changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    as_int,
    as_list,
    as_structure,
    enum,
    octet_string,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

KEY_NAMES = {
    0: "global_unicast_encryption",
    1: "global_broadcast_encryption",
    2: "authentication",
    3: "master",
}


@dataclass
class SecurityCredentials:
    """What the simulated meter accepts. Keys are 16 bytes (suite 0)."""

    system_title: bytes = bytes.fromhex("534d4d4300000001")
    guek: bytes = bytes(range(16))
    gbek: bytes = bytes(range(16))
    gak: bytes = bytes(range(16, 32))
    kek: bytes = bytes(range(32, 48))
    lls_password: bytes = b"00000000"
    hls_secrets: dict[int, bytes] = field(default_factory=dict)  # client SAP -> HLS secret
    client_system_titles: dict[int, bytes] = field(default_factory=dict)

    def set_key(self, key_id: int, key: bytes) -> None:
        if key_id == 0:
            self.guek = key
        elif key_id == 1:
            self.gbek = key
        elif key_id == 2:
            self.gak = key
        else:
            self.kek = key


Unwrap = Callable[[bytes, bytes], bytes | None]


class SecuritySetup(CosemObject):
    class_id = 64
    methods = frozenset({1, 2})

    def __init__(
        self,
        credentials: SecurityCredentials,
        *,
        policy: int = 0,
        suite: int = 0,
        unwrap: Unwrap | None = None,
        client_title: Callable[[], bytes] = lambda: b"",
    ) -> None:
        super().__init__("0.0.43.0.1.255")
        self.credentials = credentials
        self.policy = policy
        self.suite = suite
        self.unwrap = unwrap
        self.client_title = client_title

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        values: dict[int, TypedValue] = {
            2: enum(self.policy),
            3: enum(self.suite),
            4: octet_string(self.client_title()),
            5: octet_string(self.credentials.system_title),
            6: array([]),
        }
        return values[attribute_id]

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is None:
            return ("type-unmatched", None)
        if method_id == 1:
            policy = as_int(parameters, "enum")
            # version 1 policy is a bit map; bits may only be added
            if policy & self.policy != self.policy or policy > 0xFF:
                return ("other-reason", None)
            self.policy = policy
            return ("success", None)
        transfers = []
        for item in as_list(parameters, "array"):
            key_id_v, wrapped_v = as_structure(item, 2)
            key_id = as_int(key_id_v, "enum")
            if key_id not in KEY_NAMES:
                return ("other-reason", None)
            transfers.append((key_id, as_bytes(wrapped_v)))
        if self.unwrap is None:
            return ("other-reason", None)
        keys = []
        for key_id, wrapped in transfers:
            key = self.unwrap(self.credentials.kek, wrapped)
            if key is None or len(key) != 16:
                return ("other-reason", None)
            keys.append((key_id, key))
        for key_id, key in keys:
            self.credentials.set_key(key_id, key)
        return ("success", None)
