"""Validation of the device-model tables of a ``[models.NAME]`` section (shipped model
files use the same shape): ``alarms``, ``pushes``, ``notifications``, ``event_codes``,
``event_logs``, ``values``, ``identification``, ``description``, ``source``.

Called by :func:`smmc_gateway.ops.config_sections.model_section` after ``extends`` was
resolved (:mod:`smmc_gateway.models.shipped`); every problem names its key path.
Event names must have an IEC 61968-9 code (:func:`smmc_gateway.cim.event_types.lookup`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from smmc_gateway.cim.event_types import lookup
from smmc_gateway.models.spec import (
    AlarmBit,
    AlarmRegister,
    EventCode,
    EventLog,
    EventNotificationSpec,
    Identification,
    PushLayout,
    PushObject,
    ScaledValue,
)
from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_values import Problems, Table, join

MODEL_KEYS = (
    "extends",
    "description",
    "source",
    "identification",
    "alarms",
    "pushes",
    "notifications",
    "event_codes",
    "event_logs",
    "values",
)
"""Keys of a [models.NAME] table handled here (besides obis, registers, quirks...)."""

#: event log short name -> the OBIS map name of its profile generic
EVENT_LOGS: Mapping[str, str] = {
    "standard": "event_log_standard",
    "fraud": "event_log_fraud",
    "disconnector": "event_log_disconnect",
    "powerQuality": "event_log_power_quality",
}
VALUE_NAMES: Mapping[str, str] = {
    "limiter_threshold": "the Limiter's thresholds (class 71 attributes 4 and 5), written in "
    "the unit and scaler of its monitored value",
}
SCALER_SOURCES = ("monitored",)
_T = TypeVar("_T")
_EVENTS_FILE = "python/smmc_gateway/cim/event_types.py"


@dataclass(frozen=True, slots=True)
class ModelExtras:
    """The device-model part of a ModelConfig (see :mod:`smmc_gateway.models.spec`)."""

    alarms: tuple[AlarmRegister, ...] = ()
    pushes: tuple[PushLayout, ...] = ()
    notifications: tuple[EventNotificationSpec, ...] = ()
    event_logs: tuple[EventLog, ...] = ()
    values: Mapping[str, ScaledValue] = field(default_factory=lambda: MappingProxyType({}))
    identification: Identification = field(default_factory=Identification)
    description: str = ""
    source: str = ""
    extends: str | None = None
    obis: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """OBIS map entries set by these tables (an event log's or alarm register's obis)."""


def _event_name(value: object, where: str, probs: Problems) -> str | None:
    if not isinstance(value, str) or not value:
        probs.add(where, f'{v.show(value)} is not an event name (like "smmc.meter.powerDown")')
        return None
    if lookup(value) is None:
        probs.add(
            where,
            f"{v.show(value)} has no IEC 61968-9 EndDeviceEventType code: use a "
            f"name of {_EVENTS_FILE} (EVENT_TYPES) or add it there",
        )
        return None
    return value


def _int_key(key: str, where: str, probs: Problems, hi: int) -> int | None:
    if not key.isdigit() or int(key) > hi:
        probs.add(where, f"{v.show(key)} is not a number 0..{hi}")
        return None
    return int(key)


def _codes(t: Table, where: str, probs: Problems) -> dict[int, EventCode]:
    out: dict[int, EventCode] = {}
    for key, raw in t.items():
        kp = join(where, key)
        code = _int_key(key, kp, probs, 0xFFFF)
        if code is None:
            continue
        details = ""
        if isinstance(raw, dict):
            v.check_keys(raw, kp, ("name", "details"), probs)
            details = v.get_str(raw, "details", kp, probs, "") or ""
            raw = raw.get("name")
            kp = join(kp, "name")
        name = _event_name(raw, kp, probs)
        if name is not None:
            out[code] = EventCode(code, name, details)
    return out


def _alarm(key: str, t: Table, where: str, probs: Problems) -> AlarmRegister | None:
    v.check_keys(t, where, ("obis", "filter", "descriptor", "bits"), probs)
    obis = v.get_obis(t, "obis", where, probs, None)
    bits: dict[int, AlarmBit] = {}
    bt = v.table(t.get("bits"), join(where, "bits"), probs)
    for bkey, raw in bt.items():
        bp = join(join(where, "bits"), bkey)
        bit = _int_key(bkey, bp, probs, 31)
        if bit is None:
            continue
        reason: str | None = None
        if isinstance(raw, dict):
            v.check_keys(raw, bp, ("name", "reason"), probs)
            reason = v.get_opt_str(raw, "reason", bp, probs)
            raw = raw.get("name")
            bp = join(bp, "name")
        name = _event_name(raw, bp, probs)
        if name is not None:
            bits[bit] = AlarmBit(bit, name, reason or name.rsplit(".", 1)[-1])
    if obis is None:
        return None
    return AlarmRegister(
        key=key,
        obis=obis,
        filter_obis=v.get_obis(t, "filter", where, probs, "") or None,
        descriptor_obis=v.get_obis(t, "descriptor", where, probs, "") or None,
        bits=MappingProxyType(dict(sorted(bits.items()))),
    )


def _push_object(raw: object, i: int, where: str, probs: Problems) -> PushObject | None:
    if isinstance(raw, list) and len(raw) == 3:
        raw = {"class": raw[0], "obis": raw[1], "attribute": raw[2]}
    if not isinstance(raw, dict):
        probs.add(
            where,
            f'{v.show(raw)} is not [class, "obis", attribute] or a table '
            "{position, class, obis, attribute}",
        )
        return None
    v.check_keys(raw, where, ("position", "class", "obis", "attribute"), probs)
    known = len(probs.items)
    i = v.get_int(raw, "position", where, probs, i, 0, 255)
    class_id = v.get_int(raw, "class", where, probs, 0, 1, 0xFFFF)
    obis = v.get_obis(raw, "obis", where, probs, None)
    attribute = v.get_int(raw, "attribute", where, probs, 2, 1, 127)
    if "class" not in raw:
        probs.add(join(where, "class"), "is required (the interface class id)")
    if obis is None or len(probs.items) != known:
        return None
    return PushObject(i, class_id, obis, attribute)


def _push(key: str, t: Table, where: str, probs: Problems) -> PushLayout | None:
    v.check_keys(t, where, ("obis", "objects"), probs)
    obis = v.get_obis(t, "obis", where, probs, None)
    raw = t.get("objects", [])
    if not isinstance(raw, list) or not raw:
        probs.add(
            join(where, "objects"),
            f'{v.show(raw)} is not a non-empty array of push objects ([class, "obis", attribute])',
        )
        raw = []
    objects = [
        o
        for i, item in enumerate(raw)
        if (o := _push_object(item, i, join(join(where, "objects"), i), probs))
    ]
    positions = [o.position for o in objects]
    if len(set(positions)) != len(positions):
        probs.add(join(where, "objects"), f"positions repeat ({positions})")
        return None
    if obis is None or len(objects) != len(raw):
        return None
    return PushLayout(key, obis, tuple(sorted(objects, key=lambda o: o.position)))


def _notification(key: str, t: Table, where: str, probs: Problems) -> EventNotificationSpec | None:
    v.check_keys(t, where, ("attribute", "name", "reason"), probs)
    if "attribute" not in t:
        probs.add(join(where, "attribute"), 'is required ([class, "obis", attribute])')
        return None
    known = len(probs.items)
    ref = _push_object(t["attribute"], 0, join(where, "attribute"), probs)
    name = _event_name(t.get("name"), join(where, "name"), probs)
    reason = v.get_opt_str(t, "reason", where, probs)
    if ref is None or name is None or len(probs.items) != known:
        return None
    return EventNotificationSpec(
        key, ref.class_id, ref.obis, ref.attribute, name, reason or name.rsplit(".", 1)[-1]
    )


def _scaled(name: str, t: Table, where: str, probs: Problems) -> ScaledValue:
    v.check_keys(t, where, ("unit", "scaler", "scaler_from"), probs)
    source = v.get_opt_str(t, "scaler_from", where, probs)
    if source is not None and source not in SCALER_SOURCES:
        probs.add(
            join(where, "scaler_from"),
            f"{v.show(source)} is not one of {', '.join(SCALER_SOURCES)}",
        )
        source = None
    scaler = v.get_opt_int(t, "scaler", where, probs, -128, 127)
    unit = v.get_opt_str(t, "unit", where, probs)
    if source is None and (scaler is None or unit is None):
        probs.add(
            where, 'needs scaler and unit, or scaler_from = "monitored" (read from the meter)'
        )
    return ScaledValue(name, unit, scaler, source)


def _identification(t: Table, where: str, probs: Problems) -> Identification:
    v.check_keys(t, where, ("flag_ids", "ldn_prefixes", "device_types"), probs)
    flags = v.get_str_list(t, "flag_ids", where, probs)
    for i, flag in enumerate(flags):
        if len(flag) != 3 or not flag.isalpha() or not flag.isupper():
            probs.add(
                join(join(where, "flag_ids"), i),
                f'{v.show(flag)} is not a FLAG manufacturer id (three capital letters, like "LGZ")',
            )
    return Identification(
        tuple(f for f in flags if len(f) == 3 and f.isalpha()),
        tuple(v.get_str_list(t, "ldn_prefixes", where, probs)),
        tuple(v.get_str_list(t, "device_types", where, probs)),
    )


def _keyed(
    t: Table,
    p: str,
    name: str,
    parse: Callable[[str, Table, str, Problems], _T | None],
    probs: Problems,
) -> list[_T]:
    """Each ``name.KEY`` table of ``t`` parsed by ``parse`` (those with problems left out)."""
    where = join(p, name)
    out = []
    for key, raw in v.table(t.get(name), where, probs).items():
        kp = join(where, key)
        item = parse(key, v.table(raw, kp, probs), kp, probs)
        if item is not None:
            out.append(item)
    return out


def parse_extras(p: str, t: Table, probs: Problems) -> ModelExtras:
    """The device-model tables of the model table ``t`` at key path ``p``."""
    obis: dict[str, str] = {}
    alarms: list[AlarmRegister] = []
    for key, raw in v.table(t.get("alarms"), join(p, "alarms"), probs).items():
        ap = join(join(p, "alarms"), key)
        if not key.startswith("register_") or _int_key(key[9:], ap, probs, 9) is None:
            probs.add(ap, f"{v.show(key)}: alarm registers are named register_1, register_2...")
            continue
        reg = _alarm(key, v.table(raw, ap, probs), ap, probs)
        if reg is not None:
            alarms.append(reg)
    alarms.sort(key=lambda a: a.key)
    if alarms:
        obis["alarm_register"] = alarms[0].obis
    pushes = _keyed(t, p, "pushes", _push, probs)
    notifications = _keyed(t, p, "notifications", _notification, probs)
    shared = _codes(
        v.table(t.get("event_codes"), join(p, "event_codes"), probs), join(p, "event_codes"), probs
    )
    per_log = v.table(t.get("event_logs"), join(p, "event_logs"), probs)
    v.check_keys(per_log, join(p, "event_logs"), EVENT_LOGS, probs)
    logs: list[EventLog] = []
    for log, key in EVENT_LOGS.items():
        lp = join(join(p, "event_logs"), log)
        lt = v.table(per_log.get(log), lp, probs)
        v.check_keys(lt, lp, ("obis", "codes"), probs)
        if "obis" in lt:
            obis[key] = v.get_obis(lt, "obis", lp, probs, None) or ""
        codes = dict(shared)
        codes.update(
            _codes(v.table(lt.get("codes"), join(lp, "codes"), probs), join(lp, "codes"), probs)
        )
        logs.append(EventLog(key, log, MappingProxyType(dict(sorted(codes.items())))))
    values: dict[str, ScaledValue] = {}
    vt = v.table(t.get("values"), join(p, "values"), probs)
    v.check_keys(vt, join(p, "values"), VALUE_NAMES, probs)
    for name in VALUE_NAMES:
        if name in vt:
            vp = join(join(p, "values"), name)
            values[name] = _scaled(name, v.table(vt[name], vp, probs), vp, probs)
    return ModelExtras(
        alarms=tuple(alarms),
        pushes=tuple(pushes),
        notifications=tuple(notifications),
        event_logs=tuple(logs),
        values=MappingProxyType(values),
        identification=_identification(
            v.table(t.get("identification"), join(p, "identification"), probs),
            join(p, "identification"),
            probs,
        ),
        description=v.get_str(t, "description", p, probs, "") or "",
        source=v.get_str(t, "source", p, probs, "") or "",
        extends=v.get_opt_str(t, "extends", p, probs),
        obis=MappingProxyType(obis),
    )
