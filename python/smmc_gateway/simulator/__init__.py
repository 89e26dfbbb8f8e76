"""The meter simulator: IDIS-style electricity meters as DLMS/COSEM servers.

Object model (sans-IO): ``SimulatedMeter(MeterOptions(...), now=datetime_utc)``
answers ``get``/``set``/``action`` for a client SAP at ``now``; ``tick(now)``
lets time pass; ``take_pushes()`` drains the pushes it wants sent;
``power_outage``/``power_restored``/``press_button``/``open_terminal_cover``/
``log_event``/``set_drift`` simulate the field (meter.py, objects/, layout.py).

Protocol (sans-IO, on the Rust core): acse.py (AARQ/AARE, HLS-GMAC),
services.py (GET/SET/ACTION and their block forms), gbt.py
(general-block-transfer), server.py (one connection: ciphering, invocation
counters, exception-responses), link.py (wrapper and HDLC server framing).

Running meters (asyncio): fleet.py (``SimulatedFleet``: many meters, their
keys, clock, pushes), serve.py (TCP per meter or shared, serial/RS-485,
optical mode E), faults.py (drop, corrupt, delay, hang, reset, wrong keys),
cli.py (``smmc-gateway simulate``). Test helpers: ``tests/support_sim.py``.
"""

from smmc_gateway.simulator.faults import FaultOptions
from smmc_gateway.simulator.fleet import FleetSpec, MeterRuntime, SimulatedFleet
from smmc_gateway.simulator.meter import SimulatedMeter, UnknownClientError
from smmc_gateway.simulator.objects.security import SecurityCredentials
from smmc_gateway.simulator.options import MeterOptions, PushMessage

__all__ = [
    "FaultOptions",
    "FleetSpec",
    "MeterOptions",
    "MeterRuntime",
    "PushMessage",
    "SecurityCredentials",
    "SimulatedFleet",
    "SimulatedMeter",
    "UnknownClientError",
]
