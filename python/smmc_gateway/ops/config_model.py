"""The validated gateway configuration: frozen, typed dataclasses.

Built only by `smmc_gateway.ops.config.load_config`; every field here has already
been checked. Durations are float seconds, paths are absolute, OBIS codes are
dotted strings ("1.0.99.1.0.255"). Secrets are `Secret` objects whose repr/str
never show the value.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from smmc_gateway.models.spec import (
    AlarmRegister,
    EventLog,
    EventNotificationSpec,
    Identification,
    PushLayout,
    ScaledValue,
)
from smmc_gateway.ops.config_clock import ClockConfig

SecurityLevel = Literal["none", "lls", "hls-gmac"]
PushProtection = Literal["authenticated-encrypted", "encrypted"]
Framing = Literal["wrapper", "hdlc"]
Referencing = Literal["ln", "sn", "auto"]
BusKind = Literal["rs485", "serial"]
Parity = Literal["none", "even", "odd"]
OutboxClass = Literal["readings", "bulk", "events", "alarms", "replies"]

#: Blue Book default OBIS codes; a model's [models.NAME.obis] table overrides any of them.
DEFAULT_OBIS: Mapping[str, str] = {
    "clock": "0.0.1.0.0.255",
    "load_profile": "1.0.99.1.0.255",
    "billing_profile": "0.0.98.1.0.255",
    "power_failure_log": "1.0.99.97.0.255",
    "event_log_standard": "0.0.99.98.0.255",
    "event_log_fraud": "0.0.99.98.1.255",
    "event_log_disconnect": "0.0.99.98.2.255",
    "event_log_power_quality": "0.0.99.98.4.255",
    "disconnect_control": "0.0.96.3.10.255",
    "limiter": "0.0.17.0.0.255",
    "image_transfer": "0.0.44.0.0.255",
    "image_activation_schedule": "0.0.15.0.2.255",
    "activity_calendar": "0.0.13.0.0.255",
    "special_days": "0.0.11.0.0.255",
    "association_ln": "0.0.40.0.0.255",
    "security_setup": "0.0.43.0.0.255",
    "device_id": "0.0.96.1.0.255",
    "last_clock_sync": "0.0.96.2.12.255",
    "end_of_billing_script": "0.0.10.0.1.255",
    "active_tariff": "0.0.96.14.0.255",
    "consumer_message": "0.0.96.13.0.255",
    "consumer_message_code": "0.0.96.13.1.255",
    # Charge (class 113): the prices the display shows (use case 8, customer side)
    "charge": "0.0.19.20.0.255",
    # the customer interface (consumer information push) on/off: no standard object; a
    # boolean Data object in the manufacturer-specific range (C=96, D=50..96)
    "customer_interface": "0.0.96.50.0.255",
    "push_setup": "0.0.25.9.0.255",
    "voltage_l1": "1.0.32.7.0.255",
    "alarm_register": "0.0.97.98.0.255",
    "firmware_id": "1.0.0.2.0.255",
}


class Secret:
    """A secret value (bytes). repr/str show `Secret('***')`; use `reveal()` to get it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not picklable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


@dataclass(frozen=True, slots=True)
class GatewaySection:
    id: str
    state_dir: Path
    key_file: Path | None  # default key file for meters that name none
    client_system_title: bytes | None  # this gateway's 8-byte system title (HLS)
    key_encryption_key_file: Path | None = None
    key_encryption_key: Secret | None = field(default=None, repr=False)
    """The gateway's KEK: meter keys provisioned over MQTT arrive (and are kept) wrapped
    with it (RFC 3394)."""
    operator: str | None = None
    """The distribution company operating this gateway (``[gateway] operator``): named as
    the author of the interoperability profiles (``smmc-gateway profiles``)."""


@dataclass(frozen=True, slots=True)
class EscrowConfig:
    """``[escrow]``: the central KEK that escrowed key bundles are wrapped with."""

    kek: Secret = field(repr=False)
    kek_id: str
    """The central key store's name for this KEK (carried in every bundle)."""
    kek_file: Path
    on_key_change: bool = True
    """Publish a meter's bundle after each confirmed key change (else only on request)."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """``[broker.tls]``: its presence turns TLS on."""

    ca: Path | None  # None: the system's CA certificates
    cert: Path | None
    key: Path | None


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str
    port: int
    tls: TlsConfig | None
    username: str | None
    password: Secret | None  # read from password_file at load time
    password_file: Path | None
    keepalive_s: int
    client_id: str


@dataclass(frozen=True, slots=True)
class TcpConnection:
    host: str
    port: int
    framing: Framing
    kind: Literal["tcp"] = "tcp"
    mode_e: bool = False
    """HDLC only: sign on with the IEC 62056-21 mode E handshake first (a meter's
    optical or electrical port behind an optical- or serial-to-TCP converter)."""


@dataclass(frozen=True, slots=True)
class SerialConnection:
    bus: str  # name of a [[buses]] entry
    kind: Literal["serial"] = "serial"


@dataclass(frozen=True, slots=True)
class OpticalConnection:
    device: Path
    kind: Literal["optical"] = "optical"


Connection = TcpConnection | SerialConnection | OpticalConnection


@dataclass(frozen=True, slots=True)
class Addresses:
    client: int  # client SAP (HDLC: 0..127; wrapper wPort)
    server_logical: int
    server_physical: int | None  # HDLC lower address; None with the wrapper or 1-byte HDLC
    address_size: int | None  # HDLC server address size 1, 2 or 4; None with the wrapper
    referencing: Referencing = "auto"
    """How attributes are named: "ln" (logical names), "sn" (short names,
    resolved through the meter's object list) or "auto" (LN, SN when the
    meter refuses the LN application context)."""


@dataclass(frozen=True, slots=True)
class MeterKeys:
    """One key set from a key file (the secrets are never shown by repr)."""

    key_id: str
    password: Secret | None  # LLS password
    ek: Secret | None  # global unicast encryption key (16 bytes)
    ak: Secret | None  # authentication key (16 bytes)
    master_key: Secret | None  # KEK for key transfer (16 bytes)
    system_title: bytes | None  # the meter's expected system title (8 bytes)


@dataclass(frozen=True, slots=True)
class MeterConfig:
    id: str
    model: str  # a key of GatewayConfig.models
    connection: Connection
    addresses: Addresses
    security: SecurityLevel
    keys: MeterKeys | None  # None only with security "none"
    groups: tuple[str, ...]
    source: str  # where it was defined: "gateway.toml meters[3]" or "meters.csv:17"
    push_protection: PushProtection = "authenticated-encrypted"
    """The least protection a ciphered push from this meter must carry (HLS-GMAC only):
    SC 0x30, or 0x20 (encryption only, no tag) for meters configured to push so."""

    @property
    def push_required_protection(self) -> int:
        """``push_protection`` as the security-control bits a push must have."""
        return 0x20 if self.push_protection == "encrypted" else 0x30


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    obis: str
    name: str
    scaler: int | None
    unit: str | None


#: Named deviations from the standard a meter model may be allowed (the core's
#: ``_core.known_quirks()``; a test keeps the two equal). None touches tags, invocation
#: counters or protection levels. DEFAULT_QUIRKS are tolerated unless the model refuses
#: them (``refuse_quirks``, ``strict``); the others only when listed (``quirks``).
KNOWN_QUIRKS: Mapping[str, str] = {
    "trailing-bytes": "bytes after a complete APDU or after the complete value of an answer "
    "(ignored)",
    "acse-field-length": "an ACSE field of the AARE whose outer length disagrees with its "
    "complete inner value (the inner value is taken)",
    "initiate-response-length": "the AARE's InitiateResponse is one byte longer or shorter "
    "than its octet string says",
    "rejection-without-user-information": "an AARE rejecting the association without "
    "user-information (the rejection is reported as such)",
    "event-time-data-tag": "an event-notification whose time is flagged 0x09 (an "
    "octet-string's Data tag) instead of 0x01 (present)",
    "untagged-attribute-descriptors": "a push body whose array items are {attribute "
    "descriptor without data tags, value} (decoded that way only for a model that lists it)",
    "plain-initiate-response": "the AARE of a ciphered association carries a plain "
    "(unciphered) InitiateResponse, or none",
}
DEFAULT_QUIRKS: frozenset[str] = frozenset(KNOWN_QUIRKS) - {
    "plain-initiate-response",  # touches security
    "untagged-attribute-descriptors",  # not recognisable from the bytes: a model's layout
}


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    obis: Mapping[str, str]  # DEFAULT_OBIS with this model's overrides applied
    capture_period_s: float
    registers: tuple[RegisterSpec, ...]
    quirks: frozenset[str] = DEFAULT_QUIRKS  # the KNOWN_QUIRKS tolerated (empty: strict)
    clock: ClockConfig = field(default_factory=ClockConfig)  # [models.NAME.clock]
    # -- the device model as data (smmc_gateway.models; docs/models.md) --
    alarms: tuple[AlarmRegister, ...] = ()
    pushes: tuple[PushLayout, ...] = ()
    notifications: tuple[EventNotificationSpec, ...] = ()  # event-notifications by attribute
    event_logs: tuple[EventLog, ...] = ()
    values: Mapping[str, ScaledValue] = field(default_factory=dict)
    identification: Identification = field(default_factory=Identification)
    description: str = ""
    source: str = ""  # the public document the model's facts come from
    extends: str | None = None  # the shipped model this one builds on


@dataclass(frozen=True, slots=True)
class BusConfig:
    name: str
    device: Path
    baud: int
    data_bits: int
    parity: Parity
    stop_bits: int
    kind: BusKind


@dataclass(frozen=True, slots=True)
class SchedulesConfig:
    load_profile_every_s: float
    load_profile_jitter_s: float
    registers_every_s: float
    events_every_s: float
    bulk_export_at: dt.time
    clock_sync_at: dt.time
    clock_tolerance_s: float  # deviation at or below this: leave the clock alone
    clock_shift_limit_s: float  # up to this: method shift_time; beyond: SET the time
    clock_drift_threshold_s: float | None = 30.0
    """A collection that sees the meter's clock off by more than this schedules a sync of
    that meter (aspect 13, "drift detected"); None: collections do not read the clock."""
    clock_drift_min_interval_s: float = 86400.0
    """At most one drift-triggered sync per meter in this time (a meter that cannot be set
    is not synced at every collection)."""


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_tcp_sessions: int
    sessions_per_bus: int  # always 1: a bus is half-duplex and carries one session at a time
    retry_attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    backoff_multiplier: float
    response_timeout_s: float
    reserved_for_collection: float = 0.25
    """Share of max_tcp_sessions that commands never take: scheduled collection keeps it."""
    max_block_transfer: int = 8 << 20
    """Ceiling in bytes on one reassembled answer (block transfer, GBT), per session."""


@dataclass(frozen=True, slots=True)
class OutboxClassLimits:
    ttl_s: float | None  # None: kept until delivered
    max_messages: int | None
    max_bytes: int | None
    droppable: bool  # only readings and bulk may age out; the rest is never dropped


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: Path
    classes: Mapping[str, OutboxClassLimits]  # keys: readings bulk events alarms replies


@dataclass(frozen=True, slots=True)
class ListenConfig:
    enabled: bool
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class PushConfig:
    """``[push]``: the listener for meters' data-notifications."""

    enabled: bool
    address: str
    port: int
    max_connections: int = 256
    max_per_peer: int = 4
    first_frame_timeout_s: float = 5.0
    idle_timeout_s: float = 120.0
    allow_from: tuple[str, ...] = ()
    """Networks pushes are taken from besides the configured TCP meters' hosts (CIDR)."""


@dataclass(frozen=True, slots=True)
class MeterConfigRule:
    """One allowlist entry of MeterConfig: a class, an OBIS pattern (``*`` groups match
    anything) and the attributes that may be SET and methods that may be invoked."""

    class_id: int
    obis: str
    attributes: frozenset[int]
    methods: frozenset[int]
    note: str = ""

    def matches_obis(self, obis: str) -> bool:
        return all(
            p == "*" or p == o for p, o in zip(self.obis.split("."), obis.split("."), strict=True)
        )

    def allows(
        self, class_id: int, obis: str, attribute: int | None = None, method: int | None = None
    ) -> bool:
        if class_id != self.class_id or not self.matches_obis(obis):
            return False
        if attribute is not None:
            return attribute in self.attributes
        return method is not None and method in self.methods


#: Nouns (and the keyChange part of MeterConfig, the hanKeys part of MasterDataLinkageConfig)
#: a central system may use, with whether each is served when the configuration says
#: nothing. Default-deny for what can brick a meter or hand over its keys: remote
#: programming, key change, HAN keys and firmware are turned on by the operator on purpose
#: (``[commands.enabled]``).
NOUN_DEFAULTS: Mapping[str, bool] = {
    "EndDeviceControls": True,
    "MeterReadings": True,
    "MasterDataLinkageConfig": True,
    "PricingStructureConfig": True,
    "EndDeviceConfig": True,
    "CustomerMeterDataSet": True,
    "ReadingsReport": True,
    "MeterReadSchedule": True,
    "MeterConfig": False,
    "keyChange": False,
    "EndDeviceFirmware": False,
    # MasterDataLinkageConfig hanInstall with a key: a HAN device's key handed to the meter
    "hanKeys": False,
    # EndDeviceConfig create/change/delete: meters added, changed, removed over MQTT
    "provisioning": False,
    # EndDeviceConfig get with keyBundle: a meter's keys (wrapped with the central KEK)
    "keyEscrow": False,
}


@dataclass(frozen=True, slots=True)
class CommandsConfig:
    """``[commands]``: what the central system may ask of this gateway, and how much."""

    enabled: Mapping[str, bool] = field(default_factory=lambda: dict(NOUN_DEFAULTS))
    """noun (or "keyChange") -> served"""
    max_meters_per_request: int = 256
    max_concurrent: int = 8  # requests dispatched at once
    max_queued: int = 256  # requests waiting beyond that; more are answered FAILED Busy
    max_attempts: int = 2  # a request that crashed or timed out this often is answered FAILED
    timeout_s: float = 3600.0  # one request's handling, beyond which it counts as timed out
    journal_retention_s: float = 30 * 86400.0
    max_reply_bytes: int = 1 << 20
    max_request_bytes: int = 1 << 20  # larger requests are answered FAILED RequestTooLarge
    max_query_intervals: int = 50000  # time window / interval x meters, per request
    meter_config_rules: tuple[MeterConfigRule, ...] = ()
    # MeterReadSchedule (issue 11 item 3): schedules kept, how many reach one meter, how often
    max_read_schedules: int = 64
    max_read_schedules_per_meter: int = 4
    min_read_interval_s: float = 900.0
    # effective-dated orders (issue 11 item 7): pending in all and per meter, how far ahead,
    # and how late one that came due while the gateway was down may still run
    max_pending_orders: int = 10000
    max_orders_per_meter: int = 4
    order_horizon_s: float = 90 * 86400.0
    order_grace_s: float = 3600.0

    def serves(self, noun: str) -> bool:
        return bool(self.enabled.get(noun, False))

    def meter_config_allows(
        self, class_id: int, obis: str, attribute: int | None = None, method: int | None = None
    ) -> MeterConfigRule | None:
        """The first rule allowing this SET (attribute) or ACTION (method), or None."""
        for rule in self.meter_config_rules:
            if rule.allows(class_id, obis, attribute, method):
                return rule
        return None


@dataclass(frozen=True, slots=True)
class DataStoreConfig:
    """``[datastore]``: the queryable copy of what was published (use cases 3 and 11)."""

    retention_days: float = 90.0
    """Rows older than this are pruned (at most once a day)."""


EXPORT_FORMATS = ("csv",)


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """``[export]``: the daily bulk export (bulk/readings in parts, optional files)."""

    part_max_bytes: int = 256 << 10
    """Each bulk/readings message, envelope included, is at most this many bytes."""
    directory: Path | None = None
    """Where the export is also written as files an MDM picks up (None: no files)."""
    formats: tuple[str, ...] = ("csv",)


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"]
    format: Literal["auto", "json", "console"]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    gateway: GatewaySection
    broker: BrokerConfig
    meters: tuple[MeterConfig, ...]  # in file order: main file, includes, CSV files
    meters_by_id: Mapping[str, MeterConfig] = field(repr=False)
    models: Mapping[str, ModelConfig]
    buses: Mapping[str, BusConfig]
    schedules: SchedulesConfig
    limits: LimitsConfig
    outbox: OutboxConfig
    metrics: ListenConfig
    push: PushConfig
    logging: LoggingConfig
    source: Path
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    datastore: DataStoreConfig = field(default_factory=DataStoreConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    escrow: EscrowConfig | None = None

    def meter(self, meter_id: str) -> MeterConfig:
        """The meter with this id (KeyError if there is none)."""
        return self.meters_by_id[meter_id]

    def group(self, name: str) -> tuple[MeterConfig, ...]:
        return tuple(m for m in self.meters if name in m.groups)
