"""Charge (class 113, version 0): the prices the meter shows the customer (use case 8, the
customer side; interface I1).

Attributes (Blue Book): 2 total_amount_paid (double-long), 3 charge_type (enum),
4 priority (unsigned), 5 unit_charge_active, 6 unit_charge_passive,
7 unit_charge_activation_time (date-time), 8 period (double-long-unsigned),
9 charge_configuration (bit-string), 10 last_collection_time (date-time),
11 last_collection_amount (double-long), 12 total_amount_remaining (double-long),
13 proportion (long-unsigned). Methods: 1 update_unit_charge(unit_charge) (writes the
passive one), 2 activate_passive_unit_charge(integer). ``unit_charge`` is::

    structure { charge_per_unit_scaling: structure {commodity_scale integer,
                                                     price_scale integer},
                commodity: structure {class_id long-unsigned, logical_name octet-string,
                                      attribute_index integer},
                charge_table: array of structure {index octet-string,
                                                  charge_per_unit long} }

The simulator only keeps and activates prices (no collection, no credit): the passive
unit charge becomes active by method 2 or when the meter clock reaches the activation
time (local time with the clock's deviation, as the activity calendar's).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.datetime import UNSPECIFIED, to_utc
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    as_datetime_bytes,
    as_int,
    as_list,
    as_structure,
    bit_string,
    double_long,
    double_long_unsigned,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

CHARGE = Obis(0, 0, 19, 20, 0, 255)
NOT_SPECIFIED = UNSPECIFIED
IMPORT_ENERGY = Obis(1, 0, 1, 8, 0, 255)


def unit_charge(
    commodity_scale: int,
    price_scale: int,
    table: list[tuple[bytes, int]],
    commodity: tuple[int, Obis, int] = (3, IMPORT_ENERGY, 2),
) -> TypedValue:
    class_id, obis, attribute = commodity
    return structure(
        [
            structure([integer(commodity_scale), integer(price_scale)]),
            structure([long_unsigned(class_id), octet_string(obis.to_bytes()), integer(attribute)]),
            array([structure([octet_string(i), {"type": "long", "value": p}]) for i, p in table]),
        ]
    )


def check_unit_charge(value: TypedValue) -> None:
    """Raise ValueTypeError unless ``value`` has the unit_charge shape and types."""
    scaling, commodity, table = as_structure(value, 3)
    for item in as_structure(scaling, 2):
        as_int(item, "integer")
    class_id, ln, attribute = as_structure(commodity, 3)
    as_int(class_id, "long-unsigned")
    Obis.from_bytes(as_bytes(ln))
    as_int(attribute, "integer")
    for row in as_list(table, "array"):
        index, price = as_structure(row, 2)
        as_bytes(index)
        as_int(price, "long")


class Charge(CosemObject):
    class_id = 113
    writable = frozenset({3, 4, 6, 7, 8, 13})
    methods = frozenset({1, 2})

    def __init__(self, time_zone: Callable[[], int], obis: Obis = CHARGE) -> None:
        super().__init__(obis)
        self.time_zone = time_zone
        self.charge_type = 0  # consumption_based_collection
        self.priority = 1
        self.active = unit_charge(-3, -2, [(b"1", 15000), (b"2", 11000)])
        self.passive = unit_charge(-3, -2, [])
        self.activation_time = NOT_SPECIFIED
        self.period = 0
        self.proportion = 0

    def activation_instant(self) -> datetime | None:
        """When the passive unit charge becomes active (meter time, UTC), or None."""
        return to_utc(self.activation_time, default_deviation=self.time_zone())

    def activate_passive(self) -> None:
        self.active = self.passive
        self.activation_time = NOT_SPECIFIED

    def price(self, index: bytes) -> tuple[int, int] | None:
        """(charge_per_unit, price_scale) of the active table row ``index``, or None."""
        scaling, _, table = as_structure(self.active, 3)
        price_scale = as_int(as_structure(scaling, 2)[1], "integer")
        for row in as_list(table, "array"):
            key, value = as_structure(row, 2)
            if as_bytes(key) == index:
                return as_int(value, "long"), price_scale
        return None

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        values: dict[int, Callable[[], TypedValue]] = {
            2: lambda: double_long(0),
            3: lambda: enum(self.charge_type),
            4: lambda: unsigned(self.priority),
            5: lambda: self.active,
            6: lambda: self.passive,
            7: lambda: octet_string(self.activation_time),
            8: lambda: double_long_unsigned(self.period),
            9: lambda: bit_string([False, False]),
            10: lambda: octet_string(NOT_SPECIFIED),
            11: lambda: double_long(0),
            12: lambda: double_long(0),
            13: lambda: long_unsigned(self.proportion),
        }
        return values[attribute_id]()

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 3:
            self.charge_type = as_int(value, "enum")
        elif attribute_id == 4:
            self.priority = as_int(value, "unsigned")
        elif attribute_id == 6:
            check_unit_charge(value)
            self.passive = value
        elif attribute_id == 7:
            self.activation_time = as_datetime_bytes(value)
        elif attribute_id == 8:
            self.period = as_int(value, "double-long-unsigned")
        else:
            self.proportion = as_int(value, "long-unsigned")
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if method_id == 1:
            if parameters is None:
                return ("type-unmatched", None)
            check_unit_charge(parameters)
            self.passive = parameters
            return ("success", None)
        if parameters is not None:
            as_int(parameters, "integer")
        self.activate_passive()
        return ("success", None)
