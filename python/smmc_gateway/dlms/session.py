"""The DLMS/COSEM client session: association, GET/SET/ACTION, release.

Public API (stable; the CLI, the head-end and the use cases code against it)::

    from smmc_gateway.dlms.session import ClientSession, SessionSettings, Security
    from smmc_gateway.dlms.transport import WrapperTransport

    settings = SessionSettings(
        client_sap=1,
        security=Security.hls_gmac(system_title=b"SMMCGW01", ek=EK, ak=AK,
                                   ic_store=store, ic_scope="meter-42"),
    )
    async with ClientSession(WrapperTransport.tcp(host, 4059, client_sap=1), settings,
                             meter_id="meter-42") as s:
        raw   = await s.get_raw(3, "1.0.1.8.0.255", 2)          # A-XDR bytes
        value = await s.get(8, "0.0.1.0.0.255", 2)              # typed value (dict)
        rows  = await s.read_profile("1.0.99.1.0.255", start=t0, end=t1)
        many  = await s.get_many([(3, "1.0.1.8.0.255", 2), (3, "1.0.2.8.0.255", 2)])
        await s.set(8, "0.0.1.0.0.255", 2, {"type": "octet-string", "value": "..."})
        ret   = await s.action(70, "0.0.96.3.10.255", 1, {"type": "integer", "value": 0})
        model = await s.read_object_model()

* ``ClientSession(transport, settings, *, meter_id="")``; ``open()`` sets up the
  link and the association (AARQ/AARE; LLS; HLS-GMAC with the
  reply_to_HLS_authentication step), ``close()`` releases (RLRQ/RLRE) and
  disconnects; ``async with`` does both.
* Reads: ``get_raw``, ``get``, ``get_many`` (with-list: one ``bytes`` or
  :class:`DataAccessError` per item), ``read_profile`` (rows as
  ``_core.decode_profile_buffer`` gives them; by range with ``start``/``end``,
  or by entry with ``from_entry``/``to_entry``; ``columns`` restricts),
  ``read_object_model``. ``access=`` takes a :class:`RangeAccess` or
  :class:`EntryAccess` for any GET.
* Writes: ``set``, ``set_many``; ``action``, ``action_many``. Values are typed
  values (dicts) or already-encoded A-XDR ``bytes``.
* Properties after ``open()``: ``conformance`` (list of names),
  ``max_pdu_size`` (the server's), ``server_system_title``, ``ciphered``,
  ``counters`` (the transport's :class:`WireCounters`), ``transport``.
* ``keep_alive()`` reads the clock time to keep a long-lived association alive.
* Errors (:mod:`smmc_gateway.dlms.errors`): ``AssociationRefused``,
  ``MeterTimeout``, ``LinkLost``, ``ProtocolError``, ``SecurityFailure``,
  ``DataAccessError``; all derive from ``SessionError``.

Block transfer: GET responses with datablocks are reassembled (next blocks
requested); SETs and ACTIONs larger than the negotiated PDU size go out in
blocks; ACTION responses in pblocks are reassembled; general-block-transfer
responses are reassembled (receive side) when the meter uses GBT. With a
ciphered association every request is sent glo- (or ded- with a dedicated key)
ciphered, security control 0x30 by default, and every response must carry the
policy's protection and a fresh invocation counter.
"""

from __future__ import annotations

from smmc_gateway.dlms.association import Security, SessionSettings
from smmc_gateway.dlms.client import ClientSession, EntryAccess, RangeAccess
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    DataAccessError,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    SecurityFailure,
    SessionError,
)

__all__ = [
    "AssociationRefused",
    "ClientSession",
    "DataAccessError",
    "EntryAccess",
    "LinkLost",
    "MeterTimeout",
    "ProtocolError",
    "RangeAccess",
    "Security",
    "SecurityFailure",
    "SessionError",
    "SessionSettings",
]
