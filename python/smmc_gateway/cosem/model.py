"""The client's view of a meter: the object model built from an Association LN
object_list (attribute 2 of 0.0.40.0.0.255) as a typed value.

Each entry: structure {class_id long-unsigned, version unsigned, logical_name
octet-string, access_rights structure {attribute_access array of structure
{attribute_id integer, access_mode enum, access_selectors null-data | array of
integer}, method_access array of structure {method_id integer, access_mode
enum (or boolean in Association LN version 0)}}}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from smmc_gateway.cosem.classes import CLASSES, AttributeAccess, MethodAccess
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    ValueTypeError,
    as_bool,
    as_bytes,
    as_int,
    as_list,
    as_structure,
    type_of,
)


class ObjectListError(ValueError):
    """An object_list that does not have the Association LN shape; names the entry."""


@dataclass(frozen=True)
class AttributeRight:
    attribute_id: int
    access: AttributeAccess
    selectors: tuple[int, ...] = ()


@dataclass(frozen=True)
class MethodRight:
    method_id: int
    access: MethodAccess


@dataclass(frozen=True)
class CosemObjectInfo:
    """One object the meter has, as the association sees it."""

    class_id: int
    version: int
    obis: Obis
    attributes: dict[int, AttributeRight] = field(default_factory=dict)
    methods: dict[int, MethodRight] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        ic = CLASSES.get(self.class_id)
        return ic.name if ic else f"class {self.class_id}"

    def can_read(self, attribute_id: int) -> bool:
        right = self.attributes.get(attribute_id)
        return right is not None and right.access.can_read

    def can_write(self, attribute_id: int) -> bool:
        right = self.attributes.get(attribute_id)
        return right is not None and right.access.can_write

    def can_invoke(self, method_id: int) -> bool:
        right = self.methods.get(method_id)
        return right is not None and right.access != MethodAccess.NO_ACCESS


@dataclass
class ObjectModel:
    """All objects of an association, by OBIS code."""

    objects: dict[Obis, CosemObjectInfo]

    @classmethod
    def from_object_list(cls, value: TypedValue) -> ObjectModel:
        try:
            entries = as_list(value, "array")
        except ValueTypeError as exc:
            raise ObjectListError(f"object_list: {exc}") from exc
        objects: dict[Obis, CosemObjectInfo] = {}
        for index, entry in enumerate(entries):
            try:
                info = _parse_entry(entry)
            except (ValueTypeError, ValueError) as exc:
                raise ObjectListError(f"object_list entry {index}: {exc}") from exc
            objects[info.obis] = info
        return cls(objects)

    def __iter__(self) -> Iterator[CosemObjectInfo]:
        return iter(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    def get(self, obis: Obis | str) -> CosemObjectInfo | None:
        return self.objects.get(Obis.coerce(obis))

    def of_class(self, class_id: int) -> list[CosemObjectInfo]:
        return [o for o in self.objects.values() if o.class_id == class_id]


def _parse_entry(entry: TypedValue) -> CosemObjectInfo:
    class_id_v, version_v, ln_v, rights_v = as_structure(entry, 4)
    class_id = as_int(class_id_v, "long-unsigned")
    version = as_int(version_v, "unsigned")
    obis = Obis.from_bytes(as_bytes(ln_v))
    attr_v, meth_v = as_structure(rights_v, 2)
    attributes: dict[int, AttributeRight] = {}
    for item in as_list(attr_v, "array"):
        aid_v, mode_v, sel_v = as_structure(item, 3)
        selectors: tuple[int, ...] = ()
        if type_of(sel_v) != "null-data":
            selectors = tuple(as_int(s, "integer") for s in as_list(sel_v, "array"))
        aid = as_int(aid_v, "integer")
        attributes[aid] = AttributeRight(aid, AttributeAccess(as_int(mode_v, "enum")), selectors)
    methods: dict[int, MethodRight] = {}
    for item in as_list(meth_v, "array"):
        mid_v, mode_v = as_structure(item, 2)
        mid = as_int(mid_v, "integer")
        if type_of(mode_v) == "boolean":  # Association LN version 0
            access = MethodAccess.ACCESS if as_bool(mode_v) else MethodAccess.NO_ACCESS
        else:
            access = MethodAccess(as_int(mode_v, "enum"))
        methods[mid] = MethodRight(mid, access)
    return CosemObjectInfo(class_id, version, obis, attributes, methods)
