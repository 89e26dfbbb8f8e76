"""GET, SET and ACTION on the meter's side, with block transfer both ways
(Green Book 9.3 / 9.4.6): requests as decoded APDU dicts in, plain response
APDUs out; :class:`~smmc_gateway.simulator.server.DlmsServer` does the
ciphering around them.

* GET: normal, with-list and next. An answer longer than the client's max
  receive PDU (minus ciphering overhead) goes out in DataBlock-G pieces; the
  raw data of a normal GET is the encoded value, of a with-list the encoded
  SEQUENCE OF Get-Data-Result. get-request-next names the last block received
  (the previous one is sent again when the client missed it).
* SET: normal, with-list, and with-first-datablock / with-datablock
  (reassembled, then decoded as one value or as a SEQUENCE OF Data).
* ACTION: normal, with-list, with-first-pblock / with-pblock and
  next-pblock for long return data. Association LN method 1
  (reply_to_HLS_authentication) checks the client's f(StoC) here.
While an HLS association is still pending, only that ACTION is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smmc_gateway import _core
from smmc_gateway.cosem.values import ValueTypeError, as_bytes, octet_string
from smmc_gateway.simulator.acse import Association

if TYPE_CHECKING:
    from smmc_gateway.simulator.server import DlmsServer

BLOCK_OVERHEAD = 14  # a datablock response around its raw data
ASSOCIATION_OBIS = "0.0.40.0.0.255"


def _result(value: Any) -> dict[str, Any]:
    """A meter answer (typed value or data-access-result name) as Get-Data-Result."""
    if isinstance(value, str):
        return {"data_access_result": value}
    return {"data_raw": _core.encode(value)}


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def _selection(attr: dict[str, Any]) -> tuple[int | None, Any]:
    sel = attr.get("access_selection")
    if not sel:
        return None, None
    return int(sel["selector"]), _core.decode(sel["parameters_raw"])


def _sequence_of_data(raw: bytes) -> list[dict[str, Any]]:
    """SEQUENCE OF Data (A-XDR length + values) is an array without its tag."""
    return list(_core.decode(b"\x01" + raw)["value"])


def dispatch(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> list[bytes] | None:
    kind: str = req["apdu"]
    if assoc.pending and not _is_hls_reply(req):
        return None
    handlers = {
        "get-request-normal": _get_normal,
        "get-request-with-list": _get_list,
        "get-request-next": _get_next,
        "set-request-normal": _set_normal,
        "set-request-with-list": _set_list,
        "set-request-with-first-datablock": _set_first,
        "set-request-with-list-and-first-datablock": _set_first,
        "set-request-with-datablock": _set_block,
        "action-request-normal": _action_normal,
        "action-request-with-list": _action_list,
        "action-request-with-first-pblock": _action_first,
        "action-request-with-list-and-first-pblock": _action_first,
        "action-request-with-pblock": _action_block,
        "action-request-next-pblock": _action_next,
    }
    handler = handlers.get(kind)
    if handler is None:
        return None
    return [handler(server, assoc, req)]


def _is_hls_reply(req: dict[str, Any]) -> bool:
    method = req.get("method") or {}
    return (
        req["apdu"] == "action-request-normal"
        and method.get("class_id") == 15
        and method.get("obis") == ASSOCIATION_OBIS
        and method.get("method_id") == 1
    )


# ---------------------------------------------------------------------- GET
def _read(server: DlmsServer, assoc: Association, attr: dict[str, Any]) -> Any:
    try:
        selector, parameters = _selection(attr)
    except _core.DlmsError:
        return "type-unmatched"
    return server.meter.get(
        attr["class_id"],
        attr["obis"],
        attr["attribute_id"],
        now=server.now(),
        client=assoc.client,
        selector=selector,
        parameters=parameters,
    )


def _get_block(assoc: Association, iid: int, number: int) -> bytes:
    blocks = assoc.get_blocks
    last = number == len(blocks)
    apdu = _core.encode_apdu(
        {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": iid,
            "last_block": last,
            "block_number": number,
            "raw_data": blocks[number - 1],
            "data_access_result": None,
        }
    )
    assoc.get_next = number
    if last:
        assoc.get_blocks = []
    return apdu


def _long_get(server: DlmsServer, assoc: Association, iid: int, full: bytes, raw: bytes) -> bytes:
    room = server.room(assoc)
    if len(full) <= room:
        return full
    if "block-transfer-with-get-or-read" not in assoc.conformance:
        return _core.encode_apdu(
            {
                "apdu": "get-response-normal",
                "invoke_id_and_priority": iid,
                "result": {"data_access_result": "other-reason"},
            }
        )
    assoc.get_blocks = _chunks(raw, room - BLOCK_OVERHEAD)
    return _get_block(assoc, iid, 1)


def _get_normal(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    assoc.get_blocks = []
    iid = req["invoke_id_and_priority"]
    value = _read(server, assoc, req["attribute"])
    full = _core.encode_apdu(
        {"apdu": "get-response-normal", "invoke_id_and_priority": iid, "result": _result(value)}
    )
    if isinstance(value, str):
        return full
    return _long_get(server, assoc, iid, full, _core.encode(value))


def _get_list(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    assoc.get_blocks = []
    iid = req["invoke_id_and_priority"]
    results = [_result(_read(server, assoc, a)) for a in req["attributes"]]
    full = _core.encode_apdu(
        {"apdu": "get-response-with-list", "invoke_id_and_priority": iid, "results": results}
    )
    return _long_get(server, assoc, iid, full, full[3:])


def _get_next(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    iid = req["invoke_id_and_priority"]
    number = req["block_number"]
    if assoc.get_blocks and number == assoc.get_next:
        return _get_block(assoc, iid, number + 1)
    if assoc.get_blocks and number == assoc.get_next - 1:
        return _get_block(assoc, iid, number + 1)  # our last block was lost: again
    result = "data-block-number-invalid" if assoc.get_blocks else "no-long-get-in-progress"
    assoc.get_blocks = []
    return _core.encode_apdu(
        {
            "apdu": "get-response-with-datablock",
            "invoke_id_and_priority": iid,
            "last_block": True,
            "block_number": number,
            "raw_data": None,
            "data_access_result": result,
        }
    )


# ---------------------------------------------------------------------- SET
def _write(server: DlmsServer, assoc: Association, attr: dict[str, Any], value: Any) -> str:
    if attr.get("access_selection"):
        return "scope-of-access-violated"
    return server.meter.set(
        attr["class_id"],
        attr["obis"],
        attr["attribute_id"],
        value,
        now=server.now(),
        client=assoc.client,
    )


def _set_normal(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    result = _write(server, assoc, req["attribute"], _core.decode(req["value_raw"]))
    return _core.encode_apdu(
        {
            "apdu": "set-response-normal",
            "invoke_id_and_priority": req["invoke_id_and_priority"],
            "result": result,
        }
    )


def _set_list(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    results = [
        _write(server, assoc, a, _core.decode(v))
        for a, v in zip(req["attributes"], req["values_raw"], strict=False)
    ]
    if len(req["attributes"]) != len(req["values_raw"]):
        results = ["type-unmatched"] * len(req["attributes"])
    return _core.encode_apdu(
        {
            "apdu": "set-response-with-list",
            "invoke_id_and_priority": req["invoke_id_and_priority"],
            "results": results,
        }
    )


def _set_first(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    assoc.set_target = req.get("attributes", req.get("attribute"))
    assoc.set_buffer = bytearray()
    assoc.set_next = req["block_number"]
    return _set_block(server, assoc, req)


def _set_block(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    iid = req["invoke_id_and_priority"]
    number = req["block_number"]
    target = assoc.set_target
    if target is None or number != assoc.set_next:
        assoc.set_target = None
        result = "data-block-number-invalid" if target is not None else "no-long-set-in-progress"
        return _core.encode_apdu(
            {
                "apdu": "set-response-last-datablock",
                "invoke_id_and_priority": iid,
                "result": result,
                "block_number": number,
            }
        )
    assoc.set_buffer += req["raw_data"]
    assoc.set_next = number + 1
    if not req["last_block"]:
        return _core.encode_apdu(
            {
                "apdu": "set-response-datablock",
                "invoke_id_and_priority": iid,
                "block_number": number,
            }
        )
    assoc.set_target = None
    raw = bytes(assoc.set_buffer)
    assoc.set_buffer = bytearray()
    if isinstance(target, list):
        try:
            values = _sequence_of_data(raw)
        except _core.DlmsError:
            values = []
        if len(values) != len(target):
            results = ["type-unmatched"] * len(target)
        else:
            results = [_write(server, assoc, a, v) for a, v in zip(target, values, strict=True)]
        return _core.encode_apdu(
            {
                "apdu": "set-response-last-datablock-with-list",
                "invoke_id_and_priority": iid,
                "results": results,
                "block_number": number,
            }
        )
    try:
        result = _write(server, assoc, target, _core.decode(raw))
    except _core.DlmsError:
        result = "type-unmatched"
    return _core.encode_apdu(
        {
            "apdu": "set-response-last-datablock",
            "invoke_id_and_priority": iid,
            "result": result,
            "block_number": number,
        }
    )


# ---------------------------------------------------------------------- ACTION
def _invoke(
    server: DlmsServer, assoc: Association, method: dict[str, Any], params: Any
) -> tuple[str, Any]:
    if (
        method["class_id"] == 15
        and method["obis"] == ASSOCIATION_OBIS
        and method["method_id"] == 1
        and assoc.mechanism == "hls-gmac"
    ):
        try:
            f_stoc = as_bytes(params)
        except ValueTypeError:
            return ("type-unmatched", None)
        reply = server.hls(assoc, f_stoc)
        if reply is None:
            server.log(f"client {assoc.client}: HLS f(StoC) did not verify")
            return ("other-reason", None)
        return ("success", octet_string(reply))
    return server.meter.action(
        method["class_id"],
        method["obis"],
        method["method_id"],
        params,
        now=server.now(),
        client=assoc.client,
    )


def _return_data(value: Any) -> dict[str, Any] | None:
    return None if value is None else _result(value)


def _action_normal(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    raw = req.get("parameters_raw")
    params = None if raw is None else _core.decode(raw)
    result, value = _invoke(server, assoc, req["method"], params)
    return _action_response(server, assoc, req["invoke_id_and_priority"], result, value)


def _action_response(
    server: DlmsServer, assoc: Association, iid: int, result: str, value: Any
) -> bytes:
    full = _core.encode_apdu(
        {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": iid,
            "result": result,
            "return_data": _return_data(value),
        }
    )
    if value is None or len(full) <= server.room(assoc):
        return full
    if "block-transfer-with-action" not in assoc.conformance:
        return _core.encode_apdu(
            {
                "apdu": "action-response-normal",
                "invoke_id_and_priority": iid,
                "result": "other-reason",
                "return_data": None,
            }
        )
    assoc.action_blocks = _chunks(_core.encode(value), server.room(assoc) - BLOCK_OVERHEAD)
    return _action_pblock(assoc, iid, 1)


def _action_pblock(assoc: Association, iid: int, number: int) -> bytes:
    last = number == len(assoc.action_blocks)
    apdu = _core.encode_apdu(
        {
            "apdu": "action-response-with-pblock",
            "invoke_id_and_priority": iid,
            "last_block": last,
            "block_number": number,
            "raw_data": assoc.action_blocks[number - 1],
        }
    )
    assoc.action_block_next = number
    if last:
        assoc.action_blocks = []
    return apdu


def _action_next(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    iid = req["invoke_id_and_priority"]
    number = req["block_number"]
    if assoc.action_blocks and number in (assoc.action_block_next, assoc.action_block_next - 1):
        return _action_pblock(assoc, iid, number + 1)
    result = "data-block-number-invalid" if assoc.action_blocks else "no-long-action-in-progress"
    assoc.action_blocks = []
    return _core.encode_apdu(
        {
            "apdu": "action-response-normal",
            "invoke_id_and_priority": iid,
            "result": result,
            "return_data": None,
        }
    )


def _action_list(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    methods, raws = req["methods"], req["parameters_raw"]
    if len(methods) != len(raws):
        outcomes = [("type-unmatched", None)] * len(methods)
    else:
        outcomes = [
            _invoke(server, assoc, m, None if r is None else _core.decode(r))
            for m, r in zip(methods, raws, strict=True)
        ]
    return _core.encode_apdu(
        {
            "apdu": "action-response-with-list",
            "invoke_id_and_priority": req["invoke_id_and_priority"],
            "results": [{"result": r, "return_data": _return_data(v)} for r, v in outcomes],
        }
    )


def _action_first(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    assoc.action_target = req.get("methods", req.get("method"))
    assoc.action_buffer = bytearray()
    assoc.action_next = req["block_number"]
    return _action_block(server, assoc, req)


def _action_block(server: DlmsServer, assoc: Association, req: dict[str, Any]) -> bytes:
    iid = req["invoke_id_and_priority"]
    number = req["block_number"]
    target = assoc.action_target
    if target is None or number != assoc.action_next:
        assoc.action_target = None
        result = "data-block-number-invalid" if target is not None else "no-long-action-in-progress"
        return _core.encode_apdu(
            {
                "apdu": "action-response-normal",
                "invoke_id_and_priority": iid,
                "result": result,
                "return_data": None,
            }
        )
    assoc.action_buffer += req["raw_data"]
    assoc.action_next = number + 1
    if not req["last_block"]:
        return _core.encode_apdu(
            {
                "apdu": "action-response-next-pblock",
                "invoke_id_and_priority": iid,
                "block_number": number,
            }
        )
    assoc.action_target = None
    raw = bytes(assoc.action_buffer)
    assoc.action_buffer = bytearray()
    try:
        if isinstance(target, list):
            params = _sequence_of_data(raw)
            if len(params) != len(target):
                raise ValueError("parameter count")
            outcomes = [_invoke(server, assoc, m, p) for m, p in zip(target, params, strict=True)]
            return _core.encode_apdu(
                {
                    "apdu": "action-response-with-list",
                    "invoke_id_and_priority": iid,
                    "results": [{"result": r, "return_data": _return_data(v)} for r, v in outcomes],
                }
            )
        result, value = _invoke(server, assoc, target, _core.decode(raw))
    except (_core.DlmsError, ValueError):
        result, value = "type-unmatched", None
    return _action_response(server, assoc, iid, result, value)
