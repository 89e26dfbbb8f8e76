"""Push setup (class 40): what a push carries and where it goes.

Method 1 (push) reads every push_object_list entry through the meter and hands
the body — a typed structure of the values, in list order — to the meter's
``emit(now, push setup, body)``, which queues it for the transport. Retries,
windows and randomisation are stored for the transport to honour.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from smmc_gateway.cosem.values import (
    TypedValue,
    array,
    as_bytes,
    as_datetime_bytes,
    as_int,
    as_list,
    as_structure,
    enum,
    long_unsigned,
    octet_string,
    structure,
    unsigned,
)
from smmc_gateway.simulator.objects.base import ActionResult, CosemObject, GetResult
from smmc_gateway.simulator.objects.profile import CaptureObject

Reader = Callable[[CaptureObject, datetime], TypedValue]
Emitter = Callable[[datetime, "PushSetup", TypedValue], None]


class PushSetup(CosemObject):
    class_id = 40
    writable = frozenset({2, 3, 4, 5, 6, 7})
    methods = frozenset({1})

    def __init__(
        self,
        obis: str,
        objects: list[CaptureObject],
        *,
        destination: str,
        reader: Reader,
        emit: Emitter,
    ) -> None:
        super().__init__(obis)
        self.objects = list(objects)
        self.transport = 0  # TCP
        self.destination = destination
        self.message_type = 0  # A-XDR encoded xDLMS APDU
        self.windows: list[tuple[bytes, bytes]] = []
        self.randomisation = 0
        self.retries = 3
        self.repetition_delay = 60
        self.reader = reader
        self.emit = emit

    def body(self, now: datetime) -> TypedValue:
        return structure([self.reader(o, now) for o in self.objects])

    def push(self, now: datetime) -> None:
        self.emit(now, self, self.body(now))

    def read(
        self, attribute_id: int, now: datetime, selector: int | None, parameters: Any
    ) -> GetResult:
        values: dict[int, TypedValue] = {
            2: array([o.typed() for o in self.objects]),
            3: structure(
                [
                    enum(self.transport),
                    octet_string(self.destination.encode()),
                    enum(self.message_type),
                ]
            ),
            4: array([structure([octet_string(a), octet_string(b)]) for a, b in self.windows]),
            5: long_unsigned(self.randomisation),
            6: unsigned(self.retries),
            7: long_unsigned(self.repetition_delay),
        }
        return values[attribute_id]

    def write(self, attribute_id: int, value: TypedValue, now: datetime) -> str:
        if attribute_id == 2:
            self.objects = [CaptureObject.from_typed(o) for o in as_list(value, "array")]
        elif attribute_id == 3:
            transport, dest, message = as_structure(value, 3)
            self.transport = as_int(transport, "enum")
            self.destination = as_bytes(dest).decode("ascii", errors="replace")
            self.message_type = as_int(message, "enum")
        elif attribute_id == 4:
            windows = []
            for w in as_list(value, "array"):
                start, end = as_structure(w, 2)
                windows.append((as_datetime_bytes(start), as_datetime_bytes(end)))
            self.windows = windows
        elif attribute_id == 5:
            self.randomisation = as_int(value, "long-unsigned")
        elif attribute_id == 6:
            self.retries = as_int(value, "unsigned")
        else:
            self.repetition_delay = as_int(value, "long-unsigned")
        return "success"

    def invoke(self, method_id: int, parameters: TypedValue | None, now: datetime) -> ActionResult:
        if parameters is not None:
            as_int(parameters, "integer")
        self.push(now)
        return ("success", None)
