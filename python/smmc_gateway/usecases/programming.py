"""Use case 10, remote programming: SET configuration attributes, read each back.

:func:`parse_items` checks a MeterConfig item list (``{"class_id", "obis",
"attribute", "value"}`` with ``value`` typed JSON as in CLI.md, or ``{"class_id",
"obis", "method"[, "parameters"]}`` for an ACTION) and names every problem by its JSON
path before any meter is touched; OBIS codes come back canonical (``0.0.97.98.10.255``,
no leading zeros), so an allowlist compares like with like. Whether a valid item may be
sent at all is the caller's decision (the head-end's MeterConfig allowlist,
:mod:`smmc_gateway.headend.commands.meter_config`); :func:`guarded` names the members that are
never sent by plain programming whatever the allowlist says, because their value is a
secret (it would travel in an MQTT request and sit in the command journal): keys change
only through :mod:`smmc_gateway.usecases.key_change`.

:func:`program` then, on one session: reads the association's object list (when the
meter gives it) and refuses, without a SET, every item whose object the meter does not
have, whose class differs, or whose attribute the association may not write; SETs the
rest one by one (never a with-list) and reads each back. Each item ends with the
read-back value or the meter's data-access-result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectListError, ObjectModel
from smmc_gateway.cosem.objects import MBusClient, SecuritySetup
from smmc_gateway.cosem.values import TypedValue, as_typed
from smmc_gateway.dlms.errors import DataAccessError
from smmc_gateway.jsonvalue import JsonObject
from smmc_gateway.ops.audit import is_secret

_OBIS = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


class ProgrammingSession(Protocol):
    async def get(self, class_id: int, obis: str, attribute: int) -> TypedValue: ...
    async def set(self, class_id: int, obis: str, attribute: int, value: TypedValue) -> None: ...
    async def action(
        self, class_id: int, obis: str, method: int, parameters: TypedValue | None = None
    ) -> Any: ...
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
    """Why a setting is never sent as plain programming, even when an allowlist names it:
    its value is a secret (a key, a password, an HLS secret)."""
    kind, member = ("method", method) if method is not None else ("attribute", attribute)
    if member is None or not is_secret(class_id, kind, member):
        return None
    if class_id == SecuritySetup.class_id:
        return (
            f"Security setup (class 64) {kind} {member} carries key material: keys are "
            "changed only by the key change procedure (MeterConfig keyChange), which "
            "makes the keys itself and keeps the old ones until the new ones work"
        )
    if class_id == MBusClient.class_id:
        return (
            f"M-Bus client (class 72) {kind} {member} carries a HAN device's key: HAN "
            "keys go only through MasterDataLinkageConfig hanInstall (commands.enabled."
            "hanKeys), wrapped by the meter's master key, never in clear in a request"
        )
    return (
        f"class {class_id} {kind} {member} carries a secret (a password or HLS secret): "
        "secrets never travel in a MeterConfig request"
    )


def _int_field(
    item: JsonObject, key: str, where: str, lo: int, hi: int, problems: list[str]
) -> int:
    v = item.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        problems.append(f"{where}.{key}: {v!r}; must be an integer {lo}..{hi}")
        return -1
    return v


def check_typed(value: Any, where: str, problems: list[str]) -> TypedValue | None:
    """A typed JSON value (CLI.md) the core can encode, else a problem naming ``where``."""
    typed_value = as_typed(value)
    if typed_value is None:
        problems.append(
            f'{where}: must be typed JSON like {{"type": "long-unsigned", "value": 900}}'
        )
        return None
    try:
        _core.encode(typed_value)
    except Exception as exc:  # the core's encoder names the problem
        problems.append(f"{where}: not a valid typed DLMS value ({exc})")
        return None
    return typed_value


#: Members of one MeterConfig item; anything else is named as a problem (a misspelt
#: ``atribute`` must not leave a different attribute to be written).
ITEM_FIELDS = frozenset(
    {
        "class_id",
        "obis",
        "attribute",
        "value",
        "method",
        "parameters",
        "EndDevices",
        "EndDeviceGroups",
    }
)


def canonical_obis(text: Any, where: str, problems: list[str]) -> str | None:
    """``A.B.C.D.E.F`` with every group 0..255, written without leading zeros."""
    if isinstance(text, str) and _OBIS.match(text):
        groups = [int(g) for g in text.split(".")]
        if all(g <= 255 for g in groups):
            return ".".join(str(g) for g in groups)
    problems.append(f"{where}: {text!r} is not an OBIS code like 1.0.1.8.0.255 (six groups 0..255)")
    return None


def parse_items(raw: Any, where: str, problems: list[str]) -> list[SetItem]:
    """The valid items of ``raw``; every problem named in ``problems`` by its JSON path.
    The result has one item per element of ``raw`` only when ``problems`` gained none."""
    if not isinstance(raw, list) or not raw:
        problems.append(
            f"{where}: must be a non-empty array of "
            "{class_id, obis, attribute, value} or {class_id, obis, method[, "
            "parameters]}"
        )
        return []
    items: list[SetItem] = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{w}: must be an object")
            continue
        before = len(problems)
        unknown = sorted(str(k) for k in item if k not in ITEM_FIELDS)
        if unknown:
            problems.append(
                f"{w}: unknown field(s) {unknown}; allowed: {', '.join(sorted(ITEM_FIELDS))}"
            )
        class_id = _int_field(item, "class_id", w, 1, 0xFFFF, problems)
        obis = canonical_obis(item.get("obis"), f"{w}.obis", problems)
        if "method" in item:
            if "attribute" in item or "value" in item:
                problems.append(
                    f"{w}: give either attribute and value (SET) or method and "
                    "parameters (ACTION), not both"
                )
            method = _int_field(item, "method", w, 1, 127, problems)
            params = None
            if item.get("parameters") is not None:
                params = check_typed(item["parameters"], f"{w}.parameters", problems)
            if len(problems) == before and obis is not None:
                items.append(SetItem(class_id, obis, 0, params, method))
            continue
        if "parameters" in item:
            problems.append(f"{w}.parameters: only with method (ACTION); a SET takes value")
        attribute = _int_field(item, "attribute", w, 1, 127, problems)
        if attribute == 1:
            problems.append(f"{w}.attribute: 1 is the logical name, never writable")
        value = check_typed(item.get("value"), f"{w}.value", problems)
        if len(problems) == before and value is not None and obis is not None:
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
        return (
            f"object-class-inconsistent (the meter's {item.obis} is class "
            f"{info.class_id}, not {item.class_id})"
        )
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
        return (
            f"read-write-denied (the association's access to attribute {item.attribute} "
            f"is {getattr(access, 'name', access)}; not written)"
        )
    return None


async def program(
    session: ProgrammingSession,
    items: Sequence[SetItem],
    *,
    model: ObjectModel | None = None,
    check_model: bool = True,
) -> list[ItemResult]:
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
            out.append(ItemResult(item, True, read_back=ret))
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
