"""Load and validate the gateway configuration: one TOML file (plus optional
`include` globs of TOML files and `meters_csv` CSV files for large fleets) into the
frozen dataclasses of `config_model`. Every problem found is collected and raised
together in one `ConfigError`; nothing half-valid is returned.

    cfg = load_config("/etc/smmc-gateway/gateway.toml")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from smmc_gateway.models.catalog import shipped_models
from smmc_gateway.ops import config_guard as guard
from smmc_gateway.ops import config_sections as sec
from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_keys import escrow_section
from smmc_gateway.ops.config_meters import KeyStore, MeterContext, meter_entry, meters_from_csv
from smmc_gateway.ops.config_model import (
    Addresses,
    BrokerConfig,
    BusConfig,
    CommandsConfig,
    Connection,
    DataStoreConfig,
    ExportConfig,
    GatewayConfig,
    GatewaySection,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    MeterConfig,
    MeterConfigRule,
    MeterKeys,
    ModelConfig,
    OpticalConnection,
    OutboxClassLimits,
    OutboxConfig,
    PushConfig,
    RegisterSpec,
    SchedulesConfig,
    Secret,
    SerialConnection,
    TcpConnection,
    TlsConfig,
)
from smmc_gateway.ops.config_values import ConfigProblem, Problems, Table

__all__ = [
    "Addresses",
    "BrokerConfig",
    "BusConfig",
    "CommandsConfig",
    "ConfigError",
    "ConfigProblem",
    "Connection",
    "DataStoreConfig",
    "ExportConfig",
    "GatewayConfig",
    "GatewaySection",
    "LimitsConfig",
    "ListenConfig",
    "LoggingConfig",
    "MeterConfig",
    "MeterConfigRule",
    "MeterKeys",
    "ModelConfig",
    "OpticalConnection",
    "OutboxClassLimits",
    "OutboxConfig",
    "PushConfig",
    "RegisterSpec",
    "SchedulesConfig",
    "Secret",
    "SerialConnection",
    "TcpConnection",
    "TlsConfig",
    "config_as_dict",
    "load_config",
]

TOP_KEYS = (
    "include",
    "meters_csv",
    "gateway",
    "broker",
    "meters",
    "models",
    "buses",
    "schedules",
    "limits",
    "outbox",
    "metrics",
    "push",
    "logging",
    "commands",
    "datastore",
    "export",
    "escrow",
)
INCLUDE_KEYS = ("meters", "models", "buses")


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, source: Path | str, problems: list[ConfigProblem]) -> None:
        self.source = str(source)
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid configuration {self.source} ({count}):\n{lines}")


def _read_toml(path: Path, where: str, probs: Problems) -> Table | None:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        probs.add(where, f"{path} does not exist")
    except OSError as exc:
        probs.add(where, f"cannot read {path}: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        probs.add(str(path), f"is not valid TOML: {exc}")
    return None


def _paths(raw: object, key: str, base: Path, probs: Problems) -> list[tuple[str, Path]]:
    """Expand a string or list of strings (globs allowed) relative to `base`."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        probs.add(key, f"{v.show(raw)} is not a string or an array of strings")
        return []
    out: list[tuple[str, Path]] = []
    for i, pattern in enumerate(items):
        where = v.join(key, i) if isinstance(raw, list) else key
        full = os.path.expandvars(str(pattern))
        full = full if os.path.isabs(full) else str(base / full)
        if glob.has_magic(full):
            out.extend((os.path.relpath(m, base), Path(m)) for m in sorted(glob.glob(full)))
        elif os.path.exists(full):
            out.append((str(pattern), Path(full)))
        else:
            probs.add(where, f"{v.show(pattern)}: {full} does not exist")
    return out


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read, validate and freeze the configuration; raise ConfigError listing every problem."""
    source = Path(path).absolute()
    base = source.parent
    probs = Problems()
    doc = _read_toml(source, "", probs)
    if doc is None:
        raise ConfigError(source, probs.items)
    v.check_keys(doc, "", TOP_KEYS, probs)

    # Gather [[meters]], [models] and [[buses]] from the main file and every include.
    parts: list[tuple[str, Table]] = [("", doc)]
    for label, inc in _paths(doc.get("include", []), "include", base, probs):
        sub = _read_toml(inc, "include", probs)
        if sub is None:
            continue
        for key in sub:
            if key not in INCLUDE_KEYS:
                probs.add(
                    f"{label}: {key}",
                    "not allowed in an included file (only "
                    f"{', '.join(INCLUDE_KEYS)}){v.suggest(key, INCLUDE_KEYS)}",
                )
        parts.append((label, sub))

    gateway = sec.gateway_section(v.table(doc.get("gateway"), "gateway", probs), base, probs)
    if "gateway" not in doc:
        probs.add("gateway", "is required (at least [gateway] id)")
    broker = sec.broker_section(
        v.table(doc.get("broker"), "broker", probs), base, gateway.id, probs
    )

    models: dict[str, ModelConfig] = {}
    buses: dict[str, BusConfig] = {}
    for label, part in parts:
        prefix = f"{label}: " if label else ""
        for name, mt in v.table(part.get("models"), f"{prefix}models", probs).items():
            mprobs = Problems()
            model = sec.model_section(name, v.table(mt, f"models.{name}", mprobs), mprobs)
            if name in models:
                mprobs.add(f"models.{name}", "is defined twice")
            probs.items.extend(ConfigProblem(prefix + p.where, p.message) for p in mprobs.items)
            models[name] = model
        raw_buses = part.get("buses", [])
        if not isinstance(raw_buses, list):
            probs.add(f"{prefix}buses", "is not an array of tables (write [[buses]])")
            raw_buses = []
        for i, bt in enumerate(raw_buses):
            p = f"{prefix}buses[{i}]"
            bus = sec.bus_section(v.table(bt, p, probs), p, base, probs)
            if bus.name in buses:
                probs.add(f"{p}.name", f"{v.show(bus.name)} is defined twice")
            buses[bus.name] = bus
    models.setdefault("default", sec.model_section("default", {}, probs))
    for name, shipped in shipped_models().items():  # a meter may name a shipped model
        models.setdefault(name, shipped)

    ctx = MeterContext(base, gateway.key_file, set(models), set(buses), KeyStore())
    meters: list[MeterConfig] = []
    for label, part in parts:
        prefix = f"{label}: " if label else ""
        raw_meters = part.get("meters", [])
        if not isinstance(raw_meters, list):
            probs.add(f"{prefix}meters", "is not an array of tables (write [[meters]])")
            continue
        for i, mt in enumerate(raw_meters):
            p = f"{prefix}meters[{i}]"
            src = f"{label or source.name} meters[{i}]"
            meters.append(meter_entry(v.table(mt, p, probs), p, src, ctx, probs))
    for label, csv_path in _paths(doc.get("meters_csv", []), "meters_csv", base, probs):
        meters.extend(meters_from_csv(csv_path, label, ctx, probs))
    _cross_check(meters, buses, probs)
    if gateway.client_system_title is None and any(m.security == "hls-gmac" for m in meters):
        probs.add(
            "gateway.client_system_title",
            "is required when a meter uses hls-gmac: "
            "this gateway's own 8-byte system title (16 hex digits), different on every "
            "gateway and from the technician's CLI, so that no two clients ever cipher "
            "with the same (system title, invocation counter) under one key",
        )

    config = GatewayConfig(
        gateway=gateway,
        broker=broker,
        meters=tuple(meters),
        meters_by_id=MappingProxyType({m.id: m for m in meters}),
        models=MappingProxyType(models),
        buses=MappingProxyType(buses),
        schedules=sec.schedules_section(v.table(doc.get("schedules"), "schedules", probs), probs),
        limits=sec.limits_section(v.table(doc.get("limits"), "limits", probs), probs),
        outbox=sec.outbox_section(
            v.table(doc.get("outbox"), "outbox", probs), gateway.state_dir, probs
        ),
        metrics=sec.listen_section(
            v.table(doc.get("metrics"), "metrics", probs), "metrics", probs, "127.0.0.1", 9108
        ),
        push=guard.push_section(v.table(doc.get("push"), "push", probs), probs),
        logging=sec.logging_section(v.table(doc.get("logging"), "logging", probs), probs),
        source=source,
        commands=guard.commands_section(v.table(doc.get("commands"), "commands", probs), probs),
        datastore=sec.datastore_section(v.table(doc.get("datastore"), "datastore", probs), probs),
        export=sec.export_section(v.table(doc.get("export"), "export", probs), base, probs),
        escrow=escrow_section(v.table(doc.get("escrow"), "escrow", probs), base, probs),
    )
    if config.metrics.enabled and config.push.enabled and config.metrics.port == config.push.port:
        probs.add("metrics.port", f"{config.metrics.port} is also push.port; use two ports")
    if probs.items:
        raise ConfigError(source, probs.items)
    return config


def _cross_check(meters: list[MeterConfig], buses: dict[str, BusConfig], probs: Problems) -> None:
    """Meter ids unique; on each bus, physical addresses unique."""
    seen: dict[str, str] = {}
    on_bus: dict[tuple[str, int | None], str] = {}
    for m in meters:
        if not m.id:
            continue
        if m.id in seen:
            probs.add(m.source, f"meter id {v.show(m.id)} is also used by {seen[m.id]}")
        else:
            seen[m.id] = m.source
        if isinstance(m.connection, SerialConnection) and m.connection.bus in buses:
            slot = (m.connection.bus, m.addresses.server_physical)
            if slot in on_bus:
                probs.add(
                    m.source,
                    f"bus {v.show(m.connection.bus)} physical address "
                    f"{m.addresses.server_physical} is also used by {on_bus[slot]}",
                )
            else:
                on_bus[slot] = f"meter {m.id} ({m.source})"


def config_as_dict(value: object) -> object:
    """JSON-ready plain data of a config object (for `--print-config` and the like):
    secrets become "***", paths and times strings, bytes hex."""
    if isinstance(value, Secret):
        return "***"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: config_as_dict(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.repr
        }
    if isinstance(value, Mapping):
        return {str(k): config_as_dict(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [config_as_dict(x) for x in value]
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Path | dt.time):
        return str(value)
    return value


def main(argv: list[str] | None = None) -> int:
    """`python -m smmc_gateway.ops.config FILE`: validate a configuration (exit 0 or 2)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m smmc_gateway.ops.config GATEWAY_TOML", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args[0])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"{cfg.source}: OK: gateway {cfg.gateway.id}, {len(cfg.meters)} meters, "
        f"{len(cfg.buses)} buses, {len(cfg.models)} models"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
