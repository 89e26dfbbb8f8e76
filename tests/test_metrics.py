"""Metrics: names and base units, values in the parsed exposition, served over HTTP, on
loopback unless configured otherwise (issue 7 item 15); the daemon counts the push
connections it closes by reason."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from smmc_gateway.ops.metrics import GatewayMetrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_names_follow_conventions() -> None:
    m = GatewayMetrics()
    names = {f.name for f in text_string_to_metric_families(m.exposition().decode())}
    assert names, "no metrics registered"
    for name in names:
        assert name.startswith("smmc_"), name
    for expected in (
        "smmc_reads",
        "smmc_session_duration_seconds",
        "smmc_wire_bytes",
        "smmc_meters_reachable",
        "smmc_outbox_depth_messages",
        "smmc_outbox_oldest_age_seconds",
        "smmc_outbox_dropped_messages",
        "smmc_clock_deviation_seconds",
        "smmc_push_notifications",
        "smmc_push_connections_closed",
        "smmc_commands",
        "smmc_process_resident_memory_bytes",
        "smmc_process_start_time_seconds",
    ):
        assert expected in names, expected


def test_values_in_exposition() -> None:
    m = GatewayMetrics()
    m.read_done("load_profile", ok=True)
    m.read_done("load_profile", ok=True)
    m.read_done("registers", ok=False)
    m.bytes_sent("tcp", 120)
    m.bytes_received("tcp", 4000)
    m.session_duration.labels(transport="serial").observe(3.2)
    m.meters_reachable.set(4998)
    m.outbox_depth.labels("readings").set(17)
    m.outbox_oldest_age.labels("readings").set(42.5)
    m.outbox_dropped.labels("readings", "ttl").inc(3)
    m.clock_deviation.observe(12)
    m.push_notifications.labels("refused").inc()
    m.commands.labels(noun="EndDeviceControls", result="ok").inc()
    s = samples(m.exposition().decode())
    assert s[("smmc_reads_total", (("result", "ok"), ("use_case", "load_profile")))] == 2
    assert s[("smmc_reads_total", (("result", "failed"), ("use_case", "registers")))] == 1
    assert s[("smmc_wire_bytes_total", (("direction", "tx"), ("transport", "tcp")))] == 120
    assert s[("smmc_wire_bytes_total", (("direction", "rx"), ("transport", "tcp")))] == 4000
    assert s[("smmc_session_duration_seconds_count", (("transport", "serial"),))] == 1
    assert s[("smmc_session_duration_seconds_sum", (("transport", "serial"),))] == 3.2
    assert s[("smmc_meters_reachable", ())] == 4998
    assert s[("smmc_outbox_depth_messages", (("class", "readings"),))] == 17
    assert s[("smmc_outbox_oldest_age_seconds", (("class", "readings"),))] == 42.5
    dropped = ("smmc_outbox_dropped_messages_total", (("class", "readings"), ("reason", "ttl")))
    assert s[dropped] == 3
    assert s[("smmc_clock_deviation_seconds_bucket", (("le", "30.0"),))] == 1
    assert s[("smmc_clock_deviation_seconds_bucket", (("le", "10.0"),))] == 0
    assert s[("smmc_push_notifications_total", (("result", "refused"),))] == 1
    key = ("smmc_commands_total", (("noun", "EndDeviceControls"), ("result", "ok")))
    assert s[key] == 1


def test_registries_are_independent() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.meters_reachable.set(5)
    assert samples(b.exposition().decode())[("smmc_meters_reachable", ())] == 0


def test_http_endpoint() -> None:
    m = GatewayMetrics()
    m.meters_reachable.set(7)
    server = m.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            assert r.status == 200
            body = r.read().decode()
        assert samples(body)[("smmc_meters_reachable", ())] == 7
    finally:
        server.close()


def test_serve_binds_loopback_unless_told_otherwise() -> None:
    server = GatewayMetrics().serve(port=0)
    try:
        assert server.server.socket.getsockname()[0] == "127.0.0.1"
    finally:
        server.close()


async def test_the_daemon_serves_metrics_on_loopback_by_default_and_counts_push_refusals(
    mosquitto: Any, tmp_path: Path
) -> None:
    from smmc_gateway.headend.daemon import DaemonOptions, Gateway
    from smmc_gateway.headend.labconfig import write_lab_config
    from smmc_gateway.ops.config import load_config
    from smmc_gateway.usecases.clock import FixedTimeSource

    from tests.support_sim import free_ports

    metrics_port, push_port = free_ports(2)
    meters = [{"meter_id": "m-1", "port": 4061, "auth": "none"}]
    path = write_lab_config(
        tmp_path / "gw", meters, push_port=push_port, broker=(mosquitto.host, mosquitto.port)
    )
    text = path.read_text()
    assert "[metrics]\nenabled = false\n" in text
    path.write_text(
        text.replace("[metrics]\nenabled = false\n", f"[metrics]\nport = {metrics_port}\n")
    )  # no address
    config = load_config(path)
    gw = Gateway(config, DaemonOptions(time_source=FixedTimeSource(synced=True), first_read_s=3600))
    await gw.start()
    try:
        assert gw.metrics_server is not None and gw.metrics_server.port == metrics_port
        assert gw.metrics_server.server.socket.getsockname()[0] == "127.0.0.1"
        # a push connection from an address that is no configured meter: closed, counted
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", push_port, local_addr=("127.0.0.2", 0)
        )
        with contextlib.suppress(ConnectionResetError):  # closed unread: EOF or reset
            assert await asyncio.wait_for(reader.read(1), 10) == b""
        writer.close()
        body = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
    finally:
        await gw.stop()
    key = ("smmc_push_connections_closed_total", (("reason", "unknown_peer"),))
    assert samples(body)[key] == 1
