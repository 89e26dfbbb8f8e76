"""The meter simulator: IDIS-style electricity meters as COSEM objects (sans-IO).

:class:`~smmc_gateway.simulator.meter.SimulatedMeter` is the entry point.
"""

from smmc_gateway.simulator.meter import MeterOptions, PushMessage, SimulatedMeter

__all__ = ["MeterOptions", "PushMessage", "SimulatedMeter"]
