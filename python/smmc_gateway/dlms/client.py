"""The client session object: one association with one meter over one transport.

See :mod:`smmc_gateway.dlms.session` for the public API and an example.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import structlog

from smmc_gateway import _core
from smmc_gateway.cosem.model import ObjectModel
from smmc_gateway.cosem.obis import Obis
from smmc_gateway.dlms.access import (
    CLOCK_COLUMN,
    Access,
    AttributeRef,
    ColumnRef,
    EntryAccess,
    MethodRef,
    RangeAccess,
    TypedValue,
    access_selection,
    axdr_length,
    logical_name,
    raw_value,
)
from smmc_gateway.dlms.association import SessionSettings
from smmc_gateway.dlms.errors import (
    DataAccessError,
    LinkLost,
    ProtocolError,
    SessionError,
)
from smmc_gateway.dlms.exchange import Exchange
from smmc_gateway.dlms.handshake import associate, release
from smmc_gateway.dlms.stream import Transport, WireCounters

log = structlog.get_logger("smmc_gateway.dlms")

__all__ = [
    "CLOCK_COLUMN",
    "Access",
    "AttributeRef",
    "ClientSession",
    "ColumnRef",
    "EntryAccess",
    "MethodRef",
    "RangeAccess",
    "access_selection",
]

# Bytes of APDU around a block's raw data (headers, descriptors, ciphering with tag).
_BLOCK_OVERHEAD = 64


class ClientSession:
    """One DLMS/COSEM association (see :mod:`smmc_gateway.dlms.session`)."""

    def __init__(
        self, transport: Transport, settings: SessionSettings | None = None, *, meter_id: str = ""
    ) -> None:
        self.transport = transport
        self.settings = settings or SessionSettings()
        self.meter_id = meter_id
        self.conformance: list[str] = []
        self.max_pdu_size: int = 0
        self.server_system_title: bytes | None = None
        self.ciphered = False
        self.associated = False
        s = self.settings
        self._x = Exchange(
            transport,
            s.response_timeout,
            meter_id,
            max_apdu=s.max_pdu_size,
            max_block_transfer=s.max_block_transfer,
            max_counter_jump=s.max_counter_jump,
        )
        transport.limit_received_apdu(s.max_pdu_size)
        self._x.priority_high = self.settings.invoke_priority_high
        self._lock = asyncio.Lock()
        self._last_activity = 0.0
        self._keeper: asyncio.Task[None] | None = None
        self.keep_alive_error: SessionError | None = None
        """Why the background keep-alive stopped, if it failed."""

    def __repr__(self) -> str:
        return f"ClientSession({self.meter_id or self.transport.description!r})"

    @property
    def counters(self) -> WireCounters:
        return self.transport.counters

    async def __aenter__(self) -> ClientSession:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ association
    async def open(self) -> None:
        """Link set-up and association; raises AssociationRefused, MeterTimeout,
        LinkLost, SecurityFailure, ProtocolError, TransportError."""
        budget = self.settings.association_timeout
        deadline = time.monotonic() + budget
        try:
            await self.transport.open(timeout=budget)
            agreed = await associate(self._x, self.settings, self.meter_id, deadline, budget)
            self.conformance = agreed.conformance
            self.max_pdu_size = agreed.max_pdu_size
            self.server_system_title = agreed.server_system_title
            self.ciphered = self._x.cipher is not None
            self.associated = True
        except BaseException:
            await self.transport.close(timeout=1.0)
            raise
        self._last_activity = time.monotonic()
        if self.settings.keep_alive_interval:
            self._keeper = asyncio.create_task(
                self._keep_alive_loop(self.settings.keep_alive_interval)
            )

    async def _keep_alive_loop(self, interval: float) -> None:
        while self.associated:
            idle = time.monotonic() - self._last_activity
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                await self.keep_alive()
            except SessionError as exc:
                self.keep_alive_error = exc
                log.warning("keep_alive_failed", meter_id=self.meter_id, error=str(exc))
                return

    async def close(self) -> None:
        """Release (RLRQ/RLRE) when associated, then disconnect; never raises
        for a meter that is already gone."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        try:
            if self.associated and self.settings.release:
                await release(self._x, self.settings, self.meter_id)
        except (SessionError, _core.DlmsError) as exc:
            # Release is a courtesy: a meter that answers nothing, or a
            # malformed RLRE (seen from Gurux), must not make close() raise.
            log.debug("release_failed", meter_id=self.meter_id, why=str(exc))
        finally:
            self.associated = False
            await self.transport.close()
            if self._x.cipher is not None:
                self._x.cipher.flush()

    # ------------------------------------------------------------ GET
    def _begin(self, what: str) -> tuple[float, float]:
        if not self.associated:
            raise LinkLost(f"{what}: the session is not open")
        budget = self.settings.operation_timeout
        self._last_activity = now = time.monotonic()
        return now + budget, budget

    async def get_raw(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> bytes:
        """One attribute as raw A-XDR bytes (block transfer reassembled)."""
        ln = logical_name(obis)
        what = f"GET {class_id}/{ln}/{attribute_id}"
        async with self._lock:
            deadline, budget = self._begin(what)
            request = {
                "apdu": "get-request-normal",
                "invoke_id_and_priority": self._x.next_invoke(),
                "attribute": {
                    "class_id": class_id,
                    "obis": ln,
                    "attribute_id": attribute_id,
                    "access_selection": access_selection(access),
                },
            }
            answer = await self._x.request(request, deadline, what, budget)
            if answer["apdu"] == "get-response-normal":
                result = answer["result"]
                if "data_raw" in result and result["data_raw"] is not None:
                    return bytes(result["data_raw"])
                raise DataAccessError(class_id, ln, attribute_id, str(result["data_access_result"]))
            if answer["apdu"] == "get-response-with-datablock":
                return await self._get_blocks(
                    answer, deadline, what, budget, (class_id, ln, attribute_id)
                )
            raise ProtocolError(f"{what}: got {answer['apdu']}")

    async def _get_blocks(
        self,
        answer: dict[str, Any],
        deadline: float,
        what: str,
        budget: float,
        ref: tuple[int, str, int],
    ) -> bytes:
        """Collect get-response-with-datablock blocks, asking for each next one."""
        parts: list[bytes] = []
        total = 0
        expected = answer["block_number"]
        while True:
            if answer["apdu"] != "get-response-with-datablock":
                raise ProtocolError(f"{what}: {answer['apdu']} in the middle of a block transfer")
            if answer["block_number"] != expected:
                raise ProtocolError(
                    f"{what}: block {answer['block_number']} received, expected {expected}"
                )
            if answer.get("data_access_result") is not None:
                raise DataAccessError(*ref, str(answer["data_access_result"]))
            parts.append(answer["raw_data"] or b"")
            total += len(parts[-1])
            self._x.check_reassembled(f"{what}: data blocks up to block {expected}", total)
            if answer["last_block"]:
                return b"".join(parts)
            request = {
                "apdu": "get-request-next",
                "invoke_id_and_priority": self._x.next_invoke(),
                "block_number": expected,
            }
            expected += 1
            answer = await self._x.request(request, deadline, f"{what} block {expected}", budget)

    async def get(
        self, class_id: int, obis: Obis | str, attribute_id: int, *, access: Access | None = None
    ) -> TypedValue:
        """One attribute as a typed value."""
        return _core.decode(await self.get_raw(class_id, obis, attribute_id, access=access))

    async def get_many(
        self, refs: Sequence[AttributeRef], *, access: Sequence[Access | None] | None = None
    ) -> list[bytes | DataAccessError]:
        """GET with-list: per item raw A-XDR bytes or the DataAccessError."""
        if not refs:
            return []
        lns = [(c, logical_name(o), a) for c, o, a in refs]
        sels = list(access) if access is not None else [None] * len(refs)
        what = f"GET with-list of {len(refs)}"
        async with self._lock:
            deadline, budget = self._begin(what)
            iid = self._x.next_invoke()
            request = {
                "apdu": "get-request-with-list",
                "invoke_id_and_priority": iid,
                "attributes": [
                    {
                        "class_id": c,
                        "obis": o,
                        "attribute_id": a,
                        "access_selection": access_selection(sel),
                    }
                    for (c, o, a), sel in zip(lns, sels, strict=True)
                ],
            }
            answer = await self._x.request(request, deadline, what, budget)
            if answer["apdu"] == "get-response-with-datablock":
                raw = await self._get_blocks(answer, deadline, what, budget, (0, "list", 0))
                answer = _core.decode_apdu(bytes([0xC4, 0x03, iid]) + raw)
            if answer["apdu"] != "get-response-with-list":
                raise ProtocolError(f"{what}: got {answer['apdu']}")
            results = answer["results"]
            if len(results) != len(refs):
                raise ProtocolError(f"{what}: {len(results)} results for {len(refs)} attributes")
            out: list[bytes | DataAccessError] = []
            for (c, o, a), result in zip(lns, results, strict=True):
                if result.get("data_raw") is not None:
                    out.append(bytes(result["data_raw"]))
                else:
                    out.append(DataAccessError(c, o, a, str(result["data_access_result"])))
            return out

    async def read_profile(
        self,
        obis: Obis | str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        from_entry: int | None = None,
        to_entry: int = 0,
        columns: Sequence[ColumnRef] = (),
        capture_period: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Profile-generic buffer rows (``_core.decode_profile_buffer``);
        by range when ``start``/``end`` are given, by entry with
        ``from_entry``, else the whole buffer. ``capture_period`` (seconds) is
        read from attribute 4 when None."""
        access: Access | None = None
        if start is not None or end is not None:
            if start is None or end is None:
                raise ValueError("a range read needs both start and end")
            access = RangeAccess(start=start, end=end, columns=tuple(columns))
        elif from_entry is not None:
            access = EntryAccess(from_entry=from_entry, to_entry=to_entry)
        if capture_period is None:
            period = await self.get(7, obis, 4)
            capture_period = int(period["value"])
        raw = await self.get_raw(7, obis, 2, access=access)
        try:
            return _core.decode_profile_buffer(raw, capture_period or None)
        except _core.DlmsError as exc:
            raise ProtocolError(f"profile {logical_name(obis)} buffer: {exc}") from exc

    # ------------------------------------------------------------ SET
    def _gbt_instead(self, service: str) -> int | None:
        """The GBT block size when a long request must go in general-block-
        transfer (the meter agreed GBT but not ``service``'s own blocks)."""
        if service in self.conformance or "general-block-transfer" not in self.conformance:
            return None
        return self._block_size()

    def _block_size(self) -> int:
        limit = self.max_pdu_size or 0xFFFF
        if self.settings.max_send_pdu is not None:
            limit = min(limit, self.settings.max_send_pdu)
        return max(16, limit - _BLOCK_OVERHEAD)

    async def set(
        self,
        class_id: int,
        obis: Obis | str,
        attribute_id: int,
        value: TypedValue | bytes,
        *,
        access: Access | None = None,
    ) -> None:
        """SET one attribute (in datablocks when larger than the PDU size)."""
        ln = logical_name(obis)
        what = f"SET {class_id}/{ln}/{attribute_id}"
        raw = raw_value(value)
        descriptor = {
            "class_id": class_id,
            "obis": ln,
            "attribute_id": attribute_id,
            "access_selection": access_selection(access),
        }
        async with self._lock:
            deadline, budget = self._begin(what)
            gbt = self._gbt_instead("block-transfer-with-set-or-write")
            if len(raw) <= self._block_size() or gbt is not None:
                request = {
                    "apdu": "set-request-normal",
                    "invoke_id_and_priority": self._x.next_invoke(),
                    "attribute": descriptor,
                    "value_raw": raw,
                }
                answer = await self._x.request(request, deadline, what, budget, gbt_block=gbt)
                if answer["apdu"] != "set-response-normal":
                    raise ProtocolError(f"{what}: got {answer['apdu']}")
                result = answer["result"]
            else:
                first = {"apdu": "set-request-with-first-datablock", "attribute": descriptor}
                answer = await self._set_blocks(first, raw, deadline, what, budget)
                if answer["apdu"] != "set-response-last-datablock":
                    raise ProtocolError(f"{what}: got {answer['apdu']} after the last block")
                result = answer["result"]
            if result != "success":
                raise DataAccessError(class_id, ln, attribute_id, str(result))

    async def _set_blocks(
        self, first: dict[str, Any], raw: bytes, deadline: float, what: str, budget: float
    ) -> dict[str, Any]:
        """Send ``raw`` in datablocks; return the answer to the last block."""
        size = self._block_size()
        chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            request: dict[str, Any] = (
                dict(first) if number == 1 else {"apdu": "set-request-with-datablock"}
            )
            request.update(
                invoke_id_and_priority=self._x.next_invoke(),
                last_block=last,
                block_number=number,
                raw_data=chunk,
            )
            answer = await self._x.request(request, deadline, f"{what} block {number}", budget)
            if last:
                return answer
            if answer["apdu"] != "set-response-datablock":
                if answer.get("result") not in (None, "success"):
                    raise DataAccessError(0, "?", 0, str(answer["result"]))
                raise ProtocolError(f"{what}: got {answer['apdu']} for block {number}")
            if answer["block_number"] != number:
                raise ProtocolError(
                    f"{what}: block {answer['block_number']} acknowledged, sent {number}"
                )
        raise AssertionError("unreachable")

    async def set_many(
        self, refs: Sequence[AttributeRef], values: Sequence[TypedValue | bytes]
    ) -> list[DataAccessError | None]:
        """SET with-list: per item None (success) or the DataAccessError."""
        if len(refs) != len(values):
            raise ValueError(f"{len(refs)} attributes but {len(values)} values")
        lns = [(c, logical_name(o), a) for c, o, a in refs]
        raws = [raw_value(v) for v in values]
        descriptors = [
            {"class_id": c, "obis": o, "attribute_id": a, "access_selection": None}
            for c, o, a in lns
        ]
        what = f"SET with-list of {len(refs)}"
        async with self._lock:
            deadline, budget = self._begin(what)
            if sum(map(len, raws)) <= self._block_size():
                request = {
                    "apdu": "set-request-with-list",
                    "invoke_id_and_priority": self._x.next_invoke(),
                    "attributes": descriptors,
                    "values_raw": raws,
                }
                answer = await self._x.request(request, deadline, what, budget)
                expected = "set-response-with-list"
            else:
                first = {
                    "apdu": "set-request-with-list-and-first-datablock",
                    "attributes": descriptors,
                }
                raw = axdr_length(len(raws)) + b"".join(raws)
                answer = await self._set_blocks(first, raw, deadline, what, budget)
                expected = "set-response-last-datablock-with-list"
            if answer["apdu"] != expected:
                raise ProtocolError(f"{what}: got {answer['apdu']}")
            results = answer["results"]
            if len(results) != len(refs):
                raise ProtocolError(f"{what}: {len(results)} results for {len(refs)} attributes")
            return [
                None if r == "success" else DataAccessError(c, o, a, str(r))
                for (c, o, a), r in zip(lns, results, strict=True)
            ]

    # ------------------------------------------------------------ ACTION
    async def action(
        self,
        class_id: int,
        obis: Obis | str,
        method_id: int,
        parameters: TypedValue | bytes | None = None,
    ) -> TypedValue | None:
        """Invoke a method; returns the typed return data, if any."""
        ln = logical_name(obis)
        what = f"ACTION {class_id}/{ln}/m{method_id}"
        method = {"class_id": class_id, "obis": ln, "method_id": method_id}
        raw = raw_value(parameters) if parameters is not None else None
        async with self._lock:
            deadline, budget = self._begin(what)
            gbt = self._gbt_instead("block-transfer-with-action")
            if raw is None or len(raw) <= self._block_size() or gbt is not None:
                request = {
                    "apdu": "action-request-normal",
                    "invoke_id_and_priority": self._x.next_invoke(),
                    "method": method,
                    "parameters_raw": raw,
                }
                answer = await self._x.request(request, deadline, what, budget, gbt_block=gbt)
            else:
                answer = await self._action_pblocks(method, raw, deadline, what, budget)
            if answer["apdu"] == "action-response-with-pblock":
                answer = await self._action_response_pblocks(answer, deadline, what, budget)
            if answer["apdu"] != "action-response-normal":
                raise ProtocolError(f"{what}: got {answer['apdu']}")
            return _action_result(answer, class_id, ln, method_id)

    async def _action_pblocks(
        self, method: dict[str, Any], raw: bytes, deadline: float, what: str, budget: float
    ) -> dict[str, Any]:
        size = self._block_size()
        chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
        answer: dict[str, Any] = {}
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            request: dict[str, Any] = (
                {"apdu": "action-request-with-first-pblock", "method": method}
                if number == 1
                else {"apdu": "action-request-with-pblock"}
            )
            request.update(
                invoke_id_and_priority=self._x.next_invoke(),
                last_block=last,
                block_number=number,
                raw_data=chunk,
            )
            answer = await self._x.request(request, deadline, f"{what} pblock {number}", budget)
            if last:
                break
            if answer["apdu"] != "action-response-next-pblock":
                if answer["apdu"] == "action-response-normal":
                    return answer  # the meter refused early (its result says why)
                raise ProtocolError(f"{what}: got {answer['apdu']} for pblock {number}")
            if answer["block_number"] != number:
                raise ProtocolError(
                    f"{what}: pblock {answer['block_number']} acknowledged, sent {number}"
                )
        return answer

    async def _action_response_pblocks(
        self, answer: dict[str, Any], deadline: float, what: str, budget: float
    ) -> dict[str, Any]:
        """Reassemble an action response sent in pblocks. The blocks carry the
        encoded response-with-optional-data (result, optional return data)."""
        parts: list[bytes] = []
        total = 0
        expected = answer["block_number"]
        iid = answer["invoke_id_and_priority"]
        while True:
            if answer["apdu"] != "action-response-with-pblock":
                raise ProtocolError(f"{what}: {answer['apdu']} in the middle of pblocks")
            if answer["block_number"] != expected:
                raise ProtocolError(f"{what}: pblock {answer['block_number']}, expected {expected}")
            parts.append(answer["raw_data"] or b"")
            total += len(parts[-1])
            self._x.check_reassembled(f"{what}: pblocks up to pblock {expected}", total)
            if answer["last_block"]:
                break
            request = {
                "apdu": "action-request-next-pblock",
                "invoke_id_and_priority": self._x.next_invoke(),
                "block_number": expected,
            }
            expected += 1
            answer = await self._x.request(request, deadline, f"{what} pblock {expected}", budget)
        raw = b"".join(parts)
        try:
            return _core.decode_apdu(bytes([0xC7, 0x01, iid]) + raw)
        except _core.ApduError:
            # Some meters put only the return Data in the pblocks.
            _core.decode(raw)
            return {
                "apdu": "action-response-normal",
                "result": "success",
                "return_data": {"data_raw": raw},
            }

    async def action_many(
        self, refs: Sequence[MethodRef], parameters: Sequence[TypedValue | bytes | None]
    ) -> list[TypedValue | DataAccessError | None]:
        """ACTION with-list: per item the return data (or None) or the error."""
        if len(refs) != len(parameters):
            raise ValueError(f"{len(refs)} methods but {len(parameters)} parameters")
        lns = [(c, logical_name(o), m) for c, o, m in refs]
        what = f"ACTION with-list of {len(refs)}"
        async with self._lock:
            deadline, budget = self._begin(what)
            request = {
                "apdu": "action-request-with-list",
                "invoke_id_and_priority": self._x.next_invoke(),
                "methods": [{"class_id": c, "obis": o, "method_id": m} for c, o, m in lns],
                "parameters_raw": [raw_value(p) for p in parameters],
            }
            answer = await self._x.request(request, deadline, what, budget)
            if answer["apdu"] != "action-response-with-list":
                raise ProtocolError(f"{what}: got {answer['apdu']}")
            results = answer["results"]
            if len(results) != len(refs):
                raise ProtocolError(f"{what}: {len(results)} results for {len(refs)} methods")
            out: list[TypedValue | DataAccessError | None] = []
            for (c, o, m), result in zip(lns, results, strict=True):
                try:
                    out.append(_action_result(result, c, o, m))
                except DataAccessError as exc:
                    out.append(exc)
            return out

    # ------------------------------------------------------------ helpers
    async def read_object_model(self) -> ObjectModel:
        """Association LN (0.0.40.0.0.255) attribute 2 to an ObjectModel."""
        return ObjectModel.from_object_list(await self.get(15, "0.0.40.0.0.255", 2))

    async def keep_alive(self) -> None:
        """A cheap request (the clock time) that keeps the association open."""
        await self.get_raw(8, "0.0.1.0.0.255", 2)


def _action_result(
    answer: dict[str, Any], class_id: int, ln: str, method_id: int
) -> TypedValue | None:
    if answer["result"] != "success":
        raise DataAccessError(class_id, ln, method_id, str(answer["result"]), method=True)
    ret = answer.get("return_data")
    if not ret:
        return None
    if ret.get("data_raw") is not None:
        return _core.decode(ret["data_raw"])
    raise DataAccessError(class_id, ln, method_id, str(ret["data_access_result"]), method=True)
