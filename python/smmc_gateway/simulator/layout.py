"""Which COSEM objects a simulated meter has, and who may see them.

:func:`build_objects` creates the object instances wired to the meter;
:func:`object_list` produces an association's object_list from the same
objects and rights, so the list always describes exactly what the meter has.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from smmc_gateway.cosem.classes import CLASSES, AttributeAccess, MethodAccess
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    boolean,
    double_long_unsigned,
    enum,
    integer,
    long_unsigned,
    null,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator import events
from smmc_gateway.simulator.customer import CONSUMER_CODE, CONSUMER_MESSAGE, CUSTOMER_INTERFACE
from smmc_gateway.simulator.objects.base import CosemObject
from smmc_gateway.simulator.objects.data import Data, Register
from smmc_gateway.simulator.objects.profile import CaptureObject, ProfileGeneric
from smmc_gateway.simulator.objects.push import PushSetup
from smmc_gateway.simulator.objects.script import (
    EXECUTE_METHOD,
    WRITE_ATTRIBUTE,
    ScriptAction,
    ScriptTable,
)

if TYPE_CHECKING:
    from smmc_gateway.simulator.meter import SimulatedMeter

CLOCK = Obis(0, 0, 1, 0, 0, 255)
ENERGY = {
    Obis(1, 0, 1, 8, 0, 255): (0, 30),
    Obis(1, 0, 2, 8, 0, 255): (1, 30),
    Obis(1, 0, 3, 8, 0, 255): (2, 32),
    Obis(1, 0, 4, 8, 0, 255): (3, 32),
}
POWER = Obis(1, 0, 1, 7, 0, 255)
VOLTAGE = Obis(1, 0, 32, 7, 0, 255)
DEVICE_ID = Obis(0, 0, 96, 1, 0, 255)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
FIRMWARE = Obis(1, 0, 0, 2, 0, 255)
AMR_STATUS = Obis(0, 0, 96, 10, 1, 255)
ACTIVE_TARIFF = Obis(0, 0, 96, 14, 0, 255)
# the time of the last clock synchronisation (IDIS: Data, a date-time), set on every
# clock adjustment (meter.py _on_time_set)
LAST_CLOCK_SYNC = Obis(0, 0, 96, 2, 12, 255)
ALARM = Obis(0, 0, 97, 98, 0, 255)
ALARM_FILTER = Obis(0, 0, 97, 98, 10, 255)
POWER_FAILURE_DURATION = Obis(0, 0, 96, 7, 19, 255)
LOAD_PROFILE = Obis(1, 0, 99, 1, 0, 255)
BILLING = Obis(0, 0, 98, 1, 0, 255)
POWER_FAILURE_LOG = Obis(1, 0, 99, 97, 0, 255)
TARIFF_SCRIPTS = Obis(0, 0, 10, 0, 100, 255)
DISCONNECTOR_SCRIPTS = Obis(0, 0, 10, 0, 106, 255)
IMAGE_SCRIPTS = Obis(0, 0, 10, 0, 107, 255)
PUSH = Obis(0, 0, 25, 9, 0, 255)
ALARM_PUSH = Obis(0, 4, 25, 9, 0, 255)
ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
# Invocation counter (IDIS): the highest IC received from a ciphering client;
# added by the transport (fleet.py), which owns the counters.
INVOCATION_COUNTER = Obis(0, 0, 43, 1, 0, 255)

PUBLIC_OBJECTS = frozenset(
    {ASSOCIATION, CLOCK, DEVICE_ID, LOGICAL_DEVICE_NAME, FIRMWARE, Obis(0, 0, 41, 0, 0, 255)}
    | {INVOCATION_COUNTER}
    | set(ENERGY)
)


def _cap(class_id: int, obis: Obis, attr: int = 2) -> CaptureObject:
    return CaptureObject(class_id, obis, attr, 0)


def _energy_source(meter: SimulatedMeter, index: int) -> Callable[[datetime], TypedValue]:
    return lambda now: double_long_unsigned(meter.energy_reading(index))


def build_objects(meter: SimulatedMeter) -> list[CosemObject]:
    """The meter's objects other than clock, associations and the class
    objects the meter builds itself (passed in through ``meter``)."""
    name = meter.options.serial.encode()
    objs: list[CosemObject] = [meter.clock]
    objs.append(Data(DEVICE_ID, octet_string(name)))
    objs.append(Data(LOGICAL_DEVICE_NAME, octet_string(b"SMM" + name)))
    objs.append(Data(FIRMWARE, source=lambda now: octet_string(meter.firmware_version.encode())))
    for obis, (index, unit) in ENERGY.items():
        objs.append(Register(obis, _energy_source(meter, index), 0, unit))
    objs.append(Register(POWER, lambda now: double_long_unsigned(meter.power_w(now)), 0, 27))
    objs.append(Register(VOLTAGE, lambda now: long_unsigned(meter.voltage_dv(now)), -1, 35))
    objs.append(Data(AMR_STATUS, source=lambda now: unsigned(meter.status_flags)))
    objs.append(Data(ACTIVE_TARIFF, unsigned(1)))
    objs.append(
        Data(
            LAST_CLOCK_SYNC,
            octet_string(meter.clock.local_bytes(meter.clock.meter_time(meter.created))),
        )
    )
    # use cases 4 and 8, the customer side (simulator/customer.py)
    objs.append(Data(CONSUMER_MESSAGE, octet_string(b""), writable=True))
    objs.append(Data(CONSUMER_CODE, octet_string(b""), writable=True))
    objs.append(Data(CUSTOMER_INTERFACE, boolean(True), writable=True))
    objs.append(Data(ALARM, double_long_unsigned(0), writable=True))
    objs.append(Data(ALARM_FILTER, double_long_unsigned(0xFFFFFFFF), writable=True))
    objs.append(Data(POWER_FAILURE_DURATION, double_long_unsigned(0)))
    for _log, (_profile, event_obj) in events.EVENT_LOGS.items():
        objs.append(Data(event_obj, unsigned(0)))

    energy_caps = [_cap(3, o) for o in ENERGY]
    tz = meter.time_zone
    objs.append(
        ProfileGeneric(
            LOAD_PROFILE,
            [_cap(8, CLOCK), _cap(1, AMR_STATUS), *energy_caps],
            meter.capture_value,
            capture_period=900,
            profile_entries=max(96 * (meter.options.history_days + 30), 96),
            time_zone=tz,
            meter_time=meter.clock.meter_time,
        )
    )
    objs.append(
        ProfileGeneric(
            BILLING,
            [_cap(8, CLOCK), *energy_caps],
            meter.capture_value,
            capture_period=0,
            profile_entries=24,
            time_zone=tz,
            meter_time=meter.clock.meter_time,
        )
    )
    for _kind, (profile, event_obj) in events.EVENT_LOGS.items():
        objs.append(
            ProfileGeneric(
                profile,
                [_cap(8, CLOCK), _cap(1, event_obj)],
                meter.capture_value,
                capture_period=0,
                profile_entries=200,
                time_zone=tz,
                meter_time=meter.clock.meter_time,
            )
        )
    objs.append(
        ProfileGeneric(
            POWER_FAILURE_LOG,
            [_cap(8, CLOCK), _cap(1, POWER_FAILURE_DURATION)],
            meter.capture_value,
            capture_period=0,
            profile_entries=100,
            time_zone=tz,
            meter_time=meter.clock.meter_time,
        )
    )
    tariff_scripts = {
        n: [ScriptAction(WRITE_ATTRIBUTE, 1, ACTIVE_TARIFF, 2, unsigned(n))] for n in range(1, 5)
    }
    objs.append(ScriptTable(TARIFF_SCRIPTS, tariff_scripts, meter.run_script_action))
    disconnector_scripts = {
        n: [ScriptAction(EXECUTE_METHOD, 70, Obis(0, 0, 96, 3, 10, 255), n, integer(0))]
        for n in (1, 2)
    }
    objs.append(ScriptTable(DISCONNECTOR_SCRIPTS, disconnector_scripts, meter.run_script_action))
    image_scripts = {
        1: [ScriptAction(EXECUTE_METHOD, 18, Obis(0, 0, 44, 0, 0, 255), 4, integer(0))]
    }
    objs.append(ScriptTable(IMAGE_SCRIPTS, image_scripts, meter.run_script_action))
    push_caps = [
        _cap(40, PUSH, 1),
        _cap(1, DEVICE_ID),
        _cap(8, CLOCK),
        _cap(3, Obis(1, 0, 1, 8, 0, 255)),
    ]
    objs.append(
        PushSetup(
            str(PUSH),
            push_caps,
            destination=meter.options.push_destination,
            reader=meter.read_value,
            emit=meter.emit_push,
        )
    )
    alarm_caps = [_cap(40, ALARM_PUSH, 1), _cap(1, DEVICE_ID), _cap(1, ALARM)]
    objs.append(
        PushSetup(
            str(ALARM_PUSH),
            alarm_caps,
            destination=meter.options.push_destination,
            reader=meter.read_value,
            emit=meter.emit_push,
        )
    )
    return objs


# ---------------------------------------------------------------- access rights
def attribute_access(obj: CosemObject, attribute_id: int, public: bool) -> AttributeAccess:
    mode = obj.attribute_access(attribute_id)
    if not public:
        return mode
    return AttributeAccess.READ_ONLY if mode.can_read else AttributeAccess.NO_ACCESS


def method_access(obj: CosemObject, method_id: int, public: bool) -> MethodAccess:
    if public or method_id not in obj.methods:
        return MethodAccess.NO_ACCESS
    return MethodAccess.ACCESS


def object_list_entry(obj: CosemObject, public: bool) -> TypedValue:
    ic = CLASSES[obj.class_id]
    attrs = []
    for aid in range(1, len(ic.attributes) + 1):
        sels = obj.selectors.get(aid)
        attrs.append(
            structure(
                [
                    integer(aid),
                    enum(attribute_access(obj, aid, public)),
                    array([integer(s) for s in sels]) if sels else null(),
                ]
            )
        )
    methods = [
        structure([integer(mid), enum(method_access(obj, mid, public))])
        for mid in range(1, len(ic.methods) + 1)
    ]
    return structure(
        [
            long_unsigned(obj.class_id),
            unsigned(ic.version),
            octet_string(obj.obis.to_bytes()),
            structure([array(attrs), array(methods)]),
        ]
    )
