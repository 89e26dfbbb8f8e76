"""What a device model says beyond its OBIS map: alarm registers and their bit maps, push
setups and the layout of their data-notifications, event-log code tables, the scaler and
unit of values the gateway writes, and how to recognise the model's meters.

Frozen, typed and already checked (built by :mod:`smmc_gateway.models.parse` from a
``[models.NAME]`` table, shipped or configured). No imports from the rest of the package:
:mod:`smmc_gateway.ops.config_model` imports these for :class:`ModelConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _empty() -> Mapping[int, EventCode]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AlarmBit:
    """One bit of an alarm register: the event it is published as."""

    bit: int
    name: str
    """An event name with an IEC 61968-9 code (:mod:`smmc_gateway.cim.event_types`)."""
    reason: str


@dataclass(frozen=True, slots=True)
class AlarmRegister:
    """An alarm register (class 1, a double-long-unsigned of 32 bits) with its filter and
    descriptor, and the names of its bits. A bit without a name is published as
    ``smmc.alarm.bit<n>`` (reason ``<key>Bit<n>``), never dropped."""

    key: str
    """``register_1``, ``register_2``... (the table name in the model)."""
    obis: str
    filter_obis: str | None = None
    descriptor_obis: str | None = None
    bits: Mapping[int, AlarmBit] = field(default_factory=lambda: MappingProxyType({}))

    def named(self, bit: int) -> AlarmBit:
        found = self.bits.get(bit)
        if found is not None:
            return found
        suffix = "" if self.key == "register_1" else self.key.replace("register_", "Register")
        return AlarmBit(bit, f"smmc.alarm.bit{bit}", f"alarm{suffix}Bit{bit}")


@dataclass(frozen=True, slots=True)
class PushObject:
    """One element of a push setup's push_object_list: what the data-notification carries
    at ``position`` (0-based, in the structure)."""

    position: int
    class_id: int
    obis: str
    attribute: int


@dataclass(frozen=True, slots=True)
class PushLayout:
    """A push setup (class 40) and the structure of its data-notifications."""

    key: str
    """``alarm``, ``consumer_information``, ``interval``... (the table name)."""
    obis: str
    """The push setup's logical name: the push id, element 0 of its notifications when the
    layout starts with it (class 40 attribute 1)."""
    objects: tuple[PushObject, ...]

    @property
    def push_id_hex(self) -> str:
        return bytes(int(p) for p in self.obis.split(".")).hex()

    def carries_push_id(self) -> bool:
        """Whether element 0 is the push setup's own logical name (how IDIS pushes say
        which setup sent them)."""
        first = self.objects[0] if self.objects else None
        return (
            first is not None
            and first.position == 0
            and first.class_id == 40
            and first.obis == self.obis
            and first.attribute == 1
        )

    def position_of(self, obis: str, attribute: int = 2) -> int | None:
        for obj in self.objects:
            if obj.obis == obis and obj.attribute == attribute:
                return obj.position
        return None


@dataclass(frozen=True, slots=True)
class EventNotificationSpec:
    """An event-notification (push) whose attribute alone says what happened (e.g. a
    meter's last gasp): its attribute descriptor and the event it is published as; the
    value it carries goes into the event's details."""

    key: str
    class_id: int
    obis: str
    attribute: int
    name: str
    reason: str

    def matches(self, attribute: tuple[int, str, int]) -> bool:
        return attribute == (self.class_id, self.obis, self.attribute)


@dataclass(frozen=True, slots=True)
class EventCode:
    """One code of an event log: its event name and, optionally, what the details add."""

    code: int
    name: str
    details: str = ""


@dataclass(frozen=True, slots=True)
class EventLog:
    """An event log (profile generic of (clock, code) rows) and the model's codes."""

    key: str
    """The OBIS map name: ``event_log_standard``, ``event_log_fraud``..."""
    log: str
    """The short name in event names: ``standard``, ``fraud``, ``disconnector``,
    ``powerQuality``, ``mbus``..."""
    codes: Mapping[int, EventCode] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class ScaledValue:
    """A value the gateway writes (or publishes) in the unit and scaler the meter expects:
    ``scaler`` and ``unit`` declared by the model, or (``None``) read from the object named
    by ``scaler_from`` (``monitored``: the limiter's monitored value, attribute 3)."""

    name: str
    unit: str | None = None
    scaler: int | None = None
    scaler_from: str | None = None


@dataclass(frozen=True, slots=True)
class Identification:
    """How discovery recognises the model's meters."""

    flag_ids: tuple[str, ...] = ()
    """Manufacturer FLAG ids (the first three letters of the logical device name)."""
    ldn_prefixes: tuple[str, ...] = ()
    """Longer logical-device-name prefixes (a meter type), when the source states them."""
    device_types: tuple[str, ...] = ()
    """Meter type strings a meter reports (e.g. in 0.0.96.1.7.255 or a push)."""
