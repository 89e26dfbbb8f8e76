"""Named COSEM objects: typed references to attributes and methods instead of bare numbers.

``DisconnectControl("0.0.96.3.10.255").control_state`` is the attribute reference
``CosemAttribute(class_id=70, obis="0.0.96.3.10.255", attribute_id=3)``;
``DisconnectControl().remote_disconnect`` (the standard logical name is the default)
the method reference ``CosemMethod(70, "0.0.96.3.10.255", 1)``. Both are named tuples
``(class_id, obis, attribute_id)`` and ``(class_id, obis, method_id)``, so they are
what the client session already takes::

    dc = DisconnectControl()
    state = await session.get(*dc.control_state)          # (70, "0.0.96.3.10.255", 3)
    await session.action(*dc.remote_disconnect, {"type": "integer", "value": 0})
    values = await session.get_all([dc.output_state, dc.control_mode])

and what the public API (:mod:`smmc_gateway.api`) takes: ``await
meter.get(Register("1.0.1.8.0.255").value)``. The text form ``CLASS/OBIS/INDEX``
(``"3/1.0.1.8.0.255/2"``; a method may be written ``m1``) parses with
:meth:`CosemAttribute.parse` / :meth:`CosemMethod.parse`; a bad reference raises
:class:`ReferenceError_` naming the part that is wrong.

Attribute and method indexes follow the DLMS UA Blue Book (the names are those of
:data:`smmc_gateway.cosem.classes.CLASSES`; a test checks the two agree).
:data:`ATTRIBUTE_TYPES` and :data:`METHOD_PARAMETERS` record the A-XDR type of the
attributes and method parameters whose type the Blue Book fixes (what lets the API
write a plain Python value without reading the attribute first).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, overload

from smmc_gateway.cosem.classes import CLASSES
from smmc_gateway.cosem.obis import Obis, ObisError

__all__ = [
    "ATTRIBUTE_TYPES",
    "METHOD_PARAMETERS",
    "ActivityCalendar",
    "AssociationLN",
    "Charge",
    "Clock",
    "CosemAttribute",
    "CosemMethod",
    "CosemObject",
    "Data",
    "DemandRegister",
    "DisconnectControl",
    "ExtendedRegister",
    "ImageTransfer",
    "Limiter",
    "MBusClient",
    "ProfileGeneric",
    "PushSetup",
    "ReferenceError_",
    "Register",
    "RegisterMonitor",
    "SapAssignment",
    "ScriptTable",
    "SecuritySetup",
    "SingleActionSchedule",
    "SpecialDaysTable",
]


class ReferenceError_(ValueError):
    """A CLASS/OBIS/INDEX reference that is malformed; the message names the part."""


def _parse(text: str, what: str) -> tuple[int, str, int]:
    example = "3/1.0.1.8.0.255/2" if what == "attribute" else "70/0.0.96.3.10.255/1"
    if not isinstance(text, str):
        raise ReferenceError_(f"{what} reference must be text like {example}, got {text!r}")
    parts = text.strip().split("/")
    if len(parts) != 3:
        raise ReferenceError_(
            f"{what} reference {text!r} has {len(parts)} part(s); expected CLASS/OBIS/"
            f"{what.upper()} like {example}"
        )
    cls_text, obis_text, index_text = parts
    if not cls_text.isascii() or not cls_text.isdigit() or not 0 < int(cls_text) <= 0xFFFF:
        raise ReferenceError_(f"{what} reference {text!r}: class {cls_text!r} is not 1..65535")
    try:
        obis = str(Obis.parse(obis_text))
    except ObisError as exc:
        raise ReferenceError_(f"{what} reference {text!r}: {exc}") from None
    digits = index_text.removeprefix("m") if what == "method" else index_text
    if not digits.isascii() or not digits.isdigit() or not 0 < int(digits) <= 255:
        raise ReferenceError_(f"{what} reference {text!r}: {what} {index_text!r} is not 1..255")
    return int(cls_text), obis, int(digits)


def _check(class_id: int, obis: Obis | str | bytes, index: int, what: str) -> tuple[int, str, int]:
    if isinstance(class_id, bool) or not isinstance(class_id, int) or not 0 < class_id <= 0xFFFF:
        raise ReferenceError_(f"{what} reference: class {class_id!r} is not 1..65535")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 < index <= 255:
        raise ReferenceError_(f"{what} reference: {what} {index!r} is not 1..255")
    try:
        ln = str(Obis.coerce(obis))
    except ObisError as exc:
        raise ReferenceError_(f"{what} reference: {exc}") from None
    return class_id, ln, index


class CosemAttribute(NamedTuple):
    """One attribute of one object: ``(class_id, obis, attribute_id)``, ``obis`` canonical."""

    class_id: int
    obis: str
    attribute_id: int

    @classmethod
    def of(cls, class_id: int, obis: Obis | str | bytes, attribute_id: int) -> CosemAttribute:
        """A checked reference (the OBIS code in any form :meth:`Obis.coerce` takes)."""
        return cls(*_check(class_id, obis, attribute_id, "attribute"))

    @classmethod
    def parse(cls, text: str) -> CosemAttribute:
        """``"CLASS/OBIS/ATTRIBUTE"``, e.g. ``"3/1.0.1.8.0.255/2"``."""
        return cls(*_parse(text, "attribute"))

    @property
    def name(self) -> str:
        """The Blue Book name (``"value"``), or ``"attribute N"`` when not known."""
        ic = CLASSES.get(self.class_id)
        found = ic.attribute_name(self.attribute_id) if ic is not None else None
        return found or f"attribute {self.attribute_id}"

    @property
    def value_type(self) -> str | None:
        """The A-XDR type the Blue Book fixes for this attribute, if it does."""
        return ATTRIBUTE_TYPES.get((self.class_id, self.attribute_id))

    def __str__(self) -> str:
        return f"{self.class_id}/{self.obis}/{self.attribute_id}"


class CosemMethod(NamedTuple):
    """One method of one object: ``(class_id, obis, method_id)``; ``obis`` is canonical text."""

    class_id: int
    obis: str
    method_id: int

    @classmethod
    def of(cls, class_id: int, obis: Obis | str | bytes, method_id: int) -> CosemMethod:
        return cls(*_check(class_id, obis, method_id, "method"))

    @classmethod
    def parse(cls, text: str) -> CosemMethod:
        """``"CLASS/OBIS/METHOD"``, e.g. ``"70/0.0.96.3.10.255/1"`` (or ``.../m1``)."""
        return cls(*_parse(text, "method"))

    @property
    def name(self) -> str:
        ic = CLASSES.get(self.class_id)
        found = ic.method_name(self.method_id) if ic is not None else None
        return found or f"method {self.method_id}"

    @property
    def parameter(self) -> tuple[str, Any] | None:
        """``(type, default)`` of the parameter the Blue Book fixes, if it does."""
        return METHOD_PARAMETERS.get((self.class_id, self.method_id))

    def __str__(self) -> str:
        return f"{self.class_id}/{self.obis}/m{self.method_id}"


class _Attribute:
    """Descriptor: on an instance, the :class:`CosemAttribute` of that object."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Attribute: ...
    @overload
    def __get__(self, obj: CosemObject, owner: type) -> CosemAttribute: ...
    def __get__(self, obj: CosemObject | None, owner: type) -> _Attribute | CosemAttribute:
        if obj is None:
            return self
        return CosemAttribute(obj.class_id, obj.obis, self.index)


class _Method:
    """Descriptor: on an instance, the :class:`CosemMethod` of that object."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Method: ...
    @overload
    def __get__(self, obj: CosemObject, owner: type) -> CosemMethod: ...
    def __get__(self, obj: CosemObject | None, owner: type) -> _Method | CosemMethod:
        if obj is None:
            return self
        return CosemMethod(obj.class_id, obj.obis, self.index)


def attribute(index: int) -> Any:
    """Declare attribute ``index`` of a :class:`CosemObject` subclass."""
    return _Attribute(index)


def method(index: int) -> Any:
    """Declare method ``index`` of a :class:`CosemObject` subclass."""
    return _Method(index)


class CosemObject:
    """One COSEM object (an interface class at a logical name).

    Subclasses set ``class_id`` and, where the standard fixes one, ``default_obis``;
    their attributes and methods are declared with :func:`attribute` / :func:`method`.
    """

    class_id: ClassVar[int] = 0
    default_obis: ClassVar[str | None] = None
    __slots__ = ("obis",)

    logical_name: CosemAttribute = attribute(1)

    def __init__(self, obis: Obis | str | bytes | None = None) -> None:
        if obis is None:
            if self.default_obis is None:
                raise ReferenceError_(
                    f"{type(self).__name__} has no standard logical name: give its OBIS code"
                )
            obis = self.default_obis
        try:
            self.obis: str = str(Obis.coerce(obis))
        except ObisError as exc:
            raise ReferenceError_(f"{type(self).__name__}: {exc}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.obis!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosemObject):
            return NotImplemented
        return (self.class_id, self.obis) == (other.class_id, other.obis)

    def __hash__(self) -> int:
        return hash((self.class_id, self.obis))

    @classmethod
    def attribute_names(cls) -> dict[str, int]:
        """Declared attribute names to indexes (the class and its bases)."""
        return {
            name: d.index
            for klass in reversed(cls.__mro__)
            for name, d in vars(klass).items()
            if isinstance(d, _Attribute)
        }

    @classmethod
    def method_names(cls) -> dict[str, int]:
        """Declared method names to indexes."""
        return {
            name: d.index
            for klass in reversed(cls.__mro__)
            for name, d in vars(klass).items()
            if isinstance(d, _Method)
        }


class Data(CosemObject):
    """Data (class 1)."""

    class_id = 1
    value: CosemAttribute = attribute(2)


class Register(CosemObject):
    """Register (class 3): ``value`` scaled by ``scaler_unit``."""

    class_id = 3
    value: CosemAttribute = attribute(2)
    scaler_unit: CosemAttribute = attribute(3)
    reset: CosemMethod = method(1)


class ExtendedRegister(Register):
    """Extended register (class 4)."""

    class_id = 4
    status: CosemAttribute = attribute(4)
    capture_time: CosemAttribute = attribute(5)


class DemandRegister(CosemObject):
    """Demand register (class 5)."""

    class_id = 5
    current_average_value: CosemAttribute = attribute(2)
    last_average_value: CosemAttribute = attribute(3)
    scaler_unit: CosemAttribute = attribute(4)
    status: CosemAttribute = attribute(5)
    capture_time: CosemAttribute = attribute(6)
    start_time_current: CosemAttribute = attribute(7)
    period: CosemAttribute = attribute(8)
    number_of_periods: CosemAttribute = attribute(9)
    reset: CosemMethod = method(1)
    next_period: CosemMethod = method(2)


class ProfileGeneric(CosemObject):
    """Profile generic (class 7), e.g. the load profile ``1.0.99.1.0.255``."""

    class_id = 7
    buffer: CosemAttribute = attribute(2)
    capture_objects: CosemAttribute = attribute(3)
    capture_period: CosemAttribute = attribute(4)
    sort_method: CosemAttribute = attribute(5)
    sort_object: CosemAttribute = attribute(6)
    entries_in_use: CosemAttribute = attribute(7)
    profile_entries: CosemAttribute = attribute(8)
    reset: CosemMethod = method(1)
    capture: CosemMethod = method(2)


class Clock(CosemObject):
    """Clock (class 8); standard logical name ``0.0.1.0.0.255``."""

    class_id = 8
    default_obis = "0.0.1.0.0.255"
    time: CosemAttribute = attribute(2)
    time_zone: CosemAttribute = attribute(3)
    status: CosemAttribute = attribute(4)
    daylight_savings_begin: CosemAttribute = attribute(5)
    daylight_savings_end: CosemAttribute = attribute(6)
    daylight_savings_deviation: CosemAttribute = attribute(7)
    daylight_savings_enabled: CosemAttribute = attribute(8)
    clock_base: CosemAttribute = attribute(9)
    adjust_to_quarter: CosemMethod = method(1)
    adjust_to_measuring_period: CosemMethod = method(2)
    adjust_to_minute: CosemMethod = method(3)
    adjust_to_preset_time: CosemMethod = method(4)
    preset_adjusting_time: CosemMethod = method(5)
    shift_time: CosemMethod = method(6)


class ScriptTable(CosemObject):
    """Script table (class 9); ``execute`` takes the script id (long-unsigned)."""

    class_id = 9
    scripts: CosemAttribute = attribute(2)
    execute: CosemMethod = method(1)


class SpecialDaysTable(CosemObject):
    """Special days table (class 11); standard logical name ``0.0.11.0.0.255``."""

    class_id = 11
    default_obis = "0.0.11.0.0.255"
    entries: CosemAttribute = attribute(2)
    insert: CosemMethod = method(1)
    delete: CosemMethod = method(2)


class AssociationLN(CosemObject):
    """Association LN (class 15); ``0.0.40.0.0.255`` is the current association."""

    class_id = 15
    default_obis = "0.0.40.0.0.255"
    object_list: CosemAttribute = attribute(2)
    associated_partners_id: CosemAttribute = attribute(3)
    application_context_name: CosemAttribute = attribute(4)
    xdlms_context_info: CosemAttribute = attribute(5)
    authentication_mechanism_name: CosemAttribute = attribute(6)
    secret: CosemAttribute = attribute(7)
    association_status: CosemAttribute = attribute(8)
    security_setup_reference: CosemAttribute = attribute(9)
    reply_to_hls_authentication: CosemMethod = method(1)
    change_hls_secret: CosemMethod = method(2)


class ImageTransfer(CosemObject):
    """Image transfer (class 18); standard logical name ``0.0.44.0.0.255``."""

    class_id = 18
    default_obis = "0.0.44.0.0.255"
    image_block_size: CosemAttribute = attribute(2)
    image_transferred_blocks_status: CosemAttribute = attribute(3)
    image_first_not_transferred_block_number: CosemAttribute = attribute(4)
    image_transfer_enabled: CosemAttribute = attribute(5)
    image_transfer_status: CosemAttribute = attribute(6)
    image_to_activate_info: CosemAttribute = attribute(7)
    image_transfer_initiate: CosemMethod = method(1)
    image_block_transfer: CosemMethod = method(2)
    image_verify: CosemMethod = method(3)
    image_activate: CosemMethod = method(4)


class ActivityCalendar(CosemObject):
    """Activity calendar (class 20); standard logical name ``0.0.13.0.0.255``."""

    class_id = 20
    default_obis = "0.0.13.0.0.255"
    calendar_name_active: CosemAttribute = attribute(2)
    season_profile_active: CosemAttribute = attribute(3)
    week_profile_table_active: CosemAttribute = attribute(4)
    day_profile_table_active: CosemAttribute = attribute(5)
    calendar_name_passive: CosemAttribute = attribute(6)
    season_profile_passive: CosemAttribute = attribute(7)
    week_profile_table_passive: CosemAttribute = attribute(8)
    day_profile_table_passive: CosemAttribute = attribute(9)
    activate_passive_calendar_time: CosemAttribute = attribute(10)
    activate_passive_calendar: CosemMethod = method(1)


class RegisterMonitor(CosemObject):
    """Register monitor (class 21)."""

    class_id = 21
    thresholds: CosemAttribute = attribute(2)
    monitored_value: CosemAttribute = attribute(3)
    actions: CosemAttribute = attribute(4)


class SingleActionSchedule(CosemObject):
    """Single action schedule (class 22), e.g. the image activation ``0.0.15.0.2.255``."""

    class_id = 22
    executed_script: CosemAttribute = attribute(2)
    type: CosemAttribute = attribute(3)
    execution_time: CosemAttribute = attribute(4)


class PushSetup(CosemObject):
    """Push setup (class 40)."""

    class_id = 40
    push_object_list: CosemAttribute = attribute(2)
    send_destination_and_method: CosemAttribute = attribute(3)
    communication_window: CosemAttribute = attribute(4)
    randomisation_start_interval: CosemAttribute = attribute(5)
    number_of_retries: CosemAttribute = attribute(6)
    repetition_delay: CosemAttribute = attribute(7)
    push: CosemMethod = method(1)


class SapAssignment(CosemObject):
    """SAP assignment (class 17); standard logical name ``0.0.41.0.0.255``: the
    logical devices of the physical device, (SAP, logical device name) pairs."""

    class_id = 17
    default_obis = "0.0.41.0.0.255"
    sap_assignment_list: CosemAttribute = attribute(2)
    connect_logical_device: CosemMethod = method(1)


class SecuritySetup(CosemObject):
    """Security setup (class 64)."""

    class_id = 64
    security_policy: CosemAttribute = attribute(2)
    security_suite: CosemAttribute = attribute(3)
    client_system_title: CosemAttribute = attribute(4)
    server_system_title: CosemAttribute = attribute(5)
    certificates: CosemAttribute = attribute(6)
    security_activate: CosemMethod = method(1)
    key_transfer: CosemMethod = method(2)


class DisconnectControl(CosemObject):
    """Disconnect control (class 70); standard logical name ``0.0.96.3.10.255``."""

    class_id = 70
    default_obis = "0.0.96.3.10.255"
    output_state: CosemAttribute = attribute(2)
    control_state: CosemAttribute = attribute(3)
    control_mode: CosemAttribute = attribute(4)
    remote_disconnect: CosemMethod = method(1)
    remote_reconnect: CosemMethod = method(2)


class Limiter(CosemObject):
    """Limiter (class 71); standard logical name ``0.0.17.0.0.255``."""

    class_id = 71
    default_obis = "0.0.17.0.0.255"
    monitored_value: CosemAttribute = attribute(2)
    threshold_active: CosemAttribute = attribute(3)
    threshold_normal: CosemAttribute = attribute(4)
    threshold_emergency: CosemAttribute = attribute(5)
    min_over_threshold_duration: CosemAttribute = attribute(6)
    min_under_threshold_duration: CosemAttribute = attribute(7)
    emergency_profile: CosemAttribute = attribute(8)
    emergency_profile_group_id_list: CosemAttribute = attribute(9)
    emergency_profile_active: CosemAttribute = attribute(10)
    actions: CosemAttribute = attribute(11)


class MBusClient(CosemObject):
    """M-Bus client (class 72, version 1), e.g. channel 1 at ``0.1.24.1.0.255``."""

    class_id = 72
    mbus_port_reference: CosemAttribute = attribute(2)
    capture_definition: CosemAttribute = attribute(3)
    capture_period: CosemAttribute = attribute(4)
    primary_address: CosemAttribute = attribute(5)
    identification_number: CosemAttribute = attribute(6)
    manufacturer_id: CosemAttribute = attribute(7)
    version: CosemAttribute = attribute(8)
    device_type: CosemAttribute = attribute(9)
    access_number: CosemAttribute = attribute(10)
    status: CosemAttribute = attribute(11)
    alarm: CosemAttribute = attribute(12)
    configuration: CosemAttribute = attribute(13)
    encryption_key_status: CosemAttribute = attribute(14)
    slave_install: CosemMethod = method(1)
    slave_deinstall: CosemMethod = method(2)
    capture: CosemMethod = method(3)
    reset_alarm: CosemMethod = method(4)
    synchronize_clock: CosemMethod = method(5)
    data_send: CosemMethod = method(6)
    set_encryption_key: CosemMethod = method(7)
    transfer_key: CosemMethod = method(8)


class Charge(CosemObject):
    """Charge (class 113)."""

    class_id = 113
    total_amount_paid: CosemAttribute = attribute(2)
    charge_type: CosemAttribute = attribute(3)
    priority: CosemAttribute = attribute(4)
    unit_charge_active: CosemAttribute = attribute(5)
    unit_charge_passive: CosemAttribute = attribute(6)
    unit_charge_activation_time: CosemAttribute = attribute(7)
    period: CosemAttribute = attribute(8)
    charge_configuration: CosemAttribute = attribute(9)
    last_collection_time: CosemAttribute = attribute(10)
    last_collection_amount: CosemAttribute = attribute(11)
    total_amount_remaining: CosemAttribute = attribute(12)
    proportion: CosemAttribute = attribute(13)
    update_unit_charge: CosemMethod = method(1)
    activate_passive_unit_charge: CosemMethod = method(2)
    collect: CosemMethod = method(3)


DATE_TIME = "date-time"
"""A COSEM date-time carried as octet-string(12) (Blue Book 4.1.6.1)."""

ATTRIBUTE_TYPES: dict[tuple[int, int], str] = {
    (7, 4): "double-long-unsigned",  # capture_period
    (7, 7): "double-long-unsigned",  # entries_in_use
    (7, 8): "double-long-unsigned",  # profile_entries
    (8, 2): DATE_TIME,
    (8, 3): "long",  # time_zone
    (8, 4): "unsigned",  # status
    (8, 5): DATE_TIME,
    (8, 6): DATE_TIME,
    (8, 7): "integer",  # daylight_savings_deviation
    (8, 8): "boolean",
    (8, 9): "enum",
    (18, 2): "double-long-unsigned",
    (18, 4): "double-long-unsigned",
    (18, 5): "boolean",
    (18, 6): "enum",
    (20, 10): DATE_TIME,
    (70, 2): "boolean",
    (70, 3): "enum",
    (70, 4): "enum",
    (71, 6): "double-long-unsigned",
    (71, 7): "double-long-unsigned",
    (71, 10): "boolean",
    (72, 6): "double-long-unsigned",
    (72, 7): "long-unsigned",
    (113, 7): DATE_TIME,
}
"""A-XDR types the Blue Book fixes, by (class id, attribute index)."""

_ZERO = ("integer", 0)
METHOD_PARAMETERS: dict[tuple[int, int], tuple[str, Any]] = {
    (3, 1): _ZERO,
    (4, 1): _ZERO,
    (5, 1): _ZERO,
    (5, 2): _ZERO,
    (7, 1): _ZERO,
    (7, 2): _ZERO,
    (8, 1): _ZERO,
    (8, 2): _ZERO,
    (8, 3): _ZERO,
    (8, 6): ("long", None),
    (9, 1): ("long-unsigned", None),
    (18, 3): _ZERO,
    (18, 4): _ZERO,
    (20, 1): _ZERO,
    (40, 1): _ZERO,
    (70, 1): _ZERO,
    (70, 2): _ZERO,
    (72, 3): _ZERO,
    (72, 4): _ZERO,
    (113, 2): _ZERO,
}
"""Method parameters the Blue Book fixes, by (class id, method index): (type, default).
A default of None means the caller must give the value (``shift_time`` seconds, the
script id); ``integer 0`` is the Blue Book's ``data ::= integer(0)``."""
