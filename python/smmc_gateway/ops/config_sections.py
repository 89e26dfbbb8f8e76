"""Validation of the gateway-wide sections of the configuration: [gateway], [broker],
[models.NAME], [[buses]], [schedules], [limits], [outbox], [metrics], [push], [logging],
[datastore], [export].
Meters (TOML, includes and CSV) and key files are in `config_meters`.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import stat
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast

from smmc_gateway.models import parse as model_parse
from smmc_gateway.models import shipped as model_files
from smmc_gateway.ops import config_values as v
from smmc_gateway.ops.config_clock import clock_section
from smmc_gateway.ops.config_model import (
    DEFAULT_OBIS,
    EXPORT_FORMATS,
    BrokerConfig,
    BusConfig,
    DataStoreConfig,
    ExportConfig,
    GatewaySection,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    ModelConfig,
    OutboxClassLimits,
    OutboxConfig,
    Parity,
    RegisterSpec,
    SchedulesConfig,
    Secret,
    TlsConfig,
)
from smmc_gateway.ops.config_quirks import QUIRK_KEYS, quirk_settings
from smmc_gateway.ops.config_values import Problems, Table, join

DEFAULT_REGISTERS = (
    RegisterSpec("1.0.1.8.0.255", "active_energy_import", None, "Wh"),
    RegisterSpec("1.0.2.8.0.255", "active_energy_export", None, "Wh"),
    RegisterSpec("1.0.3.8.0.255", "reactive_energy_import", None, "varh"),
    RegisterSpec("1.0.4.8.0.255", "reactive_energy_export", None, "varh"),
)
OUTBOX_CLASSES = ("readings", "bulk", "events", "alarms", "replies")
DROPPABLE = ("readings", "bulk")


def resolve_path(raw: str, base: Path, where: str, probs: Problems) -> Path | None:
    """A path relative to the config file's folder; $VARS (e.g. $CREDENTIALS_DIRECTORY) expand."""
    expanded = os.path.expandvars(raw)
    if "$" in expanded:
        probs.add(where, f"{v.show(raw)} names an environment variable that is not set")
        return None
    p = Path(expanded)
    return p if p.is_absolute() else base / p


def check_private_file(path: Path, where: str, probs: Problems, what: str) -> bool:
    """A secret-holding file must exist and be accessible by its owner only."""
    try:
        st = path.stat()
    except OSError as exc:
        probs.add(where, f"{what} {path} cannot be read: {exc.strerror}")
        return False
    if not stat.S_ISREG(st.st_mode):
        probs.add(where, f"{what} {path} is not a regular file")
        return False
    if st.st_mode & 0o077:
        probs.add(
            where,
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it holds secrets and must "
            f"be readable by the service only (chmod 600 {path})",
        )
        return False
    return True


def gateway_section(t: Table, base: Path, probs: Problems) -> GatewaySection:
    p = "gateway"
    v.check_keys(
        t,
        p,
        (
            "id",
            "state_dir",
            "key_file",
            "client_system_title",
            "key_encryption_key_file",
            "operator",
        ),
        probs,
    )
    if "id" not in t:
        probs.add(join(p, "id"), 'is required (the gateway\'s MQTT topic level, like "gw-0001")')
        gid = "invalid"
    else:
        gid = v.check_id(t["id"], join(p, "id"), probs, "gateway id") or "invalid"
    default_state = os.environ.get("STATE_DIRECTORY", "/var/lib/smmc-gateway").split(":")[0]
    raw_state = v.get_str(t, "state_dir", p, probs, default_state) or default_state
    state_dir = resolve_path(raw_state, base, join(p, "state_dir"), probs) or Path(default_state)
    key_file = None
    raw_key = v.get_opt_str(t, "key_file", p, probs)
    if raw_key is not None:
        key_file = resolve_path(raw_key, base, join(p, "key_file"), probs)
    title = None
    if "client_system_title" in t:
        title = v.get_hex(t["client_system_title"], join(p, "client_system_title"), probs, 8)
    from smmc_gateway.ops.config_keys import gateway_kek  # it imports this module

    kek_file, kek = gateway_kek(t, base, probs)
    operator = v.get_opt_str(t, "operator", p, probs)
    if operator is not None and (
        not operator.strip() or len(operator) > 200 or any(ord(ch) < 32 for ch in operator)
    ):
        probs.add(
            join(p, "operator"),
            "must be the distribution company's name: 1 to 200 "
            "characters, no line breaks or control characters (it is printed as the "
            "author of the interoperability profiles)",
        )
        operator = None
    return GatewaySection(
        gid,
        state_dir,
        key_file,
        title,
        kek_file,
        kek,
        operator=operator.strip() if operator is not None else None,
    )


def broker_section(t: Table, base: Path, gateway_id: str, probs: Problems) -> BrokerConfig:
    p = "broker"
    allowed = ("host", "port", "tls", "username", "password_file", "keepalive", "client_id")
    v.check_keys(t, p, allowed, probs)
    host = v.get_str(t, "host", p, probs) or ""
    tls = None
    if "tls" in t:
        tp = join(p, "tls")
        tt = v.table(t["tls"], tp, probs)
        v.check_keys(tt, tp, ("ca", "cert", "key"), probs)
        files: dict[str, Path | None] = {}
        known = len(probs.items)
        for name in ("ca", "cert", "key"):
            raw = v.get_opt_str(tt, name, tp, probs)
            path = resolve_path(raw, base, join(tp, name), probs) if raw else None
            if path is not None and not path.is_file():
                probs.add(join(tp, name), f"{path} does not exist or is not a file")
            files[name] = path
        if (files["cert"] is None) != (files["key"] is None):
            probs.add(tp, "cert and key go together: both for a client certificate, or neither")
        elif len(probs.items) == known:  # every file is there: load them as the uplink will
            _check_tls_files(files["ca"], files["cert"], files["key"], tp, probs)
        tls = TlsConfig(files["ca"], files["cert"], files["key"])
    port = v.get_int(t, "port", p, probs, 8883 if tls else 1883, 1, 65535)
    if tls is None and port == MQTT_TLS_PORT:
        probs.add(
            join(p, "port"),
            f"{port} is the MQTT-over-TLS port but there is no "
            "[broker.tls] table: the CONNECT (and its password) would go in clear; add "
            "[broker.tls] (an empty table uses the system's CAs)",
        )
    password = None
    password_file = None
    raw_pw = v.get_opt_str(t, "password_file", p, probs)
    if raw_pw is not None:
        where = join(p, "password_file")
        password_file = resolve_path(raw_pw, base, where, probs)
        if password_file and check_private_file(password_file, where, probs, "password file"):
            password = Secret(password_file.read_bytes().rstrip(b"\r\n"))
    client_id = v.get_str(t, "client_id", p, probs, f"smmc-{gateway_id}") or ""
    return BrokerConfig(
        host=host,
        port=port,
        tls=tls,
        username=v.get_opt_str(t, "username", p, probs),
        password=password,
        password_file=password_file,
        keepalive_s=v.get_int(t, "keepalive", p, probs, 60, 5, 65535),
        client_id=client_id,
    )


MQTT_TLS_PORT = 8883


class _KeyNeedsPassword(Exception):
    pass


def _refuse_password() -> bytes:
    raise _KeyNeedsPassword  # never let OpenSSL prompt on a terminal


def _ssl_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return (
            str(exc.reason).lower().replace("_", " ")
            if exc.reason
            else "it is not in PEM format or is damaged"
        )
    return exc.strerror or str(exc)


def _check_tls_files(
    ca: Path | None, cert: Path | None, key: Path | None, tp: str, probs: Problems
) -> None:
    """Load the TLS files as the uplink will: a CA bundle, certificate or key that cannot
    be used is a problem naming the file and why (never found at the first connect)."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    except OSError as exc:
        probs.add(
            join(tp, "ca"),
            f"{ca} is not a usable CA bundle: {_ssl_reason(exc)} "
            "(a PEM file of CA certificates is expected)",
        )
        return
    if cert is None or key is None:
        return
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(cert))
    except OSError as exc:
        probs.add(
            join(tp, "cert"),
            f"{cert} is not a usable certificate: {_ssl_reason(exc)} "
            "(a PEM certificate is expected)",
        )
        return
    try:
        ctx.load_cert_chain(str(cert), str(key), password=_refuse_password)
    except _KeyNeedsPassword:
        probs.add(
            join(tp, "key"),
            f"{key} is encrypted with a password; the gateway takes "
            "an unencrypted key (readable by the service only)",
        )
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            probs.add(
                tp,
                f"the certificate {cert} and the key {key} do not match (the key is "
                "not the certificate's private key)",
            )
        else:
            probs.add(
                join(tp, "key"),
                f"{key} is not a usable private key: "
                f"{_ssl_reason(exc)} (a PEM private key is expected)",
            )
    except OSError as exc:
        probs.add(join(tp, "key"), f"{key} cannot be read: {_ssl_reason(exc)}")


def model_section(name: str, t: Table, probs: Problems, shipped: bool = False) -> ModelConfig:
    """A model section (or, ``shipped``, a shipped model file's table), ``extends`` applied
    (smmc_gateway.models.shipped); the device-model tables: smmc_gateway.models.parse."""
    p = f"models.{name}"
    t = model_files.resolve(name, t, p, probs, shipped)
    v.check_keys(
        t,
        p,
        ("obis", "capture_period", "registers", *QUIRK_KEYS, "clock", *model_parse.MODEL_KEYS),
        probs,
    )
    quirks = quirk_settings(t, p, probs)
    extras = model_parse.parse_extras(p, t, probs)
    obis = dict(DEFAULT_OBIS)
    ot = v.table(t.get("obis"), join(p, "obis"), probs)
    v.check_keys(ot, join(p, "obis"), DEFAULT_OBIS.keys(), probs)
    for key in ot:
        if key in DEFAULT_OBIS:
            obis[key] = v.get_obis(ot, key, join(p, "obis"), probs, DEFAULT_OBIS[key]) or ""
    obis.update(extras.obis)  # an alarm register's, an event log's own obis
    registers = list(DEFAULT_REGISTERS)
    if "registers" in t:
        raw = t["registers"]
        registers = []
        if not isinstance(raw, list):
            probs.add(join(p, "registers"), f"{v.show(raw)} is not an array of tables")
            raw = []
        for i, item in enumerate(raw):
            rp = join(join(p, "registers"), i)
            rt = v.table(item, rp, probs)
            v.check_keys(rt, rp, ("obis", "name", "scaler", "unit"), probs)
            code = v.get_obis(rt, "obis", rp, probs, None) or ""
            registers.append(
                RegisterSpec(
                    obis=code,
                    name=v.get_str(rt, "name", rp, probs, code) or code,
                    scaler=v.get_opt_int(rt, "scaler", rp, probs, -128, 127),
                    unit=v.get_opt_str(rt, "unit", rp, probs),
                )
            )
    return ModelConfig(
        name=name,
        obis=MappingProxyType(obis),
        capture_period_s=v.get_duration(t, "capture_period", p, probs, 900, 1, 86400),
        registers=tuple(registers),
        quirks=quirks,
        clock=clock_section(t.get("clock"), p, probs),
        alarms=extras.alarms,
        pushes=extras.pushes,
        notifications=extras.notifications,
        event_logs=extras.event_logs,
        values=extras.values,
        identification=extras.identification,
        description=extras.description,
        source=extras.source,
        extends=extras.extends,
    )


def bus_section(t: Table, p: str, base: Path, probs: Problems) -> BusConfig:
    allowed = ("name", "device", "baud", "data_bits", "parity", "stop_bits", "kind")
    v.check_keys(t, p, allowed, probs)
    name = v.check_id(t.get("name", ""), join(p, "name"), probs, "bus name") or ""
    raw_dev = v.get_str(t, "device", p, probs)
    device = resolve_path(raw_dev, base, join(p, "device"), probs) if raw_dev else None
    baud = v.get_int(t, "baud", p, probs, 9600, 300, 921600)
    standard = (
        300,
        600,
        1200,
        2400,
        4800,
        9600,
        19200,
        38400,
        57600,
        115200,
        230400,
        460800,
        921600,
    )
    if baud not in standard:
        rates = ", ".join(map(str, standard))
        probs.add(join(p, "baud"), f"{baud} is not a standard rate ({rates})")
    return BusConfig(
        name=name,
        device=device or Path("/dev/null"),
        baud=baud,
        data_bits=v.get_int(t, "data_bits", p, probs, 8, 7, 8),
        parity=cast(Parity, v.get_choice(t, "parity", p, probs, ("none", "even", "odd"), "none")),
        stop_bits=v.get_int(t, "stop_bits", p, probs, 1, 1, 2),
        kind=cast(
            Literal["rs485", "serial"],
            v.get_choice(t, "kind", p, probs, ("rs485", "serial"), "rs485"),
        ),
    )


def schedules_section(t: Table, probs: Problems) -> SchedulesConfig:
    p = "schedules"
    allowed = (
        "load_profile_every",
        "load_profile_jitter",
        "registers_every",
        "events_every",
        "bulk_export_at",
        "clock_sync_at",
        "clock_tolerance",
        "clock_shift_limit",
        "clock_drift_threshold",
        "clock_drift_min_interval",
    )
    v.check_keys(t, p, allowed, probs)
    every = v.get_duration(t, "load_profile_every", p, probs, 4 * 3600, 60, 7 * 86400)
    jitter = v.get_duration(t, "load_profile_jitter", p, probs, min(600, every / 2), 0, every)
    if jitter >= every and "load_profile_jitter" in t:
        probs.add(join(p, "load_profile_jitter"), "must be shorter than load_profile_every")
    tolerance = v.get_duration(t, "clock_tolerance", p, probs, 2, 0, 900)
    shift = v.get_duration(t, "clock_shift_limit", p, probs, 900, 0, 900)
    if shift < tolerance:
        probs.add(join(p, "clock_shift_limit"), "must not be smaller than clock_tolerance")
    # 0 turns drift detection off: collections then do not read the clock
    drift: float | None = v.get_duration(t, "clock_drift_threshold", p, probs, 30, 0, 86400)
    if drift and drift <= tolerance:
        probs.add(
            join(p, "clock_drift_threshold"),
            f"{drift:g}s must be larger than "
            f"clock_tolerance ({tolerance:g}s), or 0 to turn drift detection off",
        )
    return SchedulesConfig(
        load_profile_every_s=every,
        load_profile_jitter_s=jitter,
        registers_every_s=v.get_duration(t, "registers_every", p, probs, 3600, 60, 7 * 86400),
        events_every_s=v.get_duration(t, "events_every", p, probs, 900, 60, 7 * 86400),
        bulk_export_at=v.get_time_of_day(t, "bulk_export_at", p, probs, dt.time(1, 30))
        or dt.time(1, 30),
        clock_sync_at=v.get_time_of_day(t, "clock_sync_at", p, probs, dt.time(3, 0))
        or dt.time(3, 0),
        clock_tolerance_s=tolerance,
        clock_shift_limit_s=shift,
        clock_drift_threshold_s=drift or None,
        clock_drift_min_interval_s=v.get_duration(
            t, "clock_drift_min_interval", p, probs, 86400, 60, 30 * 86400
        ),
    )


def datastore_section(t: Table, probs: Problems) -> DataStoreConfig:
    p = "datastore"
    v.check_keys(t, p, ("retention",), probs)
    days = v.get_duration(t, "retention", p, probs, 90 * 86400, 86400, 3650 * 86400) / 86400
    return DataStoreConfig(retention_days=days)


def export_section(t: Table, base: Path, probs: Problems) -> ExportConfig:
    p = "export"
    v.check_keys(t, p, ("part_max_bytes", "directory", "formats"), probs)
    size = v.get_opt_size(t, "part_max_bytes", p, probs) or 256 << 10
    if not 16 << 10 <= size <= 64 << 20:
        probs.add(join(p, "part_max_bytes"), f"{size} bytes is out of range (16KiB..64MiB)")
        size = 256 << 10
    directory = None
    raw = v.get_opt_str(t, "directory", p, probs)
    if raw is not None:
        directory = resolve_path(raw, base, join(p, "directory"), probs)
        if directory is not None and directory.exists() and not directory.is_dir():
            probs.add(join(p, "directory"), f"{directory} exists and is not a directory")
    formats: list[str] = []
    for i, name in enumerate(
        v.get_str_list(t, "formats", p, probs) if "formats" in t else list(EXPORT_FORMATS)
    ):
        if name not in EXPORT_FORMATS:
            probs.add(
                join(join(p, "formats"), i),
                f"{v.show(name)} is not one of "
                f"{' | '.join(EXPORT_FORMATS)}{v.suggest(name, EXPORT_FORMATS)}",
            )
        elif name not in formats:
            formats.append(name)
    if "formats" in t and directory is None:
        probs.add(join(p, "formats"), "needs [export] directory (where the files go)")
    return ExportConfig(part_max_bytes=size, directory=directory, formats=tuple(formats))


def limits_section(t: Table, probs: Problems) -> LimitsConfig:
    p = "limits"
    allowed = (
        "max_tcp_sessions",
        "sessions_per_bus",
        "retry_attempts",
        "backoff_initial",
        "backoff_max",
        "backoff_multiplier",
        "response_timeout",
        "reserved_for_collection",
        "max_block_transfer",
    )
    v.check_keys(t, p, allowed, probs)
    initial = v.get_duration(t, "backoff_initial", p, probs, 5, 0.1, 3600)
    maximum = v.get_duration(t, "backoff_max", p, probs, 600, 0.1, 86400)
    if maximum < initial:
        probs.add(join(p, "backoff_max"), "must not be smaller than backoff_initial")
    return LimitsConfig(
        max_tcp_sessions=v.get_int(t, "max_tcp_sessions", p, probs, 64, 1, 10000),
        sessions_per_bus=v.get_int(t, "sessions_per_bus", p, probs, 1, 1, 1),
        retry_attempts=v.get_int(t, "retry_attempts", p, probs, 3, 0, 100),
        backoff_initial_s=initial,
        backoff_max_s=maximum,
        backoff_multiplier=v.get_float(t, "backoff_multiplier", p, probs, 2.0, 1.0, 10.0),
        response_timeout_s=v.get_duration(t, "response_timeout", p, probs, 30, 0.1, 600),
        reserved_for_collection=v.get_float(t, "reserved_for_collection", p, probs, 0.25, 0.0, 0.9),
        max_block_transfer=_block_ceiling(t, p, probs),
    )


def _block_ceiling(t: Table, p: str, probs: Problems) -> int:
    size = v.get_opt_size(t, "max_block_transfer", p, probs) or 8 << 20
    if not 64 << 10 <= size <= 1 << 30:
        probs.add(join(p, "max_block_transfer"), f"{size} bytes is out of range (64KiB..1GiB)")
        return 8 << 20
    return size


def outbox_section(t: Table, state_dir: Path, probs: Problems) -> OutboxConfig:
    p = "outbox"
    v.check_keys(t, p, ("path", *OUTBOX_CLASSES), probs)
    raw = v.get_str(t, "path", p, probs, "outbox.sqlite") or "outbox.sqlite"
    path = resolve_path(raw, state_dir, join(p, "path"), probs) or state_dir / "outbox.sqlite"
    classes: dict[str, OutboxClassLimits] = {}
    for name in OUTBOX_CLASSES:
        cp = join(p, name)
        ct = v.table(t.get(name), cp, probs)
        droppable = name in DROPPABLE
        if droppable:
            v.check_keys(ct, cp, ("ttl", "max_messages", "max_bytes"), probs)
            classes[name] = OutboxClassLimits(
                ttl_s=v.get_opt_duration(ct, "ttl", cp, probs, 60, 366 * 86400),
                max_messages=v.get_opt_int(ct, "max_messages", cp, probs, 1, 10**9),
                max_bytes=v.get_opt_size(ct, "max_bytes", cp, probs),
                droppable=True,
            )
        else:
            for key in ct:
                probs.add(
                    join(cp, key),
                    f"{name} are never dropped, so they take no ttl or size cap "
                    f"(only {' and '.join(DROPPABLE)} do)",
                )
            classes[name] = OutboxClassLimits(None, None, None, droppable=False)
    return OutboxConfig(path=path, classes=MappingProxyType(classes))


def listen_section(
    t: Table, p: str, probs: Problems, address: str, port: int, enabled: bool = True
) -> ListenConfig:
    v.check_keys(t, p, ("enabled", "address", "port"), probs)
    return ListenConfig(
        enabled=v.get_bool(t, "enabled", p, probs, enabled),
        address=v.get_str(t, "address", p, probs, address) or address,
        port=v.get_int(t, "port", p, probs, port, 1, 65535),
    )


def logging_section(t: Table, probs: Problems) -> LoggingConfig:
    p = "logging"
    v.check_keys(t, p, ("level", "format"), probs)
    level = v.get_choice(t, "level", p, probs, ("debug", "info", "warning", "error"), "info")
    fmt = v.get_choice(t, "format", p, probs, ("auto", "json", "console"), "auto")
    return LoggingConfig(
        level=cast(Literal["debug", "info", "warning", "error"], level),
        format=cast(Literal["auto", "json", "console"], fmt),
    )
