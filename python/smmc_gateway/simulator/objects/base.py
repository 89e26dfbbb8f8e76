"""The common shape of a simulated COSEM object: GET/SET/ACTION on one object.

An object answers with a typed value or a Data-Access-Result name; ``now`` is
always the real UTC instant handed in by the caller. Access rights are checked
by the meter before an object is reached; an object only says which of its
attributes are writable (for the management association), which are hidden
(write-only secrets), which methods it implements, and which selectors an
attribute accepts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from smmc_gateway.cosem.classes import CLASSES, AttributeAccess, InterfaceClass
from smmc_gateway.cosem.datetime import DateTimeError
from smmc_gateway.cosem.obis import Obis, ObisError
from smmc_gateway.cosem.values import TypedValue, ValueTypeError, octet_string

GetResult = TypedValue | str
ActionResult = tuple[str, TypedValue | None]

# Errors a SET or ACTION parameter may raise while being read; they become
# "type-unmatched".
PARAMETER_ERRORS = (ValueTypeError, ObisError, DateTimeError)


class CosemObject:
    """Base class; subclasses set ``class_id`` and override read/write/invoke."""

    class_id: ClassVar[int]
    writable: frozenset[int] = frozenset()
    write_only: frozenset[int] = frozenset()
    methods: ClassVar[frozenset[int]] = frozenset()
    selectors: ClassVar[dict[int, tuple[int, ...]]] = {}

    def __init__(self, obis: Obis | str) -> None:
        self.obis = Obis.coerce(obis)

    @property
    def interface(self) -> InterfaceClass:
        return CLASSES[self.class_id]

    @property
    def version(self) -> int:
        return self.interface.version

    def attribute_access(self, attribute_id: int) -> AttributeAccess:
        """The access mode of the management (full) association."""
        if attribute_id in self.write_only:
            return AttributeAccess.WRITE_ONLY
        if attribute_id in self.writable:
            return AttributeAccess.READ_AND_WRITE
        return AttributeAccess.READ_ONLY

    # ---------------------------------------------------------------- services
    def get(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if not 1 <= attribute_id <= len(self.interface.attributes):
            return "object-undefined"
        if selector is not None and selector not in self.selectors.get(attribute_id, ()):
            return "object-unavailable"
        if attribute_id == 1:
            return octet_string(self.obis.to_bytes())
        try:
            return self.read(attribute_id, now, selector, parameters)
        except PARAMETER_ERRORS:
            return "object-unavailable"

    def set(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if not 1 <= attribute_id <= len(self.interface.attributes):
            return "object-undefined"
        if attribute_id not in self.writable and attribute_id not in self.write_only:
            return "read-write-denied"
        try:
            return self.write(attribute_id, value, now)
        except PARAMETER_ERRORS:
            return "type-unmatched"

    def action(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if method_id not in self.methods:
            return ("object-undefined", None)
        try:
            return self.invoke(method_id, parameters, now)
        except PARAMETER_ERRORS:
            return ("type-unmatched", None)

    # ---------------------------------------------------------------- overrides
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return "object-unavailable"

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        return "read-write-denied"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        return ("object-undefined", None)
