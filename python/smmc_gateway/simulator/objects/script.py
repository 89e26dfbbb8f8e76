"""Script table (class 9): numbered scripts of write-attribute / execute-method
actions, run by the meter through an injected runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.obis import Obis
from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_int,
    enum,
    integer,
    long_unsigned,
    octet_string,
    structure,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult

WRITE_ATTRIBUTE, EXECUTE_METHOD = 1, 2


@dataclass(frozen=True)
class ScriptAction:
    service: int  # 1 write attribute, 2 execute method
    class_id: int
    obis: Obis
    index: int
    parameter: TypedValue

    def typed(self) -> TypedValue:
        return structure(
            [
                enum(self.service),
                long_unsigned(self.class_id),
                octet_string(self.obis.to_bytes()),
                integer(self.index),
                self.parameter,
            ]
        )


ActionRunner = Callable[[Obis, ScriptAction, datetime], None]
"""Runs one action: (script table OBIS, action, now)."""


class ScriptTable(CosemObject):
    class_id = 9
    methods = frozenset({1})

    def __init__(
        self, obis: Obis | str, scripts: dict[int, list[ScriptAction]], runner: ActionRunner
    ) -> None:
        super().__init__(obis)
        self.scripts = scripts
        self.runner = runner

    def execute(self, script_id: int, now: datetime) -> bool:
        actions = self.scripts.get(script_id)
        if actions is None:
            return False
        for action in actions:
            self.runner(self.obis, action, now)
        return True

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        return array(
            [
                structure([long_unsigned(sid), array([a.typed() for a in actions])])
                for sid, actions in sorted(self.scripts.items())
            ]
        )

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is None:
            return ("type-unmatched", None)
        if not self.execute(as_int(parameters, "long-unsigned"), now):
            return ("other-reason", None)
        return ("success", None)
