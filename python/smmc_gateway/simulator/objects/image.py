"""Image transfer (class 18): firmware upload bookkeeping, verification and
activation.

image_transfer_status: 0 not initiated, 1 initiated, 2 verification initiated,
3 verification successful, 4 verification failed, 5 activation initiated,
6 activation successful, 7 activation failed. Verification needs every block
and then asks the injected ``verifier(identifier, image) -> bool`` (by default
any complete image passes); the "signature" in image_to_activate_info is the
image's SHA-256 digest. Activation calls ``on_activate(now, identifier,
image)``; the meter uses it to change the active firmware version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bool,
    as_bytes,
    as_int,
    as_structure,
    bit_string,
    boolean,
    double_long_unsigned,
    enum,
    octet_string,
    structure,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

NOT_INITIATED, INITIATED, VERIFYING, VERIFIED, VERIFY_FAILED = 0, 1, 2, 3, 4
ACTIVATING, ACTIVATED, ACTIVATE_FAILED = 5, 6, 7
MAX_IMAGE_SIZE = 4 * 1024 * 1024

Verifier = Callable[[bytes, bytes], bool]
ActivateHook = Callable[[datetime, bytes, bytes], None]


class ImageTransfer(CosemObject):
    class_id = 18
    writable = frozenset({5})
    methods = frozenset({1, 2, 3, 4})

    def __init__(
        self,
        *,
        block_size: int = 192,
        verifier: Verifier | None = None,
        on_activate: ActivateHook | None = None,
    ) -> None:
        super().__init__("0.0.44.0.0.255")
        self.block_size = block_size
        self.enabled = True
        self.status = NOT_INITIATED
        self.identifier = b""
        self.size = 0
        self.blocks: dict[int, bytes] = {}
        self.verifier = verifier
        self.on_activate = on_activate

    @property
    def block_count(self) -> int:
        return -(-self.size // self.block_size)

    def first_missing(self) -> int:
        for number in range(self.block_count):
            if number not in self.blocks:
                return number
        return self.block_count

    def image(self) -> bytes:
        return b"".join(self.blocks[n] for n in range(self.block_count))[: self.size]

    def _complete(self) -> bool:
        return self.size > 0 and len(self.blocks) == self.block_count

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            return double_long_unsigned(self.block_size)
        if attribute_id == 3:
            return bit_string([n in self.blocks for n in range(self.block_count)])
        if attribute_id == 4:
            return double_long_unsigned(self.first_missing())
        if attribute_id == 5:
            return boolean(self.enabled)
        if attribute_id == 6:
            return enum(self.status)
        info = []
        if self.status in (VERIFIED, ACTIVATING, ACTIVATED, ACTIVATE_FAILED):
            digest = hashlib.sha256(self.image()).digest()
            info.append(
                structure(
                    [
                        double_long_unsigned(self.size),
                        octet_string(self.identifier),
                        octet_string(digest),
                    ]
                )
            )
        return array(info)

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        self.enabled = as_bool(value)
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if not self.enabled:
            return ("temporary-failure", None)
        if method_id == 1:
            if parameters is None:
                return ("type-unmatched", None)
            ident_v, size_v = as_structure(parameters, 2)
            identifier = as_bytes(ident_v)
            size = as_int(size_v, "double-long-unsigned")
            if size == 0 or size > MAX_IMAGE_SIZE or not identifier:
                return ("other-reason", None)
            if (identifier, size) != (self.identifier, self.size) or self.status == ACTIVATED:
                self.blocks = {}  # a new image; the same one resumes
            self.identifier, self.size = identifier, size
            self.status = INITIATED
            return ("success", None)
        if method_id == 2:
            if self.status not in (INITIATED, VERIFY_FAILED):
                return ("other-reason", None)
            if parameters is None:
                return ("type-unmatched", None)
            number_v, value_v = as_structure(parameters, 2)
            number = as_int(number_v, "double-long-unsigned")
            block = as_bytes(value_v)
            if number >= self.block_count:
                return ("other-reason", None)
            last = number == self.block_count - 1
            expected = self.size - number * self.block_size if last else self.block_size
            if len(block) != expected:
                return ("other-reason", None)
            self.blocks[number] = block
            self.status = INITIATED
            return ("success", None)
        if method_id == 3:
            return (self._verify(), None)
        return (self._activate(now), None)

    def _verify(self) -> str:
        if self.status in (VERIFIED, ACTIVATED):
            return "success"
        if self.status == NOT_INITIATED:
            return "other-reason"
        ok = self._complete() and (
            self.verifier is None or self.verifier(self.identifier, self.image())
        )
        self.status = VERIFIED if ok else VERIFY_FAILED
        return "success" if ok else "other-reason"

    def _activate(self, now: datetime) -> str:
        if self.status != VERIFIED and self._verify() != "success":
            return "other-reason"
        if self.status == ACTIVATED:
            return "success"
        self.status = ACTIVATING
        if self.on_activate is not None:
            self.on_activate(now, self.identifier, self.image())
        self.status = ACTIVATED
        return "success"
