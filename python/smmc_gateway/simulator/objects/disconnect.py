"""Disconnect control (class 70): the supply relay and the Blue Book state machine.

States: 0 disconnected, 1 connected, 2 ready_for_reconnection. Transitions:
  a remote_reconnect   disconnected -> connected
  b remote_disconnect  connected -> disconnected
  c remote_disconnect  ready_for_reconnection -> disconnected
  d remote_reconnect   disconnected -> ready_for_reconnection
  e manual_reconnect   ready_for_reconnection -> connected
  f manual_disconnect  connected -> ready_for_reconnection
  g local_disconnect   connected -> ready_for_reconnection
  h local_reconnect    ready_for_reconnection -> connected
Which transitions each control_mode allows (mode 0: always connected):
  1: b c d e f g   2: a b c e f g   3: b c d e g   4: a b c e g
  5: b c d e f g h   6: b c d e g h
A trigger with no allowed transition from the current state changes nothing;
a remote method then still answers success (the state is already the target
or the mode leaves it to another trigger), except in mode 0 where the remote
methods are refused with "other-reason".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import TypedValue, as_int, boolean, enum
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

DISCONNECTED, CONNECTED, READY = 0, 1, 2

# transition letter -> (from state, to state)
TRANSITIONS: dict[str, tuple[int, int]] = {
    "a": (DISCONNECTED, CONNECTED),
    "b": (CONNECTED, DISCONNECTED),
    "c": (READY, DISCONNECTED),
    "d": (DISCONNECTED, READY),
    "e": (READY, CONNECTED),
    "f": (CONNECTED, READY),
    "g": (CONNECTED, READY),
    "h": (READY, CONNECTED),
}
ALLOWED: dict[int, frozenset[str]] = {
    0: frozenset(),
    1: frozenset("bcdefg"),
    2: frozenset("abcefg"),
    3: frozenset("bcdeg"),
    4: frozenset("abceg"),
    5: frozenset("bcdefgh"),
    6: frozenset("bcdegh"),
}
# trigger -> the transitions it may cause, tried in order
TRIGGERS: dict[str, str] = {
    "remote_disconnect": "bc",
    "remote_reconnect": "ad",
    "manual_reconnect": "e",
    "manual_disconnect": "f",
    "local_disconnect": "g",
    "local_reconnect": "h",
}

TransitionHook = Callable[[datetime, str, int], None]
"""Called with (now, transition letter, new control_state) after a transition."""


class DisconnectControl(CosemObject):
    class_id = 70
    writable = frozenset({4})
    methods = frozenset({1, 2})

    def __init__(self, *, control_mode: int = 1, on_transition: TransitionHook | None = None):
        super().__init__("0.0.96.3.10.255")
        if control_mode not in ALLOWED:
            raise ValueError(f"control_mode {control_mode}, allowed 0..6")
        self.control_mode = control_mode
        self.control_state = CONNECTED
        self.on_transition = on_transition

    @property
    def output_state(self) -> bool:
        return self.control_state == CONNECTED

    def trigger(self, name: str, now: datetime) -> str | None:
        """Apply a trigger; returns the transition letter taken, if any."""
        for letter in TRIGGERS[name]:
            source, target = TRANSITIONS[letter]
            if letter in ALLOWED[self.control_mode] and self.control_state == source:
                self.control_state = target
                if self.on_transition is not None:
                    self.on_transition(now, letter, target)
                return letter
        return None

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        if attribute_id == 2:
            return boolean(self.output_state)
        if attribute_id == 3:
            return enum(self.control_state)
        return enum(self.control_mode)

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        mode = as_int(value, "enum")
        if mode not in ALLOWED:
            return "other-reason"
        self.control_mode = mode
        if mode == 0 and self.control_state != CONNECTED:
            self.control_state = CONNECTED
            if self.on_transition is not None:
                self.on_transition(now, "mode-0", CONNECTED)
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is not None:
            as_int(parameters, "integer")
        if self.control_mode == 0:
            return ("other-reason", None)
        self.trigger("remote_disconnect" if method_id == 1 else "remote_reconnect", now)
        return ("success", None)
