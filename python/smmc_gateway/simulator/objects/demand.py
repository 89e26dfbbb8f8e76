"""Demand register (class 5): running and last average active import power
over 15-minute periods aligned with the load profile.

current_average_value = energy since start_time_current / period (running
demand, Blue Book with number_of_periods 1); at each period end the meter
calls :meth:`DemandRegister.close_period`, which moves it to
last_average_value and stamps capture_time. The period is fixed at 900 s.
reset (method 1) and next_period (method 2) start a new period at once;
reset also clears last_average_value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import (
    TypedValue,
    double_long_unsigned,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

PERIOD_S = 900


class DemandRegister(CosemObject):
    class_id = 5
    methods = frozenset({1, 2})

    def __init__(
        self,
        obis: str,
        energy_wh: Callable[[], float],
        stamp: Callable[[datetime], bytes],
        meter_time: Callable[[datetime], datetime],
        start: datetime,
    ) -> None:
        super().__init__(obis)
        self.energy_wh = energy_wh
        self.stamp = stamp
        self.meter_time = meter_time
        self.start_energy = energy_wh()
        self.start_time = stamp(start)
        self.capture_time = self.start_time
        self.last_average = 0

    def _running(self) -> int:
        return max(0, round((self.energy_wh() - self.start_energy) * 3600.0 / PERIOD_S))

    def close_period(self, meter_time: datetime) -> None:
        self.last_average = self._running()
        self.capture_time = self.stamp(meter_time)
        self.start_time = self.capture_time
        self.start_energy = self.energy_wh()

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        values: dict[int, TypedValue] = {
            2: double_long_unsigned(self._running()),
            3: double_long_unsigned(self.last_average),
            4: structure([integer(0), enum(27)]),
            5: unsigned(0),
            6: octet_string(self.capture_time),
            7: octet_string(self.start_time),
            8: double_long_unsigned(PERIOD_S),
            9: long_unsigned(1),
        }
        return values[attribute_id]

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        meter_time = self.meter_time(now)
        if method_id == 1:  # reset: no last average; a new period starts now
            self.close_period(meter_time)
            self.last_average = 0
        else:  # next_period: close the running period now
            self.close_period(meter_time)
        return ("success", None)
