"""Issue 7 item 4: 2,000 idle sockets to the push listener must not stop a meter read.

A child process opens 2,000 idle TCP connections to a running push listener (from 250
loopback addresses, inside ``allow_from``) while this process (the gateway side) runs
with an open-files limit that fits ``max_connections`` sockets and some room, not 2,000.
The listener holds at most ``max_connections`` of them (the rest are closed at once), a
real meter read in the same process still succeeds, and once the first-frame deadline
has cut the flood, a push from the configured meter is accepted.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.push import PushEvent, PushListener
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport
from smmc_gateway.headend.labconfig import write_lab_config
from smmc_gateway.headend.pushes import PushRouting, resolve_hosts, tcp_hosts
from smmc_gateway.ops.config import load_config

from tests.support_sim import FleetSpec, free_ports, running_fleet

FLOOD = 2000
MAX_CONNECTIONS = 64
ROOM = 400
"""Open files this process may use besides the held push connections: the simulator,
the meter session, stores, pytest, and sockets the listener accepts and closes at once."""
FIRST_FRAME_S = 6.0

FLOODER = textwrap.dedent(
    """
    import errno, resource, selectors, socket, sys, time
    port, sources = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    never = {errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH}
    socks = []
    for line in sys.stdin:  # "open N": N more idle connections; EOF: close all, exit
        sel = selectors.DefaultSelector()
        for _ in range(int(line.split()[1])):
            s = socket.socket()
            s.setblocking(False)
            s.bind((f"127.0.1.{1 + len(socks) % sources}", 0))
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE)
            socks.append(s)
        done, deadline = 0, time.monotonic() + 30
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                sel.unregister(key.fileobj)
                # the handshake completed (the listener may have closed it since)
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) not in never:
                    done += 1
        print(f"connected {done}", flush=True)
    """
)
WAVE = 100
"""Connections opened at once: fewer than the listen backlog (128), so the kernel never
drops a handshake (an idle client would not notice and never be seen by the listener)."""


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(check: Callable[[], bool], wait_s: float = 30.0) -> None:
    async with asyncio.timeout(wait_s):
        while not check():  # noqa: ASYNC110 - polling the listener's counters
            await asyncio.sleep(0.01)


async def test_two_thousand_idle_sockets_do_not_stop_a_meter_read(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"the hard open-files limit ({hard}) cannot hold {FLOOD} sockets")
    port = free_ports(1)[0]
    spec = FleetSpec(meters=1, auth="hls-gmac", push_destination=f"127.0.0.1:{port}")
    async with running_fleet(spec) as sim:
        info = sim.info[0]
        meters = [{**info, "port": sim.ports[0]}]
        cfg = load_config(write_lab_config(tmp_path / "gw", meters, broker=("127.0.0.1", 1883)))
        routing = PushRouting(cfg.meters, addresses=await resolve_hosts(tcp_hosts(cfg.meters)))
        events: asyncio.Queue[PushEvent] = asyncio.Queue()
        listener = PushListener(
            routing.lookup,
            events.put_nowait,
            host="127.0.0.1",
            port=port,
            ic_store=InvocationCounterStore(":memory:"),
            max_connections=MAX_CONNECTIONS,
            max_per_peer=4,
            first_frame_timeout=FIRST_FRAME_S,
            idle_timeout=30,
            allowed_peers=routing.peers(["127.0.1.0/24"]),
        )
        async with listener:
            baseline = open_files()
            # The gateway side may hold its push connections and some room, not FLOOD.
            resource.setrlimit(resource.RLIMIT_NOFILE, (baseline + MAX_CONNECTIONS + ROOM, hard))
            flooder = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                FLOODER,
                str(port),
                "250",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert flooder.stdout is not None and flooder.stdin is not None
                c = listener.counters
                for wave in range(1, FLOOD // WAVE + 1):
                    flooder.stdin.write(f"open {WAVE}\n".encode())
                    line = await asyncio.wait_for(flooder.stdout.readline(), 60)
                    assert line.decode().strip() == f"connected {WAVE}", line
                    await until(lambda n=wave * WAVE: c.connections + c.refused_connections >= n)
                # (a) at most max_connections held; the rest closed at once
                assert listener.open_connections == MAX_CONNECTIONS
                assert c.peak_open == MAX_CONNECTIONS
                assert c.refused_max_connections + c.refused_max_per_peer == FLOOD - MAX_CONNECTIONS
                assert open_files() - baseline <= MAX_CONNECTIONS + 16
                # (b) a meter read in this process still succeeds while they are held
                settings = SessionSettings(
                    client_sap=1,
                    security=Security.hls_gmac(
                        system_title=b"SMMCTEST",
                        ek=bytes.fromhex(info["ek"]),
                        ak=bytes.fromhex(info["ak"]),
                        ic_store=InvocationCounterStore(":memory:"),
                    ),
                )
                session = ClientSession(
                    WrapperTransport.tcp("127.0.0.1", sim.ports[0], client_sap=1),
                    settings,
                    meter_id=info["meter_id"],
                )
                async with session as s:
                    clock = await s.get(8, "0.0.1.0.0.255", 2)
                assert "datetime" in clock
                assert listener.open_connections == MAX_CONNECTIONS  # the flood was still held
                # (c) the first-frame deadline cuts the flood; a real push gets through
                await until(lambda: listener.open_connections == 0, FIRST_FRAME_S + 30)
                assert c.closed_first_frame_timeout == MAX_CONNECTIONS
                sim.fleet.power_outage(0)  # last gasp from the configured meter
                event = await asyncio.wait_for(events.get(), 30)
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                if flooder.stdin is not None:
                    flooder.stdin.close()  # the flooder closes its sockets and exits
                await asyncio.wait_for(flooder.wait(), 30)
    assert event.meter_id == info["meter_id"] and event.ciphered
    assert listener.counters.refused_unknown_peer == 0 and listener.counters.accepted == 1
