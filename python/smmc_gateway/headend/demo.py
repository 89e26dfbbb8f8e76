"""``smmc-gateway demo``: a broker, a simulated fleet and the gateway, seen from MQTT.

Starts a local Mosquitto on a free port (or uses ``--broker HOST:PORT``), the
simulator in its own process (``python -m smmc_gateway.simulator``), and the
gateway daemon in its own process with a generated configuration in a temporary
directory. Then it watches ``smmc/v1/{gateway}/#`` like a central system would and
issues a few commands during the run (an on-demand read, a disconnect and a
reconnect, an OMS multicast ping, a clock sync, and one bad command) while the
simulated meters lose power at 17 s and get it back 5 s later (their last-gasp and
power-up pushes reach the gateway's push listener and become events), showing
per-meter status, the latest readings, events, replies and the outbox depth (from
the gateway's Prometheus endpoint). On a terminal it is a live view until Ctrl-C;
without one, or with ``--for SECONDS``, it prints a compact log, stops by itself and
exits 0 only if readings, events and replies were all seen.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from smmc_gateway import runtime
from smmc_gateway.headend.labconfig import write_lab_config

GATEWAY = "gw-demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(
    host: str, port: int, proc: subprocess.Popen[Any] | None, what: str, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.3):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} is not listening on {host}:{port} after {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


@dataclass
class View:
    """What the central system has seen."""

    meters: list[str]
    per_topic: Counter[str] = field(default_factory=Counter)
    status: dict[str, str] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    replies: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    gateway_state: str = "?"
    outbox: str = "?"
    log: list[str] = field(default_factory=list)

    def take(self, topic: str, payload: bytes) -> str:
        parts = topic.split("/")
        kind = "/".join(parts[3:4] + parts[5:6]) if parts[3:4] == ["meter"] else parts[3]
        self.per_topic[kind] += 1
        try:
            doc = json.loads(payload)
        except ValueError:
            return f"{topic}: (not JSON)"
        if kind == "status":
            self.gateway_state = str(doc.get("state"))
            return f"status: gateway {self.gateway_state}"
        body = doc.get("payload", {})
        if kind == "meter/readings":
            meter = parts[4]
            for mr in body.get("MeterReading", []):
                regs = {
                    r["ReadingType"].get("name") or r["ReadingType"]["ref"]: r["value"]
                    for r in mr.get("Readings", [])
                }
                rows = sum(len(b.get("IntervalReadings", [])) for b in mr.get("IntervalBlocks", []))
                imp = regs.get("active_energy_import", next(iter(regs.values()), "-"))
                self.latest[meter] = f"import {imp}  ({rows} profile values)"
                self.status.setdefault(meter, "read ok")
            return f"readings  {meter}: {self.latest.get(meter, '')}"
        if kind == "meter/events":
            meter = parts[4]
            for ev in body.get("EndDeviceEvent", []):
                kind = ev["EndDeviceEventType"]
                text = f"{meter}: {kind.get('name', kind['ref'])} {ev.get('details', '')}"
                self.events.append(text[:110])
            return f"event     {self.events[-1] if self.events else meter}"
        if kind == "reply":
            reply = doc.get("reply", {})
            noun = doc.get("header", {}).get("noun")
            items = body.get("EndDeviceControl", [])
            n = len(items) or len(body.get("MeterReading", []))
            for it in items:
                m = it["EndDevices"][0]["mRID"]
                ref = it.get("EndDeviceControlType", {}).get("ref")
                if ref == "ping":
                    self.status[m] = it.get("state", "?")
                elif ref in ("connect", "disconnect") and it["result"] == "OK":
                    self.status[m] = "connected" if ref == "connect" else "disconnected"
            errs = "; ".join(e.get("details", "")[:60] for e in reply.get("errors", []))
            text = (
                f"{parts[4]}: {noun} {reply.get('result')} ({n} item(s))"
                f"{' - ' + errs if errs else ''}"
            )
            self.replies.append(text[:120])
            return f"reply     {text}"
        return f"{kind}: {len(payload)} bytes"

    @property
    def complete(self) -> bool:
        return (
            self.per_topic["meter/readings"] > 0
            and self.per_topic["meter/events"] > 0
            and self.per_topic["reply"] > 0
        )


def _render(view: View, elapsed: float) -> Any:
    from rich.console import Group
    from rich.table import Table

    t = Table(
        title=f"smmc-gateway demo - {GATEWAY} {view.gateway_state} - "
        f"{elapsed:.0f}s - outbox {view.outbox}",
        expand=True,
    )
    t.add_column("meter")
    t.add_column("status")
    t.add_column("latest readings")
    for m in view.meters:
        t.add_row(m, view.status.get(m, "waiting"), view.latest.get(m, ""))
    ev = Table(title="events", expand=True, show_header=False)
    for e in view.events:
        ev.add_row(e)
    rp = Table(title="replies", expand=True, show_header=False)
    for r in view.replies:
        rp.add_row(r)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(view.per_topic.items()))
    return Group(t, ev, rp, f"messages: {counts}")


def _command(noun: str, verb: str, payload: dict[str, Any]) -> tuple[str, str, bytes]:
    cid = f"demo-{uuid.uuid4().hex[:8]}"
    body = {"header": {"verb": verb, "noun": noun, "correlationId": cid}, "payload": payload}
    return cid, f"smmc/v1/{GATEWAY}/cmd/{noun}", json.dumps(body).encode()


def _control(ref: str, meters: list[str], group: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "EndDeviceControlType": {"ref": ref},
        "EndDevices": [{"mRID": m} for m in meters],
    }
    if group:
        item["EndDeviceGroups"] = [{"mRID": group}]
    return {"EndDeviceControl": [item]}


def _plan(meters: list[str]) -> list[tuple[float, str, str, dict[str, Any]]]:
    first, second = meters[0], meters[min(1, len(meters) - 1)]
    return [
        (3.0, "MeterReadings", "get", {"EndDevices": [{"mRID": first}]}),
        (5.0, "EndDeviceControls", "create", _control("disconnect", [second])),
        (8.0, "EndDeviceControls", "create", _control("ping", [first], group="demo")),
        (10.0, "EndDeviceControls", "create", _control("connect", [second])),
        (12.0, "EndDeviceControls", "create", _control("clockSync", [first])),
        (14.0, "EndDeviceControls", "create", _control("disconnect", ["no-such-meter"])),
    ]


def _outbox_depth(metrics_port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return "?"
    total = 0.0
    for line in text.splitlines():
        if line.startswith("smmc_outbox_depth_messages{"):
            total += float(line.rsplit(" ", 1)[1])
    return f"{int(total)} waiting"


async def _watch(
    view: View,
    host: str,
    port: int,
    duration: float | None,
    live: bool,
    metrics_port: int,
    gateway: subprocess.Popen[bytes],
) -> None:
    plan = _plan(view.meters)
    started = time.monotonic()
    async with aiomqtt.Client(
        host, port, identifier=f"demo-viewer-{os.getpid()}", protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.subscribe(f"smmc/v1/{GATEWAY}/#", qos=1)

        async def commands() -> None:
            for at, noun, verb, payload in plan:
                await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
                cid, topic, body = _command(noun, verb, payload)
                await client.publish(topic, body, qos=1)
                if not live:
                    ctl = payload.get("EndDeviceControl", [{}])[0]
                    what = ctl.get("EndDeviceControlType", {}).get("ref", verb)
                    print(
                        f"[{time.monotonic() - started:5.1f}s] command   {noun} {what} "
                        f"-> reply/{cid}",
                        flush=True,
                    )

        async def receive() -> None:
            async for msg in client.messages:
                topic = str(msg.topic)
                if "/cmd/" in topic:
                    continue
                payload = msg.payload if isinstance(msg.payload, bytes) else b""
                line = view.take(topic, payload)
                if not live:
                    print(f"[{time.monotonic() - started:5.1f}s] {line}", flush=True)

        async def refresh() -> None:
            while True:
                view.outbox = await asyncio.to_thread(_outbox_depth, metrics_port)
                if gateway.poll() is not None:
                    raise RuntimeError(f"the gateway exited with status {gateway.returncode}")
                await asyncio.sleep(1.0)

        tasks = [asyncio.create_task(c()) for c in (commands, receive, refresh)]
        try:
            if live:
                from rich.live import Live

                with Live(_render(view, 0), refresh_per_second=4, screen=False) as lv:
                    while duration is None or time.monotonic() - started < duration:
                        lv.update(_render(view, time.monotonic() - started))
                        await asyncio.sleep(0.25)
                        for t in tasks:
                            if t.done() and t.exception() is not None:
                                raise t.exception()  # type: ignore[misc]
            else:
                deadline = duration if duration is not None else 60.0
                done, _ = await asyncio.wait(
                    tasks, timeout=deadline, return_when=asyncio.FIRST_EXCEPTION
                )
                for t in done:
                    if t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _stop(proc: subprocess.Popen[Any] | None, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on SIGTERM too
    meters_n = max(1, int(args.meters))
    live = sys.stdout.isatty() and args.duration is None
    tmp = Path(tempfile.mkdtemp(prefix="smmc-demo-"))
    broker_proc = sim_proc = gw_proc = None
    view: View | None = None
    try:
        if args.broker:
            host, _, p = args.broker.rpartition(":")
            host, port = host or "127.0.0.1", int(p)
        else:
            if shutil.which("mosquitto") is None:
                print(
                    "demo: mosquitto is not installed (apt-get install mosquitto) - or give "
                    "--broker HOST:PORT",
                    file=sys.stderr,
                )
                return 2
            host, port = "127.0.0.1", _free_port()
            conf = tmp / "mosquitto.conf"
            user = "user root\n" if os.geteuid() == 0 else ""
            conf.write_text(
                f"{user}listener {port} 127.0.0.1\nallow_anonymous true\n"
                f"persistence false\nlog_dest file {tmp}/mosquitto.log\n"
            )
            broker_proc = subprocess.Popen(
                ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait_port(host, port, broker_proc, "mosquitto")
        sim_err = (tmp / "simulator.log").open("wb")
        push_port = _free_port()
        # every meter loses power at 17 s (last-gasp push) and gets it back 5 s later
        sim_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smmc_gateway.simulator",
                "--tcp",
                "0",
                "--meters",
                str(meters_n),
                "--json",
                "--push",
                f"127.0.0.1:{push_port}",
                "--outage-after",
                "17",
                "--outage-for",
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=sim_err,
        )
        assert sim_proc.stdout is not None
        line = sim_proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"the simulator did not start (see {tmp}/simulator.log)")
        listing = json.loads(line)["meters"]
        metrics_port = _free_port()
        ids = [str(m["meter_id"]) for m in listing]
        cfg = write_lab_config(
            tmp / "gateway",
            listing,
            broker=(host, port),
            gateway_id=GATEWAY,
            groups={m: "demo" for m in ids},
            metrics_port=metrics_port,
            push_port=push_port,
            schedules='load_profile_every = "60s"\nload_profile_jitter = "5s"',
        )
        gw_log = (tmp / "gateway.log").open("wb")
        gw_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smmc_gateway.cli",
                "run",
                "--config",
                str(cfg),
                "--assume-clock-synchronised",
                "--log-format",
                "json",
                "--first-read",
                "14400",
            ],
            stdout=gw_log,
            stderr=subprocess.STDOUT,
        )
        if not live:
            print(
                f"demo: broker {host}:{port}, {meters_n} simulated meters, gateway "
                f"{GATEWAY} (files in {tmp})",
                flush=True,
            )
        view = View(ids)
        runtime.run(_watch(view, host, port, args.duration, live, metrics_port, gw_proc))
    except KeyboardInterrupt:
        pass
    except (RuntimeError, OSError, aiomqtt.MqttError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(gw_proc)
        _stop(sim_proc)
        _stop(broker_proc)
        if not getattr(args, "keep", False) and (view is None or view.complete):
            shutil.rmtree(tmp, ignore_errors=True)
    if view is None:
        return 1
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(view.per_topic.items()))
    ok = view.complete
    gw_rc = gw_proc.returncode if gw_proc is not None else None
    print(
        f"demo summary: messages per topic - {counts or 'none'}; gateway exit {gw_rc}; "
        f"{'readings, events and replies all seen' if ok else 'MISSING: ' + _missing(view)}"
        + ("" if ok or getattr(args, "keep", False) else f" (logs kept in {tmp})")
    )
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0 if ok and gw_rc == 0 else 1


def _missing(view: View) -> str:
    want = {"readings": "meter/readings", "events": "meter/events", "replies": "reply"}
    return ", ".join(k for k, v in want.items() if view.per_topic[v] == 0)
