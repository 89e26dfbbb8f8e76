"""Prometheus metrics of the gateway (names `smmc_…`, base units).

`GatewayMetrics()` owns its own `CollectorRegistry`, so tests (and several gateways in
one process) do not collide; `serve(address, port)` exposes it over HTTP at /metrics,
on loopback (127.0.0.1) unless an address is given (``[metrics] address``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)

SESSION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
LOOPBACK = "127.0.0.1"
CLOCK_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400)


@dataclass(slots=True)
class MetricsServer:
    """The running /metrics HTTP server; `close()` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class GatewayMetrics:
    """Every metric the gateway exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.reads = Counter(
            "smmc_reads",
            "Meter reads by use case and result (ok|failed)",
            ["use_case", "result"],
            registry=r,
        )
        self.session_duration = Histogram(
            "smmc_session_duration_seconds",
            "Duration of a meter session, connect to release",
            ["transport"],
            buckets=SESSION_BUCKETS,
            registry=r,
        )
        self.wire_bytes = Counter(
            "smmc_wire_bytes",
            "Bytes on the wire to and from meters",
            ["direction", "transport"],
            registry=r,
        )
        self.meters_reachable = Gauge(
            "smmc_meters_reachable",
            "Meters whose last session succeeded",
            registry=r,
        )
        self.meters_configured = Gauge(
            "smmc_meters_configured",
            "Meters in the configuration",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "smmc_outbox_depth_messages",
            "Messages waiting in the outbox",
            ["class"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "smmc_outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the outbox",
            ["class"],
            registry=r,
        )
        self.outbox_dropped = Counter(
            "smmc_outbox_dropped_messages",
            "Messages dropped from the outbox (TTL or size cap)",
            ["class", "reason"],
            registry=r,
        )
        self.clock_deviation = Histogram(
            "smmc_clock_deviation_seconds",
            "Absolute meter clock deviation found at sync",
            buckets=CLOCK_BUCKETS,
            registry=r,
        )
        self.clock_adjustments = Counter(
            "smmc_clock_adjustments",
            "Meter clock adjustments by method (shift_time|set)",
            ["method"],
            registry=r,
        )
        self.push_notifications = Counter(
            "smmc_push_notifications",
            "Meter push notifications by result (accepted|refused)",
            ["result"],
            registry=r,
        )
        self.push_connections_closed = Counter(
            "smmc_push_connections_closed",
            "Push connections the gateway closed, by reason (unknown_peer|max_connections|"
            "max_per_peer|first_frame_timeout|idle_timeout|malformed)",
            ["reason"],
            registry=r,
        )
        self.protocol_quirks = Counter(
            "smmc_protocol_quirks",
            "Quirks of a meter tolerated (tolerant reception), by quirk",
            ["meter", "quirk"],
            registry=r,
        )
        self.association_recoveries = Counter(
            "smmc_association_recoveries",
            "Stale associations of a meter released and retried, by cause",
            ["meter", "cause"],
            registry=r,
        )
        self.commands = Counter(
            "smmc_commands",
            "Inbound MQTT commands by noun and result",
            ["noun", "result"],
            registry=r,
        )
        self.command_refusals = Counter(
            "smmc_command_refusals",
            "Inbound MQTT requests answered without running, or not "
            "answerable, by reason (bad|unanswerable|duplicate|busy|poison|timeout|"
            "reply_too_large)",
            ["reason"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "smmc_mqtt_connected",
            "1 while connected to the MQTT broker",
            registry=r,
        )
        # smmc_process_cpu_seconds_total, smmc_process_resident_memory_bytes, open fds, ...
        self.process = ProcessCollector(namespace="smmc", registry=r)

    def protocol_quirk(self, meter: str, quirk: str) -> None:
        """A meter's quirk was tolerated (``dlms.observe.SessionObserver``)."""
        self.protocol_quirks.labels(meter=meter, quirk=quirk).inc()

    def association_recovery(self, meter: str, cause: str) -> None:
        """A meter's stale association was released and retried (``SessionObserver``)."""
        self.association_recoveries.labels(meter=meter, cause=cause).inc()

    def read_done(self, use_case: str, ok: bool) -> None:
        self.reads.labels(use_case=use_case, result="ok" if ok else "failed").inc()

    def bytes_sent(self, transport: str, n: int) -> None:
        self.wire_bytes.labels(direction="tx", transport=transport).inc(n)

    def bytes_received(self, transport: str, n: int) -> None:
        self.wire_bytes.labels(direction="rx", transport=transport).inc(n)

    def exposition(self) -> bytes:
        """The text exposition format, as served at /metrics."""
        return generate_latest(self.registry)

    def serve(self, address: str = LOOPBACK, port: int = 9108) -> MetricsServer:
        """Serve /metrics on a background thread (port 0 picks a free port), on
        loopback unless ``address`` names another (prometheus_client's own default
        would be every interface)."""
        server, thread = start_http_server(port, addr=address, registry=self.registry)
        return MetricsServer(server, thread)
