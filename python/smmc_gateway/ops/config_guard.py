"""Validation of the sections that bound what the outside world can make the gateway do:
[commands] (which nouns are served, fan-out and size caps, poison commands, the journal's
age, the MeterConfig allowlist, read schedules and effective-dated orders) and [push] (the
push listener's connection caps and the networks it accepts). The threat model behind
every knob is in docs/security.md.
"""

from __future__ import annotations

import ipaddress
import re
from types import MappingProxyType

from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.audit import is_secret
from smmc_gateway.ops.config_model import (
    NOUN_DEFAULTS,
    CommandsConfig,
    MeterConfigRule,
    PushConfig,
)
from smmc_gateway.ops.config_values import Problems, Table, join

#: Classes a MeterConfig allowlist entry may never name: firmware goes only through
#: EndDeviceFirmware with a signed manifest.
NEVER_ALLOWED_CLASSES = {
    18: "image transfer: firmware goes only through EndDeviceFirmware with a signed manifest"
}

_OBIS_PATTERN = re.compile(r"^(\d{1,3}|\*)(\.(\d{1,3}|\*)){5}$")


def _int_list(t: Table, key: str, path: str, probs: Problems, lo: int, hi: int) -> frozenset[int]:
    raw = t.get(key, [])
    where = join(path, key)
    if not isinstance(raw, list):
        probs.add(where, f"{v.show(raw)} is not an array of integers ({lo}..{hi})")
        return frozenset()
    out: set[int] = set()
    for i, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, int) or not lo <= item <= hi:
            probs.add(join(where, i), f"{v.show(item)} is not an integer {lo}..{hi}")
        else:
            out.add(item)
    return frozenset(out)


def obis_pattern(raw: object, where: str, probs: Problems) -> str | None:
    """An OBIS code where any of the six groups may be ``*`` (matches every value)."""
    if isinstance(raw, str):
        text = raw.strip()
        plain = v.parse_obis(text)
        if plain is not None:
            return plain
        if _OBIS_PATTERN.match(text) and all(g == "*" or int(g) <= 255 for g in text.split(".")):
            return ".".join(g if g == "*" else str(int(g)) for g in text.split("."))
    probs.add(
        where,
        f"{v.show(raw)} is not an OBIS code or pattern (six groups 0..255 or *, "
        'like "1.0.99.1.0.255" or "0.0.21.0.*.255")',
    )
    return None


def meter_config_rule(t: Table, path: str, probs: Problems) -> MeterConfigRule | None:
    v.check_keys(t, path, ("class_id", "obis", "attributes", "methods", "note"), probs)
    class_id = t.get("class_id")
    ok = True
    if isinstance(class_id, bool) or not isinstance(class_id, int) or not 1 <= class_id <= 0xFFFF:
        probs.add(
            join(path, "class_id"),
            f"{v.show(class_id)} is not a COSEM class id 1..65535 "
            "(required; no wildcard: every class is allowed on purpose)",
        )
        ok = False
    elif class_id in NEVER_ALLOWED_CLASSES:
        probs.add(
            join(path, "class_id"),
            f"class {class_id} cannot be allowed in MeterConfig "
            f"({NEVER_ALLOWED_CLASSES[class_id]})",
        )
        ok = False
    obis = obis_pattern(t.get("obis"), join(path, "obis"), probs)
    attributes = _int_list(t, "attributes", path, probs, 1, 127)
    methods = _int_list(t, "methods", path, probs, 1, 127)
    if not attributes and not methods and "attributes" not in t and "methods" not in t:
        probs.add(
            path,
            "names no attribute and no method (give attributes = [...] and/or methods = [...])",
        )
        ok = False
    note = v.get_opt_str(t, "note", path, probs) or ""
    if isinstance(class_id, int) and not isinstance(class_id, bool):
        for kind, members in (("attribute", attributes), ("method", methods)):
            for member in sorted(members):
                if is_secret(class_id, kind, member):
                    probs.add(
                        path,
                        f"class {class_id} {kind} {member} carries a secret and "
                        "cannot be allowed in MeterConfig (the value would travel in an "
                        "MQTT request and stay in the command journal; keys change only "
                        "through keyChange, wrapped by the master key)",
                    )
                    ok = False
    if not ok or obis is None:
        return None
    assert isinstance(class_id, int)
    return MeterConfigRule(class_id, obis, attributes, methods, note)


#: What MeterConfig may change out of the box (``[commands.meter_config] defaults = true``).
#: Each is a setting a utility changes in the field without risk to the meter's
#: reachability, its keys or its firmware.
SAFE_DEFAULT_RULES: tuple[MeterConfigRule, ...] = (
    MeterConfigRule(
        7, "*.*.*.*.*.*", frozenset({4}), frozenset(), "capture period of every profile"
    ),
    MeterConfigRule(
        7,
        "0.0.21.0.*.255",
        frozenset({3}),
        frozenset(),
        "display lists (general and alternate display readout)",
    ),
    MeterConfigRule(21, "*.*.*.*.*.*", frozenset({2}), frozenset(), "register monitor thresholds"),
    MeterConfigRule(
        71, "*.*.*.*.*.*", frozenset({4, 5, 6, 7}), frozenset(), "limiter thresholds and durations"
    ),
    MeterConfigRule(
        5,
        "*.*.*.*.*.*",
        frozenset({8, 9}),
        frozenset(),
        "demand register period and number of periods",
    ),
    MeterConfigRule(1, "0.0.97.98.10.255", frozenset({2}), frozenset(), "alarm filter 1"),
    MeterConfigRule(1, "0.0.97.98.11.255", frozenset({2}), frozenset(), "alarm filter 2"),
    MeterConfigRule(
        1, "0.0.96.13.*.255", frozenset({2}), frozenset(), "consumer message text and code"
    ),
    MeterConfigRule(
        40,
        "*.*.*.*.*.*",
        frozenset({4, 5, 6, 7}),
        frozenset(),
        "push communication window, randomisation, retries and delay "
        "(never the destination, attribute 3)",
    ),
    MeterConfigRule(
        9, "0.0.10.0.1.255", frozenset(), frozenset({1}), "execute the end-of-billing script table"
    ),
)


def commands_section(t: Table, probs: Problems) -> CommandsConfig:
    p = "commands"
    allowed = (
        "enabled",
        "max_meters_per_request",
        "max_concurrent",
        "max_queued",
        "max_attempts",
        "timeout",
        "journal_retention",
        "max_reply_bytes",
        "max_request_bytes",
        "max_query_intervals",
        "meter_config",
        "max_read_schedules",
        "max_read_schedules_per_meter",
        "min_read_interval",
        "max_pending_orders",
        "max_orders_per_meter",
        "order_horizon",
        "order_grace",
    )
    v.check_keys(t, p, allowed, probs)
    enabled = dict(NOUN_DEFAULTS)
    et = v.table(t.get("enabled"), join(p, "enabled"), probs)
    v.check_keys(et, join(p, "enabled"), NOUN_DEFAULTS.keys(), probs)
    for key in et:
        if key in NOUN_DEFAULTS:
            enabled[key] = v.get_bool(et, key, join(p, "enabled"), probs, NOUN_DEFAULTS[key])
    mp = join(p, "meter_config")
    mt = v.table(t.get("meter_config"), mp, probs)
    v.check_keys(mt, mp, ("defaults", "allow"), probs)
    rules: list[MeterConfigRule] = []
    if v.get_bool(mt, "defaults", mp, probs, True):
        rules.extend(SAFE_DEFAULT_RULES)
    raw_allow = mt.get("allow", [])
    if not isinstance(raw_allow, list):
        probs.add(join(mp, "allow"), f"{v.show(raw_allow)} is not an array of tables")
        raw_allow = []
    for i, item in enumerate(raw_allow):
        rp = join(join(mp, "allow"), i)
        rule = meter_config_rule(v.table(item, rp, probs), rp, probs)
        if rule is not None:
            rules.append(rule)
    max_reply = v.get_opt_size(t, "max_reply_bytes", p, probs) or 1 << 20
    if max_reply < 4096:
        probs.add(join(p, "max_reply_bytes"), f"{max_reply} is too small (at least 4KiB)")
        max_reply = 4096
    max_request = v.get_opt_size(t, "max_request_bytes", p, probs) or 1 << 20
    if not 4096 <= max_request <= 64 << 20:
        probs.add(join(p, "max_request_bytes"), f"{max_request} is out of range (4KiB..64MiB)")
        max_request = 1 << 20
    return CommandsConfig(
        enabled=MappingProxyType(enabled),
        max_meters_per_request=v.get_int(t, "max_meters_per_request", p, probs, 256, 1, 100000),
        max_concurrent=v.get_int(t, "max_concurrent", p, probs, 8, 1, 1000),
        max_queued=v.get_int(t, "max_queued", p, probs, 256, 1, 100000),
        max_attempts=v.get_int(t, "max_attempts", p, probs, 2, 1, 100),
        timeout_s=v.get_duration(t, "timeout", p, probs, 3600, 1, 7 * 86400),
        journal_retention_s=v.get_duration(
            t, "journal_retention", p, probs, 30 * 86400, 3600, 3650 * 86400
        ),
        max_reply_bytes=max_reply,
        max_request_bytes=max_request,
        max_query_intervals=v.get_int(t, "max_query_intervals", p, probs, 50000, 100, 10_000_000),
        meter_config_rules=tuple(rules),
        max_read_schedules=v.get_int(t, "max_read_schedules", p, probs, 64, 0, 10000),
        max_read_schedules_per_meter=v.get_int(
            t, "max_read_schedules_per_meter", p, probs, 4, 1, 64
        ),
        min_read_interval_s=v.get_duration(t, "min_read_interval", p, probs, 900, 60, 86400),
        max_pending_orders=v.get_int(t, "max_pending_orders", p, probs, 10000, 0, 1_000_000),
        max_orders_per_meter=v.get_int(t, "max_orders_per_meter", p, probs, 4, 1, 100),
        order_horizon_s=v.get_duration(t, "order_horizon", p, probs, 90 * 86400, 60, 366 * 86400),
        order_grace_s=v.get_duration(t, "order_grace", p, probs, 3600, 0, 7 * 86400),
    )


def push_section(t: Table, probs: Problems) -> PushConfig:
    p = "push"
    allowed = (
        "enabled",
        "address",
        "port",
        "max_connections",
        "max_per_peer",
        "first_frame_timeout",
        "idle_timeout",
        "allow_from",
    )
    v.check_keys(t, p, allowed, probs)
    networks: list[str] = []
    for i, raw in enumerate(v.get_str_list(t, "allow_from", p, probs)):
        try:
            networks.append(str(ipaddress.ip_network(raw.strip(), strict=False)))
        except ValueError:
            probs.add(
                join(join(p, "allow_from"), i),
                f"{v.show(raw)} is not an IP address or "
                'network (like "10.20.0.0/16" or "192.0.2.7")',
            )
    total = v.get_int(t, "max_connections", p, probs, 256, 1, 100000)
    per_peer = v.get_int(t, "max_per_peer", p, probs, 4, 1, 100000)
    if per_peer > total:
        probs.add(join(p, "max_per_peer"), f"{per_peer} is more than max_connections {total}")
    first = v.get_duration(t, "first_frame_timeout", p, probs, 5, 0.1, 600)
    idle = v.get_duration(t, "idle_timeout", p, probs, 120, 1, 86400)
    return PushConfig(
        enabled=v.get_bool(t, "enabled", p, probs, True),
        address=v.get_str(t, "address", p, probs, "0.0.0.0") or "0.0.0.0",
        port=v.get_int(t, "port", p, probs, 4059, 1, 65535),
        max_connections=total,
        max_per_peer=min(per_peer, total),
        first_frame_timeout_s=first,
        idle_timeout_s=idle,
        allow_from=tuple(networks),
    )
