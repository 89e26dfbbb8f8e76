"""Named COSEM objects (cosem/objects.py): every accessor is the Blue Book's attribute or
method index (checked against the class tables of cosem/classes.py), the references are
the (class, obis, index) tuples the session takes, and bad references are refused with a
message that names the part."""

from __future__ import annotations

import pytest
from smmc_gateway.cosem import objects as o
from smmc_gateway.cosem.classes import CLASSES
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.objects import (
    ATTRIBUTE_TYPES,
    METHOD_PARAMETERS,
    Clock,
    CosemAttribute,
    CosemMethod,
    CosemObject,
    DisconnectControl,
    ProfileGeneric,
    ReferenceError_,
    Register,
)

ALL = [
    cls
    for cls in vars(o).values()
    if isinstance(cls, type) and issubclass(cls, CosemObject) and cls is not CosemObject
]
REQUIRED = {1, 3, 4, 7, 8, 9, 15, 18, 20, 21, 40, 64, 70, 71, 72}
"""The classes the product uses (issue 9 item 5)."""


def norm(name: str) -> str:
    return name.lower()


def test_every_class_the_product_uses_has_named_accessors() -> None:
    assert {cls.class_id for cls in ALL} >= REQUIRED
    assert len({cls.class_id for cls in ALL}) == len(ALL), "one accessor class per interface"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_accessor_indexes_are_the_blue_books(cls: type[CosemObject]) -> None:
    ic = CLASSES[cls.class_id]
    attributes = cls.attribute_names()
    methods = cls.method_names()
    assert attributes["logical_name"] == 1
    assert len(attributes) == len(ic.attributes) or cls.class_id == 15  # 15: first 9 named
    for name, index in attributes.items():
        assert norm(ic.attributes[index - 1]) == norm(name), (cls.__name__, name, index)
    for name, index in methods.items():
        assert norm(ic.methods[index - 1]) == norm(name), (cls.__name__, name, index)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_references_name_themselves(cls: type[CosemObject]) -> None:
    obj = cls(cls.default_obis or "1.2.3.4.5.6")
    for name, index in cls.attribute_names().items():
        ref = getattr(obj, name)
        assert ref == (cls.class_id, obj.obis, index)
        assert isinstance(ref, CosemAttribute) and norm(ref.name) == norm(name)
        assert CosemAttribute.parse(str(ref)) == ref
    for name, index in cls.method_names().items():
        ref = getattr(obj, name)
        assert isinstance(ref, CosemMethod) and ref.method_id == index
        assert norm(ref.name) == norm(name)
        assert CosemMethod.parse(str(ref)) == ref


def test_references_are_what_the_session_takes() -> None:
    dc = DisconnectControl()
    assert dc.obis == "0.0.96.3.10.255"
    assert dc.control_state == (70, "0.0.96.3.10.255", 3)
    assert dc.remote_disconnect == (70, "0.0.96.3.10.255", 1)
    assert dc.remote_reconnect.method_id == 2
    assert str(dc.remote_disconnect) == "70/0.0.96.3.10.255/m1"
    assert str(dc.output_state) == "70/0.0.96.3.10.255/2"
    class_id, obis, attribute = ProfileGeneric("1-0:99.1.0*255").buffer
    assert (class_id, obis, attribute) == (7, "1.0.99.1.0.255", 2)
    assert Register(Obis(1, 0, 1, 8, 0, 255)).scaler_unit == Register("1.0.1.8.0.255").scaler_unit
    assert Register(bytes([1, 0, 1, 8, 0, 255])).value.obis == "1.0.1.8.0.255"
    assert Clock() == Clock("0.0.1.0.0.255") and hash(Clock()) == hash(Clock("0.0.1.0.0.255"))
    assert Clock() != Register("0.0.1.0.0.255")
    assert repr(Clock()) == "Clock('0.0.1.0.0.255')"


def test_parse_accepts_the_text_forms() -> None:
    assert CosemAttribute.parse("3/1.0.1.8.0.255/2") == Register("1.0.1.8.0.255").value
    assert CosemAttribute.parse(" 3/1-0:1.8.0*255/2 ") == Register("1.0.1.8.0.255").value
    assert CosemMethod.parse("70/0.0.96.3.10.255/1") == DisconnectControl().remote_disconnect
    assert CosemMethod.parse("70/0.0.96.3.10.255/m1") == DisconnectControl().remote_disconnect
    assert CosemAttribute.of(8, "0.0.1.0.0.255", 2) == Clock().time
    assert CosemAttribute(3, "1.0.1.8.0.255", 99).name == "attribute 99"
    assert CosemMethod(999, "1.0.1.8.0.255", 1).name == "method 1"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("3/1.0.1.8.0.255", "2 part(s)"),
        ("x/1.0.1.8.0.255/2", "class 'x'"),
        ("0/1.0.1.8.0.255/2", "class '0'"),
        ("3/1.0.1.8.0/2", "5 groups"),
        ("3/1.0.1.8.0.256/2", "group F"),
        ("3/1.0.1.8.0.255/0", "attribute '0'"),
        ("3/1.0.1.8.0.255/m2", "attribute 'm2'"),
        ("3/1.0.1.8.0.255/256", "attribute '256'"),
    ],
)
def test_bad_references_name_the_part(text: str, part: str) -> None:
    with pytest.raises(ReferenceError_, match=part.replace("(", r"\(").replace(")", r"\)")):
        CosemAttribute.parse(text)


def test_bad_checked_references_and_objects() -> None:
    with pytest.raises(ReferenceError_, match="method 0"):
        CosemMethod.of(70, "0.0.96.3.10.255", 0)
    with pytest.raises(ReferenceError_, match="class True"):
        CosemAttribute.of(True, "0.0.96.3.10.255", 2)
    with pytest.raises(ReferenceError_, match="method 'x'"):
        CosemMethod.parse("70/0.0.96.3.10.255/x")
    with pytest.raises(ReferenceError_, match="Register has no standard logical name"):
        Register()
    with pytest.raises(ReferenceError_, match="ProfileGeneric: OBIS"):
        ProfileGeneric("1.0.99.1.0")
    assert isinstance(ReferenceError_("x"), ValueError)


def test_the_type_tables_point_at_real_members() -> None:
    for class_id, index in ATTRIBUTE_TYPES:
        assert CLASSES[class_id].attribute_name(index) is not None, (class_id, index)
    for class_id, index in METHOD_PARAMETERS:
        assert CLASSES[class_id].method_name(index) is not None, (class_id, index)
    assert Clock().time.value_type == "date-time"
    assert DisconnectControl().control_mode.value_type == "enum"
    assert Register("1.0.1.8.0.255").value.value_type is None  # the meter's choice
    assert DisconnectControl().remote_disconnect.parameter == ("integer", 0)
    assert o.ScriptTable("0.0.10.0.100.255").execute.parameter == ("long-unsigned", None)
