"""GET, SET and ACTION on the meter's side: typed requests in, typed answers out.

The association machine (``_core.ServerAssociation``, driven by
:class:`~smmc_gateway.simulator.server.DlmsServer`) hands over complete
requests (blocks and general-block-transfer reassembled, deciphered, the
negotiated conformance checked) and sends the answer in whatever form fits
the client (normal, with-list, datablocks, pblocks, GBT, ciphered). Here the
:class:`~smmc_gateway.simulator.meter.SimulatedMeter` answers: per attribute
its value or a data-access-result, per method an action-result and return data.
"""

from __future__ import annotations

from datetime import datetime

from smmc_gateway import _core
from smmc_gateway.simulator.meter import SimulatedMeter


def answer(
    assoc: _core.ServerAssociation,
    event: _core.Request,
    meter: SimulatedMeter,
    client: int,
    now: datetime,
) -> None:
    """Answer one request of ``client`` from ``meter``'s objects."""
    request = event.request
    if isinstance(request, _core.GetRequest):
        assoc.respond_get(event.id, [_read(meter, a, client, now) for a in request.attributes])
    elif isinstance(request, _core.SetRequest):
        assoc.respond_set(event.id, [_write(meter, a, v, client, now) for a, v in request.items])
    else:
        assoc.respond_action(
            event.id, [_invoke(meter, m, p, client, now) for m, p in request.items]
        )


def _read(meter: SimulatedMeter, a: _core.Attribute, client: int, now: datetime) -> bytes | str:
    selector, parameters = a.selector, None
    if a.parameters is not None:
        try:
            parameters = _core.decode(a.parameters)
        except _core.DlmsError:
            return "type-unmatched"
    value = meter.get(
        a.class_id,
        a.obis,
        a.attribute_id,
        now=now,
        client=client,
        selector=selector,
        parameters=parameters,
    )
    if isinstance(value, str):
        return value
    return _core.encode(value)


def _write(
    meter: SimulatedMeter, a: _core.Attribute, raw: bytes, client: int, now: datetime
) -> str:
    if a.selector is not None:
        return "scope-of-access-violated"
    try:
        value = _core.decode(raw)
    except _core.DlmsError:
        return "type-unmatched"
    return meter.set(a.class_id, a.obis, a.attribute_id, value, now=now, client=client)


def _invoke(
    meter: SimulatedMeter, m: _core.Method, raw: bytes | None, client: int, now: datetime
) -> tuple[str, bytes | None]:
    try:
        params = None if raw is None else _core.decode(raw)
    except _core.DlmsError:
        return ("type-unmatched", None)
    result, value = meter.action(m.class_id, m.obis, m.method_id, params, now=now, client=client)
    return (result, None if value is None else _core.encode(value))
