"""Limiter (class 71): watches a monitored value against the active threshold
and runs its over/under actions (scripts) after the minimum durations.

The meter calls :meth:`Limiter.evaluate` whenever the monitored value may have
changed (every load-model slot boundary, every request) and at
:meth:`Limiter.next_deadline`, so durations are honoured to the instant.
The emergency threshold is active while an emergency profile whose id is in
emergency_profile_group_id_list runs (activation_time .. + duration, meter time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smmc_gateway.cosem.datetime import UNSPECIFIED, to_utc
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    as_datetime_bytes,
    as_int,
    as_list,
    as_structure,
    boolean,
    double_long_unsigned,
    integer,
    long_unsigned,
    octet_string,
    structure,
)
from smmc_gateway.simulator.objects.base import CosemObject, GetResult


@dataclass(frozen=True)
class ScriptRef:
    obis: Obis
    selector: int

    def typed(self) -> TypedValue:
        return structure([octet_string(self.obis.to_bytes()), long_unsigned(self.selector)])

    @classmethod
    def from_typed(cls, value: TypedValue) -> ScriptRef:
        ln, sel = as_structure(value, 2)
        return cls(Obis.from_bytes(as_bytes(ln)), as_int(sel, "long-unsigned"))


MonitoredReader = Callable[[int, Obis, int, datetime], int | None]
ScriptRunner = Callable[[ScriptRef, datetime], None]
LimiterHook = Callable[[datetime, str], None]
"""Called with (now, "over" | "under") when an action is taken."""


class Limiter(CosemObject):
    class_id = 71
    writable = frozenset({2, 4, 5, 6, 7, 8, 9, 11})

    def __init__(
        self,
        *,
        read_monitored: MonitoredReader,
        run_script: ScriptRunner,
        meter_time: Callable[[datetime], datetime],
        time_zone: Callable[[], int],
        on_action: LimiterHook | None = None,
        threshold_normal: int = 10_000,
        threshold_emergency: int = 3_000,
        min_over: int = 60,
        min_under: int = 60,
        actions: tuple[ScriptRef, ScriptRef] | None = None,
    ) -> None:
        super().__init__("0.0.17.0.0.255")
        self.monitored = (3, Obis(1, 0, 1, 7, 0, 255), 2)
        self.threshold_normal = threshold_normal
        self.threshold_emergency = threshold_emergency
        self.min_over = min_over
        self.min_under = min_under
        self.emergency_id = 0
        self.emergency_activation = UNSPECIFIED
        self.emergency_duration = 0
        self.group_ids: list[int] = []
        script = Obis(0, 0, 10, 0, 106, 255)
        self.actions = actions or (ScriptRef(script, 1), ScriptRef(script, 2))
        self.read_monitored = read_monitored
        self.run_script = run_script
        self.meter_time = meter_time
        self.time_zone = time_zone
        self.on_action = on_action
        self.over_since: datetime | None = None
        self.under_since: datetime | None = None
        self.tripped = False

    # ---------------------------------------------------------------- behaviour
    def _emergency_window(self) -> tuple[datetime, datetime] | None:
        if self.emergency_id not in self.group_ids or self.emergency_duration <= 0:
            return None
        start = to_utc(self.emergency_activation, default_deviation=self.time_zone())
        if start is None:
            return None
        return start, start + timedelta(seconds=self.emergency_duration)

    def emergency_active(self, now: datetime) -> bool:
        window = self._emergency_window()
        return window is not None and window[0] <= self.meter_time(now) < window[1]

    def threshold_active(self, now: datetime) -> int:
        return self.threshold_emergency if self.emergency_active(now) else self.threshold_normal

    def evaluate(self, now: datetime) -> None:
        for _ in range(2):  # an action changes the monitored value: look again
            class_id, obis, attr = self.monitored
            value = self.read_monitored(class_id, obis, attr, now)
            if value is None:
                return
            if value > self.threshold_active(now):
                self.under_since = None
                if self.over_since is None:
                    self.over_since = now
                due = now - self.over_since >= timedelta(seconds=self.min_over)
                if self.tripped or not due:
                    return
                self.tripped = True
                self.run_script(self.actions[0], now)
                if self.on_action is not None:
                    self.on_action(now, "over")
            else:
                self.over_since = None
                if self.under_since is None:
                    self.under_since = now
                due = now - self.under_since >= timedelta(seconds=self.min_under)
                if not self.tripped or not due:
                    return
                self.tripped = False
                self.run_script(self.actions[1], now)
                if self.on_action is not None:
                    self.on_action(now, "under")

    def next_deadline(self, emergency_real: Callable[[datetime], datetime]) -> list[datetime]:
        """Real instants at which evaluate() must run (given a meter-time ->
        real-time mapping for the emergency window)."""
        out: list[datetime] = []
        if self.over_since is not None and not self.tripped:
            out.append(self.over_since + timedelta(seconds=self.min_over))
        if self.under_since is not None and self.tripped:
            out.append(self.under_since + timedelta(seconds=self.min_under))
        window = self._emergency_window()
        if window is not None:
            out.extend(emergency_real(t) for t in window)
        return out

    # ---------------------------------------------------------------- services
    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        class_id, obis, attr = self.monitored
        values: dict[int, TypedValue] = {
            2: structure([long_unsigned(class_id), octet_string(obis.to_bytes()), integer(attr)]),
            3: double_long_unsigned(self.threshold_active(now)),
            4: double_long_unsigned(self.threshold_normal),
            5: double_long_unsigned(self.threshold_emergency),
            6: double_long_unsigned(self.min_over),
            7: double_long_unsigned(self.min_under),
            8: structure(
                [
                    long_unsigned(self.emergency_id),
                    octet_string(self.emergency_activation),
                    double_long_unsigned(self.emergency_duration),
                ]
            ),
            9: array([long_unsigned(g) for g in self.group_ids]),
            10: boolean(self.emergency_active(now)),
            11: structure([self.actions[0].typed(), self.actions[1].typed()]),
        }
        return values[attribute_id]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 2:
            cid, ln, attr = as_structure(value, 3)
            self.monitored = (
                as_int(cid, "long-unsigned"),
                Obis.from_bytes(as_bytes(ln)),
                as_int(attr, "integer"),
            )
        elif attribute_id in (4, 5, 6, 7):
            number = as_int(value, "double-long-unsigned")
            if attribute_id == 4:
                self.threshold_normal = number
            elif attribute_id == 5:
                self.threshold_emergency = number
            elif attribute_id == 6:
                self.min_over = number
            else:
                self.min_under = number
        elif attribute_id == 8:
            pid, activation, duration = as_structure(value, 3)
            self.emergency_id = as_int(pid, "long-unsigned")
            self.emergency_activation = as_datetime_bytes(activation)
            self.emergency_duration = as_int(duration, "double-long-unsigned")
        elif attribute_id == 9:
            self.group_ids = [as_int(g, "long-unsigned") for g in as_list(value, "array")]
        elif attribute_id == 11:
            over, under = as_structure(value, 2)
            self.actions = (ScriptRef.from_typed(over), ScriptRef.from_typed(under))
        return "success"
