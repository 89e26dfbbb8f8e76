"""Many gateways, one central system (issue 11 item 10).

    .venv/bin/python bench/multi_gateway.py                 # 10 gateways x 100 meters
    .venv/bin/python bench/multi_gateway.py --smoke --json  # 2 x 3, a quick check
    .venv/bin/python bench/multi_gateway.py --rmqttd BIN --rmqttd-nodes 3   # rmqttd cluster

``--gateways`` gateway processes (``smmc-gateway run``), each with its own simulator
process of ``--meters`` HLS-GMAC TCP meters, publish to one broker; ``--consumers``
central consumers (in this process) share the load in one MQTT v5 shared-subscription
group (``$share/central/smmc/v1/+/#``). One gateway is SIGKILLed ``--kill-after``
seconds in and restarted ``--down`` seconds later. After ``--duration`` every gateway
is stopped (SIGTERM: it flushes its outbox) and the consumers are given time to
receive what is left.

What is checked (:func:`check`), per gateway: every message it stored (its outbox
``seq`` 1..N, gap-free as stored) reached the group — none lost; a message received more
than once is a repeat of the same messageId with the same payload; two readings messages
with the same data (meter, first and last interval, rows) carry the same messageId; every
meter's readings arrived; every consumer of the group took a share.

The broker: a Mosquitto started here (default), one given with ``--broker HOST:PORT``,
or (``--rmqttd BIN``) an rmqttd raft cluster of ``--rmqttd-nodes`` nodes started here
(raft cluster, retainer and shared-subscription plugins, MQTT v5) with the gateways
attached to node 1 and the consumers to node 2; node 1 is killed and restarted mid-run
as well (not with ``--no-node-kill``). Two nodes route, but a two-node raft cluster does
not survive losing one (no quorum: the restarted node cannot rejoin); three do. See
docs/multi-gateway.md. The CI test
(``tests/test_multi_gateway.py``) runs :func:`run` at a small size against Mosquitto.
Prints what it measured (``--json``: one JSON object); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

import aiomqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from smmc_gateway import runtime  # noqa: E402
from smmc_gateway.headend.labconfig import write_lab_config  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
GROUP = "central"


@dataclass
class Spec:
    gateways: int = 10
    meters: int = 100
    consumers: int = 3
    duration_s: float = 150.0
    kill_after_s: float = 20.0
    down_s: float = 5.0
    drain_s: float = 120.0
    broker: tuple[str, int] | None = None  # None: start a Mosquitto here
    consumer_broker: tuple[str, int] | None = None  # None: the same broker
    workdir: Path | None = None
    log_level: str = "warning"
    broker_kill: Any = None
    """Called (no arguments) at ``kill_after_s`` besides the gateway kill: a cluster node."""


@dataclass
class Received:
    consumer: int
    topic: str
    payload: bytes


@dataclass
class GatewayReport:
    gateway: str
    stored: int
    received: int
    deliveries: int
    missing: list[int]
    conflicts: list[str]
    readings: int
    meters_with_readings: int
    meters: int
    restarted: bool
    pending_at_kill: int = 0


@dataclass
class Report:
    spec: dict[str, Any]
    elapsed_s: float
    per_consumer: list[int]
    gateways: list[GatewayReport] = field(default_factory=list)
    duplicate_deliveries: int = 0
    readings_messages: int = 0
    problems: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    d = workdir / "broker"
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"persistence true\npersistence_location {d}/\n"
        "max_queued_messages 1000000\nmax_inflight_messages 100\n"
        f"log_dest file {d}/mosquitto.log\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port("127.0.0.1", port, 10)
        yield ("127.0.0.1", port)
    finally:
        proc.kill()
        proc.wait()


def wait_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


class Gateway:
    """One gateway process with its own simulator process."""

    def __init__(self, index: int, spec: Spec, workdir: Path, broker: tuple[str, int]) -> None:
        self.id = f"gw-{index:02d}"
        self.dir = workdir / self.id
        self.spec = spec
        self.sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smmc_gateway.simulator",
                "--tcp",
                "0",
                "--meters",
                str(spec.meters),
                "--seed",
                str(1000 + index),
                "--auth",
                "hls-gmac",
                "--log-level",
                "warning",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        assert self.sim.stdout is not None
        line = self.sim.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"{self.id}: the simulator did not start")
        listing = json.loads(line)
        meters = [{**m, "port": m["port"]} for m in listing["meters"]]
        self.meter_ids = [str(m["meter_id"]) for m in meters]
        self.config = write_lab_config(
            self.dir,
            meters,
            broker=broker,
            gateway_id=self.id,
            max_tcp_sessions=min(64, spec.meters),
            schedules='load_profile_every = "60s"\nload_profile_jitter = "5s"',
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarted = False
        self.pending_at_kill = 0

    def start(self) -> None:
        log = open(self.dir / "gateway.log", "ab")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smmc_gateway.cli",
                "run",
                "--config",
                str(self.config),
                "--assume-clock-synchronised",
                "--first-read",
                "3600",
                "--log-level",
                self.spec.log_level,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def _query(self, sql: str) -> int:
        from smmc_gateway.ops.config import load_config

        path = load_config(self.config).outbox.path
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute(sql).fetchone()
        except sqlite3.OperationalError:  # no table yet
            return 0
        finally:
            db.close()
        return int(row[0]) if row and row[0] is not None else 0

    def stored(self) -> int:
        """How many messages the gateway ever stored (its outbox seq)."""
        return self._query("SELECT value FROM meta WHERE key='seq'")

    def pending(self) -> int:
        """Messages stored and not acknowledged by the broker yet."""
        return self._query("SELECT count(*) FROM outbox")

    def close(self) -> None:
        self.stop()
        self.sim.terminate()
        try:
            self.sim.wait(10)
        except subprocess.TimeoutExpired:
            self.sim.kill()


async def consume(
    index: int,
    broker: tuple[str, int],
    into: list[Received],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """One member of the shared-subscription group (persistent session, QoS 1)."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                broker[0],
                broker[1],
                identifier=f"central-{index}",
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False,
                properties=props,
            ) as client:
                await client.subscribe(f"$share/{GROUP}/smmc/v1/+/#", qos=1)
                ready.set()
                async for msg in client.messages:
                    if isinstance(msg.payload, bytes):
                        into.append(Received(index, str(msg.topic), msg.payload))
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)  # a broker node restarting: reconnect


def analyse(
    spec: Spec, gateways: list[Gateway], got: list[Received], stored: dict[str, int], elapsed: float
) -> Report:
    report = Report(
        asdict(spec)
        | {
            "broker": str(spec.broker),
            "workdir": str(spec.workdir),
            "broker_kill": spec.broker_kill is not None,
        },
        round(elapsed, 1),
        [0] * spec.consumers,
    )
    by_gw: dict[str, list[dict[str, Any]]] = {g.id: [] for g in gateways}
    for r in got:
        report.per_consumer[r.consumer] += 1
        parts = r.topic.split("/")
        if len(parts) < 4 or parts[2] not in by_gw or parts[3] == "status":
            continue
        doc = json.loads(r.payload)
        doc["_topic"] = r.topic
        by_gw[parts[2]].append(doc)
    for g in gateways:
        docs = by_gw[g.id]
        seqs: dict[int, tuple[str, str]] = {}
        conflicts: list[str] = []
        ids: dict[str, str] = {}
        data_ids: dict[tuple[str, str, str, int], str] = {}
        readings_meters: set[str] = set()
        readings = 0
        for d in docs:
            h = d["header"]
            body = json.dumps(d["payload"], sort_keys=True)
            seen = seqs.setdefault(int(h["seq"]), (h["messageId"], body))
            if seen[0] != h["messageId"]:
                conflicts.append(f"seq {h['seq']} carried {seen[0]} and {h['messageId']}")
            if ids.setdefault(h["messageId"], body) != body:
                conflicts.append(f"messageId {h['messageId']} carried two payloads")
            if h["noun"] == "MeterReadings" and d["_topic"].endswith("/readings"):
                readings += 1
                for mr in d["payload"]["MeterReading"]:
                    meter = mr["Meter"]["mRID"]
                    readings_meters.add(meter)
                    stamps = [
                        r["timeStamp"]
                        for b in mr.get("IntervalBlocks", [])
                        for r in b.get("IntervalReadings", [])
                    ]
                    if stamps:
                        key = (meter, min(stamps), max(stamps), len(stamps))
                        first = data_ids.setdefault(key, h["messageId"])
                        if first != h["messageId"]:
                            conflicts.append(
                                f"{meter}: the same intervals {key[1]}..{key[2]} "
                                f"under {first} and {h['messageId']}"
                            )
        n = stored[g.id]
        missing = sorted(set(range(1, n + 1)) - set(seqs))
        report.duplicate_deliveries += len(docs) - len(seqs)
        report.readings_messages += readings
        report.gateways.append(
            GatewayReport(
                g.id,
                n,
                len(seqs),
                len(docs),
                missing[:50],
                conflicts[:50],
                readings,
                len(readings_meters),
                len(g.meter_ids),
                g.restarted,
                g.pending_at_kill,
            )
        )
    report.problems = check(report)
    return report


def check(report: Report) -> list[str]:
    """Every violated property, in words (empty: the contract held)."""
    out: list[str] = []
    for g in report.gateways:
        if g.stored == 0:
            out.append(f"{g.gateway}: stored nothing")
        if g.missing:
            out.append(
                f"{g.gateway}: {len(g.missing)} stored messages never reached the "
                f"group (seq {g.missing[:10]}...)"
            )
        out.extend(f"{g.gateway}: {c}" for c in g.conflicts)
        if g.meters_with_readings < g.meters:
            out.append(f"{g.gateway}: readings of {g.meters_with_readings} of {g.meters} meters")
    for i, n in enumerate(report.per_consumer):
        if n == 0:
            out.append(f"consumer {i} of the shared group received nothing")
    distinct = sum(g.received for g in report.gateways)
    if len(report.per_consumer) > 1 and sum(report.per_consumer) >= 2 * max(distinct, 1):
        out.append(
            f"{sum(report.per_consumer)} deliveries for {distinct} messages: the "
            "consumers did not share one group (each got everything)"
        )
    return out


async def run(spec: Spec) -> Report:
    """One run (see the module doc); the caller checks ``report.problems``."""
    workdir = spec.workdir or Path(tempfile.mkdtemp(prefix="smmc-multi-"))
    spec.workdir = workdir
    broker_problem: str | None = None
    with contextlib.ExitStack() as stack:
        broker = spec.broker or stack.enter_context(mosquitto(workdir))
        spec.broker = broker
        consumer_broker = spec.consumer_broker or broker
        got: list[Received] = []
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in range(spec.consumers)]
        tasks = [
            asyncio.create_task(consume(i, consumer_broker, got, readies[i], stop))
            for i in range(spec.consumers)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
            gateways: list[Gateway] = []
            for i in range(spec.gateways):
                g = await asyncio.to_thread(Gateway, i, spec, workdir, broker)
                stack.callback(g.close)
                gateways.append(g)
            started = time.monotonic()
            for g in gateways:
                g.start()
            victim = gateways[1 % len(gateways)]
            await asyncio.sleep(spec.kill_after_s)
            # kill it with messages in flight if it has any within a few seconds
            pending = 0
            for _ in range(50):
                pending = await asyncio.to_thread(victim.pending)
                if pending:
                    break
                await asyncio.sleep(0.1)
            victim.kill()
            victim.pending_at_kill = pending
            if spec.broker_kill is not None:
                try:
                    await asyncio.to_thread(spec.broker_kill)
                except RuntimeError as exc:
                    broker_problem = str(exc)
                    print(f"broker: {exc}", file=sys.stderr)
            await asyncio.sleep(spec.down_s)
            victim.start()
            victim.restarted = True
            await asyncio.sleep(max(0.0, spec.duration_s - (time.monotonic() - started)))
            codes = await asyncio.gather(*(asyncio.to_thread(g.stop) for g in gateways))
            elapsed = time.monotonic() - started
            for g, code in zip(gateways, codes, strict=True):
                if code != 0:
                    print(
                        f"warning: {g.id} exited {code} (see {g.dir}/gateway.log)", file=sys.stderr
                    )
            stored = {g.id: await asyncio.to_thread(g.stored) for g in gateways}

            def complete() -> bool:
                seen: dict[str, set[int]] = {g.id: set() for g in gateways}
                for r in got:
                    parts = r.topic.split("/")
                    if len(parts) > 3 and parts[2] in seen and parts[3] != "status":
                        seen[parts[2]].add(int(json.loads(r.payload)["header"]["seq"]))
                return all(len(seen[g]) >= n for g, n in stored.items())

            deadline = time.monotonic() + spec.drain_s
            while not complete() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls
                await asyncio.sleep(1.0)
            await asyncio.sleep(1.0)  # late repeats
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        report = analyse(spec, gateways, got, stored, elapsed)
        if broker_problem is not None:
            report.problems.insert(0, broker_problem)
        return report


# -- a two-node rmqttd cluster (bench only) ---------------------------------------------
RMQTT_PLUGINS = (
    "rmqtt-cluster-raft",
    "rmqtt-retainer",
    "rmqtt-shared-subscription",
    "rmqtt-http-api",
)
"""Started on every node: the raft cluster, retained messages (without it rmqttd refuses the
gateway's retained will), $share/ groups, the HTTP API (cluster status)."""


@dataclass
class RmqttNode:
    id: int
    port: int
    grpc: int
    raft: int
    http: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None


def rmqtt_cluster(binary: str, workdir: Path, count: int = 3) -> tuple[list[RmqttNode], Any]:
    """``count`` rmqttd nodes in one raft cluster (node 1 for the gateways, node 2 for the
    consumers); returns them and a function that kills node 1 and restarts it (it raises
    RuntimeError when the node cannot rejoin). See docs/multi-gateway.md."""
    nodes = [
        RmqttNode(i, free_port(), free_port(), free_port(), free_port(), workdir / f"rmqtt-{i}")
        for i in range(1, count + 1)
    ]
    peers = ", ".join(f'"{n.id}@127.0.0.1:{n.grpc}"' for n in nodes)
    raft_peers = ", ".join(f'"{n.id}@127.0.0.1:{n.raft}"' for n in nodes)
    startups = ", ".join(f'"{name}"' for name in RMQTT_PLUGINS)
    for n in nodes:
        (n.dir / "plugins").mkdir(parents=True, exist_ok=True)
        (n.dir / "rmqtt.toml").write_text(f"""
[node]
id = {n.id}
cookie = "smmc-bench"
busy.check_enable = false

[rpc]
server_addr = "127.0.0.1:{n.grpc}"

[log]
to = "file"
level = "info"
dir = "{n.dir}"
file = "rmqtt.log"

[plugins]
dir = "{n.dir}/plugins"
default_startups = [{startups}]

[listener.tcp.external]
addr = "127.0.0.1:{n.port}"
allow_anonymous = true
max_packet_size = "16M"
max_inflight = 64
max_mqueue_len = 1000000
session_expiry_interval = "2h"
message_expiry_interval = "1h"
max_handshaking_limit = 5000
""")
        (n.dir / "plugins" / "rmqtt-cluster-raft.toml").write_text(f"""
node_grpc_addrs = [{peers}]
raft_peer_addrs = [{raft_peers}]
laddr = "127.0.0.1:{n.raft}"
# without a [raft] table its defaults are not serde's: SO_REUSEADDR off, and a node
# restarted at once cannot bind its raft port again ("Address already in use")
raft.grpc_reuseaddr = true
""")
        (n.dir / "plugins" / "rmqtt-retainer.toml").write_text('storage.type = "ram"\n')
        (n.dir / "plugins" / "rmqtt-http-api.toml").write_text(
            f'http_laddr = "127.0.0.1:{n.http}"\n'
        )

    def start(n: RmqttNode) -> None:
        log = open(n.dir / "stdout.log", "ab")  # noqa: SIM115 - the process keeps it
        n.proc = subprocess.Popen(
            [binary, "-f", str(n.dir / "rmqtt.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=n.dir,
        )
        log.close()

    # One after the other: a node looks for a leader among its peers and, finding none,
    # leads; started together, each finds none and leads a cluster of its own (brokers
    # that route nothing to each other). Node 2 (the consumers') starts first and leads,
    # the others join it; node 1 (the gateways') is the one killed and restarted.
    gw_node, consumer_node = nodes[0], nodes[1]
    for n in (consumer_node, *[m for m in nodes if m is not consumer_node]):
        start(n)
        wait_port("127.0.0.1", n.port, 60)
        time.sleep(2.0)
    for n in [*nodes[2:], gw_node]:
        took = route_probe(("127.0.0.1", n.port), ("127.0.0.1", consumer_node.port), 60)
        print(
            f"rmqttd: node {n.id} -> node {consumer_node.id} routes ({took:.1f}s)", file=sys.stderr
        )

    def kill_and_restart() -> None:
        assert gw_node.proc is not None
        gw_node.proc.kill()
        gw_node.proc.wait()
        time.sleep(3.0)
        start(gw_node)
        try:
            wait_port("127.0.0.1", gw_node.port, 60)
        except RuntimeError:
            tail = (gw_node.dir / "rmqtt.log").read_text(errors="replace").splitlines()[-3:]
            raise RuntimeError(
                f"rmqttd node 1 did not come back after the kill: "
                f"{' | '.join(line[:200] for line in tail)}"
            ) from None
        took = route_probe(("127.0.0.1", gw_node.port), ("127.0.0.1", consumer_node.port), 60)
        print(f"rmqttd: node 1 restarted, routes to node 2 again ({took:.1f}s)", file=sys.stderr)

    return nodes, kill_and_restart


def route_probe(pub: tuple[str, int], sub: tuple[str, int], timeout: float) -> float:
    """Seconds until a QoS 1 message published on ``pub`` reaches a subscriber on ``sub``
    (published and re-subscribed every second until it does); RuntimeError after
    ``timeout``: the cluster does not route."""
    import threading

    import paho.mqtt.client as paho

    got = threading.Event()
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    topic = f"smmc-bench/probe/{tag}"
    v5 = paho.CallbackAPIVersion.VERSION2
    s = paho.Client(v5, client_id=f"probe-sub-{tag}", protocol=paho.MQTTv5)
    s.on_message = lambda *_args: got.set()
    p = paho.Client(v5, client_id=f"probe-pub-{tag}", protocol=paho.MQTTv5)
    started = time.monotonic()
    try:
        s.connect(*sub)
        s.loop_start()
        p.connect(*pub)
        p.loop_start()
        while not got.is_set():
            if time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"the cluster does not route: nothing published on "
                    f"{pub[0]}:{pub[1]} reached {sub[0]}:{sub[1]} in {timeout}s"
                )
            s.subscribe(topic, qos=1)
            time.sleep(0.2)
            p.publish(topic, b"probe", qos=1)
            got.wait(1.0)
        return time.monotonic() - started
    finally:
        for c in (s, p):
            c.loop_stop()
            c.disconnect()


def stop_nodes(*nodes: RmqttNode) -> None:
    for n in nodes:
        if n.proc is not None and n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=10)
    ap.add_argument("--meters", type=int, default=100, help="simulated meters per gateway")
    ap.add_argument("--consumers", type=int, default=3)
    ap.add_argument("--duration", type=float, default=150.0, help="seconds of the run")
    ap.add_argument("--kill-after", type=float, default=20.0)
    ap.add_argument("--down", type=float, default=5.0)
    ap.add_argument("--broker", metavar="HOST:PORT", help="an external broker")
    ap.add_argument("--rmqttd", metavar="BIN", help="run against an rmqttd raft cluster")
    ap.add_argument(
        "--rmqttd-nodes",
        type=int,
        default=2,
        metavar="N",
        help="cluster size (2: as the issue asks; 3: raft's smallest cluster "
        "that survives losing a node)",
    )
    ap.add_argument(
        "--no-node-kill", action="store_true", help="with --rmqttd: do not kill a broker node"
    )
    ap.add_argument("--smoke", action="store_true", help="2 gateways x 3 meters, 30 s")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    spec = Spec(
        args.gateways, args.meters, args.consumers, args.duration, args.kill_after, args.down
    )
    if args.smoke:
        spec = Spec(2, 3, 3, 30.0, 8.0, 2.0)
    spec.workdir = Path(tempfile.mkdtemp(prefix="smmc-multi-"))
    nodes: tuple[RmqttNode, ...] = ()
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        spec.broker = (host, int(port))
    if args.rmqttd:
        cluster, kill = rmqtt_cluster(args.rmqttd, spec.workdir, args.rmqttd_nodes)
        nodes = tuple(cluster)
        spec.broker = ("127.0.0.1", cluster[0].port)
        spec.consumer_broker = ("127.0.0.1", cluster[1].port)
        spec.broker_kill = None if args.no_node_kill else kill
    try:
        report = runtime.run(run(spec))
    finally:
        stop_nodes(*nodes)
        if not args.keep:
            shutil.rmtree(spec.workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(
            f"{spec.gateways} gateways x {spec.meters} meters, {spec.consumers} consumers "
            f"in one shared group, {report.elapsed_s}s"
        )
        print(f"  deliveries per consumer: {report.per_consumer}")
        print(
            f"  readings messages: {report.readings_messages}, repeated deliveries: "
            f"{report.duplicate_deliveries}"
        )
        for g in report.gateways:
            print(
                f"  {g.gateway}: stored {g.stored}, received {g.received} "
                f"({g.deliveries} deliveries), readings {g.readings} from "
                f"{g.meters_with_readings}/{g.meters} meters"
                + (
                    f", SIGKILLed ({g.pending_at_kill} unacknowledged) and restarted"
                    if g.restarted
                    else ""
                )
            )
        print("  contract held" if not report.problems else "  PROBLEMS:")
        for p in report.problems:
            print(f"    {p}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
