"""Aspect 1, the general architecture, drawn from a deployment's configuration.

:func:`architecture` reads a :class:`~smmc_gateway.ops.config_model.GatewayConfig` (the
lab's, or a distributor's ``gateway.toml`` given to ``profiles render --config``) and
returns the planes (operation, distribution, customer, external), the components of the
SMMC with what each does here, and the interfaces between them with the protocol and
the settings the configuration gives. Labels are keys into the texts (``arch.*``) so the
Spanish and English documents say the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from smmc_gateway.ops.config_model import (
    GatewayConfig,
    OpticalConnection,
    SerialConnection,
    TcpConnection,
)

PLANES = ("operation", "distribution", "customer", "external")


@dataclass(frozen=True)
class Component:
    key: str  # diagram id and text key (arch.component.<key>)
    plane: str
    detail: str  # facts from the configuration (language-neutral: numbers, names, nouns)


@dataclass(frozen=True)
class Interface:
    source: str
    target: str
    protocol: str  # text key (arch.protocol.<protocol>)
    detail: str


@dataclass(frozen=True)
class Architecture:
    operator: str | None
    gateway_id: str
    components: tuple[Component, ...]
    interfaces: tuple[Interface, ...]


#: Which central component uses which noun (IEC 61968-9 message), for the interface table.
USERS: dict[str, tuple[str, ...]] = {
    "mdm": ("MeterReadings", "MeterReadSchedule", "ReadingsReport", "EndDeviceConfig"),
    "cis": ("EndDeviceControls", "MasterDataLinkageConfig"),
    "oms": ("EndDeviceControls",),
    "dr": ("PricingStructureConfig", "EndDeviceControls"),
    "portal": ("CustomerMeterDataSet",),
    "ops": ("MeterConfig", "keyChange", "EndDeviceFirmware", "hanKeys"),
}


def _port(port: int, volatile: bool) -> str:
    return "*" if volatile else str(port)


def architecture(config: GatewayConfig, *, volatile_ports: bool = False) -> Architecture:
    """The architecture this configuration describes; ``volatile_ports``: ports and
    directories are chosen at run time (the lab): ports are shown as ``*``, the state
    directory as ``state_dir``."""
    served = [n for n, on in config.commands.enabled.items() if on]
    broker = config.broker
    tls = "TLS" if broker.tls is not None else "TCP"
    comps: list[Component] = []
    ifaces: list[Interface] = []

    def central(key: str, plane: str) -> None:
        nouns = [n for n in USERS[key] if n in served]
        comps.append(Component(key, plane, ", ".join(nouns) or "-"))
        if nouns:
            ifaces.append(Interface(key, "broker", "mqtt", ", ".join(nouns)))

    central("mdm", "operation")
    central("cis", "operation")
    central("oms", "operation")
    central("dr", "operation")
    central("ops", "operation")
    comps.append(Component("warehouse", "operation", "bulk/readings"))
    ifaces.append(Interface("mdm", "warehouse", "internal", "bulk/readings"))
    comps.append(
        Component(
            "broker", "operation", f"{broker.host}:{_port(broker.port, volatile_ports)} ({tls})"
        )
    )
    ifaces.append(
        Interface("broker", "gateway", "mqtt", f"smmc/v1/{config.gateway.id}/# ({tls}, MQTT v5)")
    )
    n = len(config.meters)
    comps.append(
        Component(
            "gateway",
            "distribution",
            f"id {config.gateway.id}, {n} meter(s), {len(config.buses)} bus(es)",
        )
    )
    kinds: Counter[str] = Counter()
    security: Counter[str] = Counter()
    for m in config.meters:
        security[m.security] += 1
        if isinstance(m.connection, TcpConnection):
            kinds[f"tcp-{m.connection.framing}"] += 1
        elif isinstance(m.connection, SerialConnection):
            kinds["serial"] += 1
        elif isinstance(m.connection, OpticalConnection):
            kinds["optical"] += 1
    models = sorted({m.model for m in config.meters})
    comps.append(
        Component(
            "meters",
            "distribution",
            f"{n}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            + "; "
            + ", ".join(f"{k} {v}" for k, v in sorted(security.items()))
            + f"; model(s) {', '.join(models) or '-'}",
        )
    )
    for kind, count in sorted(kinds.items()):
        ifaces.append(Interface("gateway", "meters", kind, f"{count} meter(s)"))
    for bus in config.buses.values():
        ifaces.append(
            Interface(
                "gateway",
                "meters",
                "serial",
                f"{bus.name}: {bus.device}, {bus.baud} baud "
                f"{bus.data_bits}{bus.parity}{bus.stop_bits}, {bus.kind}",
            )
        )
    if config.push.enabled:
        ifaces.append(
            Interface(
                "meters",
                "gateway",
                "push",
                f"{config.push.address}:{_port(config.push.port, volatile_ports)}",
            )
        )
    comps.append(Component("technician", "distribution", "smmc-gateway meter --optical"))
    ifaces.append(Interface("technician", "meters", "optical", "IEC 62056-21 mode E, HDLC"))
    inbox = "state_dir" if volatile_ports else str(config.gateway.state_dir)
    ifaces.append(Interface("technician", "gateway", "file", f"{inbox}/audit-inbox"))
    han = "MasterDataLinkageConfig" in served
    comps.append(Component("ihd", "customer", "hanKeys" if "hanKeys" in served else "-"))
    if han:
        ifaces.append(Interface("meters", "ihd", "han", "M-Bus (EN 13757), class 72"))
    central("portal", "customer")
    comps.append(Component("vas", "external", "-"))
    ifaces.append(Interface("vas", "portal", "external", "-"))
    if config.metrics.enabled:
        ifaces.append(
            Interface(
                "ops",
                "gateway",
                "metrics",
                f"{config.metrics.address}:{_port(config.metrics.port, volatile_ports)}",
            )
        )
    return Architecture(config.gateway.operator, config.gateway.id, tuple(comps), tuple(ifaces))
