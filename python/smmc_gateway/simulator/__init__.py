"""The meter simulator: IDIS-style electricity meters as COSEM objects (sans-IO).

Create ``SimulatedMeter(MeterOptions(...), now=datetime_utc)``; then call
``get``/``set``/``action`` with the decoded request, the client SAP and
``now``; ``tick(now)`` lets time pass; ``take_pushes()`` drains the pushes the
meter wants sent; ``power_outage``/``power_restored``/``press_button``/
``open_terminal_cover``/``log_event``/``set_drift`` simulate the field. No
transport, framing or ciphering here.
"""

from smmc_gateway.simulator.meter import SimulatedMeter, UnknownClientError
from smmc_gateway.simulator.objects.security import SecurityCredentials
from smmc_gateway.simulator.options import MeterOptions, PushMessage

__all__ = [
    "MeterOptions",
    "PushMessage",
    "SecurityCredentials",
    "SimulatedMeter",
    "UnknownClientError",
]
