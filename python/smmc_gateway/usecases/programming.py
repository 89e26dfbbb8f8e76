"""Use case 10, remote programming: SET configuration attributes, read each back.

:func:`parse_items` checks a MeterConfig item list (``{"class_id", "obis",
"attribute", "value"}`` with ``value`` typed JSON as in CLI.md) and names every
problem by its JSON path before any meter is touched. :func:`program` then, on one
session: reads the association's object list (when the meter gives it) and refuses,
without a SET, every item whose object the meter does not have, whose class differs,
or whose attribute the association may not write; SETs the rest one by one and
reads each back. Each item ends with the read-back value or the meter's
data-access-result. Settings that could cut the gateway off the meter (Security setup,
class 64; the association's secret) are refused at validation: keys change only
through :mod:`smmc_gateway.usecases.key_change`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectListError, ObjectModel
from smmc_gateway.dlms.errors import DataAccessError

TypedValue = dict[str, Any]
_OBIS = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


class ProgrammingSession(Protocol):
    async def get(self, class_id: int, obis: str, attribute: int) -> TypedValue: ...
    async def set(self, class_id: int, obis: str, attribute: int, value: TypedValue) -> None: ...
    async def action(self, class_id: int, obis: str, method: int,
                     parameters: TypedValue | None = None) -> Any: ...
    async def read_object_model(self) -> ObjectModel: ...


@dataclass(frozen=True)
class SetItem:
    """SET ``attribute`` to ``value``; or, with ``method``, ACTION it with ``value`` as the
    parameters (None: no parameters), e.g. Script table (9) execute (method 1)."""

    class_id: int
    obis: str
    attribute: int
    value: TypedValue | None
    method: int | None = None

    @property
    def ref(self) -> str:
        if self.method is not None:
            return f"{self.class_id}/{self.obis}/m{self.method}"
        return f"{self.class_id}/{self.obis}/{self.attribute}"


@dataclass(frozen=True)
class ItemResult:
    item: SetItem
    ok: bool
    read_back: TypedValue | None = None
    result: str = "success"  # the meter's data-access-result, or why it was not sent
    sent: bool = True

    def describe(self) -> str:
        if self.ok and self.item.method is not None:
            return f"{self.item.ref}: invoked, returned {self.read_back}"
        if self.ok:
            return f"{self.item.ref}: set, read back {self.read_back}"
        return f"{self.item.ref}: {self.result}"


def guarded(class_id: int, attribute: int | None, method: int | None) -> str | None:
    """Why a setting is never sent as plain programming: it could cut the gateway off the
    meter (keys, security policy, secrets need the key change procedure)."""
    if class_id == 64:
        return ("Security setup (class 64) is changed only by the key change procedure "
                "(usecases/key_change.py), which keeps the old keys until the new ones work")
    if class_id == 15 and (method in (1, 2) or attribute == 7):
        return ("the association's secret (class 15 attribute 7, methods 1 and 2) is not "
                "changed by plain programming")
    return None


def _int_field(item: dict[str, Any], key: str, where: str, lo: int, hi: int,
               problems: list[str]) -> int:
    v = item.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        problems.append(f"{where}.{key}: {v!r}; must be an integer {lo}..{hi}")
        return -1
    return v


def check_typed(value: Any, where: str, problems: list[str]) -> TypedValue | None:
    """A typed JSON value (CLI.md) the core can encode, else a problem naming ``where``."""
    if not isinstance(value, dict) or "type" not in value:
        problems.append(f"{where}: must be typed JSON like "
                        '{"type": "long-unsigned", "value": 900}')
        return None
    try:
        _core.encode(value)
    except Exception as exc:  # the core's encoder names the problem
        problems.append(f"{where}: not a valid typed DLMS value ({exc})")
        return None
    return value


def parse_items(raw: Any, where: str, problems: list[str]) -> list[SetItem]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: must be a non-empty array of "
                        "{class_id, obis, attribute, value} or {class_id, obis, method[, "
                        "parameters]}")
        return []
    items: list[SetItem] = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{w}: must be an object")
            continue
        before = len(problems)
        class_id = _int_field(item, "class_id", w, 1, 0xFFFF, problems)
        obis = item.get("obis")
        if not isinstance(obis, str) or not _OBIS.match(obis):
            problems.append(f"{w}.obis: {obis!r} is not an OBIS code like 1.0.1.8.0.255")
        if "method" in item:
            if "attribute" in item or "value" in item:
                problems.append(f"{w}: give either attribute and value (SET) or method and "
                                "parameters (ACTION), not both")
            method = _int_field(item, "method", w, 1, 127, problems)
            params = None
            if item.get("parameters") is not None:
                params = check_typed(item["parameters"], f"{w}.parameters", problems)
            why = guarded(class_id, None, method)
            if why is not None:
                problems.append(f"{w}: {why}")
            if len(problems) == before and isinstance(obis, str):
                items.append(SetItem(class_id, obis, 0, params, method))
            continue
        attribute = _int_field(item, "attribute", w, 1, 127, problems)
        if attribute == 1:
            problems.append(f"{w}.attribute: 1 is the logical name, never writable")
        value = check_typed(item.get("value"), f"{w}.value", problems)
        why = guarded(class_id, attribute, None)
        if why is not None:
            problems.append(f"{w}: {why}")
        if len(problems) == before and value is not None and isinstance(obis, str):
            items.append(SetItem(class_id, obis, attribute, value))
    return items


async def object_model(session: ProgrammingSession) -> ObjectModel | None:
    """The association's object model, or None when the meter does not give it."""
    try:
        return await session.read_object_model()
    except (DataAccessError, ObjectListError):
        return None


def refusal(model: ObjectModel | None, item: SetItem) -> str | None:
    """Why the meter's own object model forbids this SET, or None."""
    if model is None:
        return None
    info = model.get(item.obis)
    if info is None:
        return "object-undefined (not in the meter's object list)"
    if info.class_id != item.class_id:
        return (f"object-class-inconsistent (the meter's {item.obis} is class "
                f"{info.class_id}, not {item.class_id})")
    if item.method is not None:
        if item.method not in info.methods:
            return f"object-undefined (class {info.class_id} has no method {item.method})"
        if not info.can_invoke(item.method):
            return f"read-write-denied (no access to method {item.method}; not invoked)"
        return None
    if item.attribute not in info.attributes:
        return f"object-undefined (class {info.class_id} has no attribute {item.attribute})"
    if not info.can_write(item.attribute):
        access = info.attributes[item.attribute].access
        return (f"read-write-denied (the association's access to attribute {item.attribute} "
                f"is {getattr(access, 'name', access)}; not written)")
    return None


async def program(session: ProgrammingSession, items: Sequence[SetItem], *,
                  model: ObjectModel | None = None, check_model: bool = True) -> list[ItemResult]:
    """SET each item and read it back; refused items are never sent."""
    if model is None and check_model:
        model = await object_model(session)
    out: list[ItemResult] = []
    for item in items:
        why = refusal(model, item)
        if why is not None:
            out.append(ItemResult(item, False, result=why, sent=False))
            continue
        if item.method is not None:
            try:
                ret = await session.action(item.class_id, item.obis, item.method, item.value)
            except DataAccessError as exc:
                out.append(ItemResult(item, False, result=exc.result))
                continue
            out.append(ItemResult(item, True, read_back=ret if isinstance(ret, dict) else None))
            continue
        assert item.value is not None
        try:
            await session.set(item.class_id, item.obis, item.attribute, item.value)
        except DataAccessError as exc:
            out.append(ItemResult(item, False, result=exc.result))
            continue
        try:
            back = await session.get(item.class_id, item.obis, item.attribute)
        except DataAccessError as exc:
            out.append(ItemResult(item, False, result=f"set, but read-back: {exc.result}"))
            continue
        out.append(ItemResult(item, True, read_back=back))
    return out
