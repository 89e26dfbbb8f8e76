"""The simulated meter playing a device model (``MeterOptions.model``, ``simulate
--model NAME``): the model's alarm registers and bit map, its alarm push layout, its
event codes, its limiter scaler/unit and its FLAG id, instead of the simulator's own
conventions (the shipped model ``smmc-sim``).

The simulator keeps raising its own signals (power down, power up, limiter trip,
tamper...) and logging its own codes; :class:`ModelPlay` translates each one through the
event name the simulator's model gives it: a signal becomes the bit of the played
model's alarm register that carries the same event name (and reason, when the model
has several bits of that name), a code becomes the played model's code of the same
event name in that log. A signal the played model has no bit for raises no alarm (that
meter family has no such alarm); a code it has no number for is logged unchanged (the
gateway then publishes it as an unknown event with its raw code).
"""

from __future__ import annotations

from dataclasses import dataclass

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.units import WATT, unit_code
from smmc_gateway.models.catalog import base_model
from smmc_gateway.models.spec import AlarmRegister
from smmc_gateway.ops.config_model import ModelConfig
from smmc_gateway.simulator import events

#: simulator log kind -> the model's log short name
LOG_NAMES = {
    events.STANDARD: "standard",
    events.FRAUD: "fraud",
    events.DISCONNECTOR: "disconnector",
    events.POWER_QUALITY: "powerQuality",
}
MONITORED = "1.0.1.7.0.255"


@dataclass(frozen=True)
class AlarmTarget:
    register: Obis
    filter: Obis | None
    bit: int


class ModelPlay:
    """Translations from the simulator's conventions to ``model``'s."""

    def __init__(self, model: ModelConfig) -> None:
        self.model = model
        sim = base_model()
        self.alarm: dict[int, AlarmTarget] = {}
        sim_bits = sim.alarms[0].bits if sim.alarms else {}
        for sim_bit, named in sim_bits.items():
            target = self._find_bit(named.name, named.reason)
            if target is not None:
                self.alarm[sim_bit] = target
        self.codes: dict[tuple[str, int], int] = {}
        for table in sim.event_logs:
            played = next((t for t in model.event_logs if t.log == table.log), None)
            if played is None:
                continue
            by_name: dict[str, int] = {}
            for code, ec in sorted(played.codes.items(), reverse=True):
                by_name[ec.name] = code  # the lowest code of a name wins
            for code, ec in table.codes.items():
                if ec.name in by_name:
                    self.codes[(table.log, code)] = by_name[ec.name]

    def _find_bit(self, name: str, reason: str) -> AlarmTarget | None:
        same_name: AlarmTarget | None = None
        for reg in self.model.alarms:
            for bit, named in reg.bits.items():
                if named.name != name:
                    continue
                target = _target(reg, bit)
                if named.reason == reason:
                    return target
                same_name = same_name or target
        return same_name

    def alarm_targets(self, mask: int) -> list[AlarmTarget]:
        """Where the simulator's alarm bits ``mask`` go in the played model."""
        return [self.alarm[b] for b in range(32) if mask >> b & 1 and b in self.alarm]

    def code(self, kind: str, code: int) -> int:
        """The played model's code for the simulator's ``code`` in log ``kind``."""
        log = LOG_NAMES.get(kind)
        return self.codes.get((log, code), code) if log is not None else code

    def limiter_scale(self) -> tuple[int, int]:
        """(scaler, DLMS unit code) of the limiter's monitored value (active power
        1.0.1.7.0.255): the model's declaration, else its register spec, else W."""
        spec = self.model.values.get("limiter_threshold")
        if spec is not None and spec.scaler is not None:
            return spec.scaler, unit_code(spec.unit or "W") or WATT
        reg = next((r for r in self.model.registers if r.obis == MONITORED), None)
        if reg is not None and reg.scaler is not None:
            return reg.scaler, unit_code(reg.unit or "W") or WATT
        return 0, WATT

    def flag_id(self) -> bytes:
        flags = self.model.identification.flag_ids
        return flags[0].encode() if flags else b"SMM"


def _target(reg: AlarmRegister, bit: int) -> AlarmTarget:
    return AlarmTarget(
        Obis.coerce(reg.obis), Obis.coerce(reg.filter_obis) if reg.filter_obis else None, bit
    )
