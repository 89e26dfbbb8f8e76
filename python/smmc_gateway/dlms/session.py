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
  disconnects (never raises); ``async with`` does both.
* Reads: ``get_raw``, ``get``, ``get_many`` (one ``bytes`` or
  :class:`DataAccessError` per item; GET with-list when agreed), ``get_all``
  (typed values; the first refused item raises), ``read_profile`` (rows as
  ``_core.decode_profile_buffer`` gives them; by range with ``start``/``end``,
  or by entry with ``from_entry``/``to_entry``; ``columns`` restricts to
  capture objects ``(class_id, obis, attribute, data_index)``),
  ``read_object_model``. ``access=`` takes a :class:`RangeAccess` or
  :class:`EntryAccess` for any GET.
* Writes: ``set``, ``set_many`` (per item None or DataAccessError; SET
  with-list when agreed), ``set_all`` (the first refused item raises); ``action``
  (returns the typed return data or None), ``action_many``. Values are typed
  values (dicts) or already-encoded A-XDR ``bytes``.
* Properties after ``open()``: ``conformance`` (list of names), ``with_list``
  (multiple-references agreed),
  ``max_pdu_size`` (the server's), ``server_system_title``, ``ciphered``,
  ``associated``, ``counters`` (the transport's :class:`WireCounters`),
  ``transport``, ``keep_alive_error``.
* ``keep_alive()`` reads the clock; ``SessionSettings.keep_alive_interval``
  does it in the background while the association is idle.
* :class:`SessionSettings`: ``client_sap``, ``security``, ``max_pdu_size``
  (ours), ``max_send_pdu`` (cap on what we send), ``conformance``,
  ``response_timeout`` (per answer), ``operation_timeout`` (one service with
  all its blocks), ``association_timeout``, ``keep_alive_interval``,
  ``release``, ``max_block_transfer`` (ceiling on one answer reassembled
  from blocks), ``max_counter_jump`` (bound on following a meter's counter
  hint), ``quirks`` (the meter's quirks tolerated: default ``DEFAULT_QUIRKS``, the
  structural ones; ``frozenset()`` is strict; ``plain-initiate-response`` is opt-in),
  ``referencing`` (``ln``; ``sn`` short names, ``CLASS/OBIS/ATTR`` resolved through
  the meter's Association SN object list; ``auto``: LN, then SN on the same link
  when the meter refuses the LN context; :mod:`smmc_gateway.dlms.sn`).
  :class:`Security`: ``Security.none()``, ``Security.lls(pw)``,
  ``Security.hls_gmac(system_title=, ek=, ak=, ciphered=True,
  security_control=0x30, dedicated_key=None|True|bytes, ic_store=, ic_scope=)``.
  Give every production session an
  :class:`~smmc_gateway.dlms.ic_store.InvocationCounterStore` in the state
  directory (``ic_scope`` = the meter id): without one, counters live in a
  process-wide memory store and restart at 1 with the process, which a real
  meter refuses as a replay.
* Tolerant reception: an answer that decodes only with a quirk the settings
  allow is taken; each quirk is counted by the session's ``observer``
  (``ClientSession(..., observer=)``, a :class:`SessionObserver`: the daemon's
  metrics) and logged once per meter and quirk (:mod:`smmc_gateway.dlms.observe`).
  A stale association (the AARQ rejected with no reason, or the AARQ or the first
  request answered service-not-allowed) is released, the link dropped and
  re-established and the association retried once (:mod:`smmc_gateway.dlms.recovery`).
* Errors (:mod:`smmc_gateway.dlms.errors`): ``AssociationRefused``
  (``.result``, ``.diagnostic``), ``MeterTimeout`` (``.awaited``),
  ``LinkLost``, ``ProtocolError`` (``ServiceNotAllowed``; ``LimitExceeded``: an APDU longer than our
  max receive PDU size or a reassembled answer beyond ``max_block_transfer``;
  ``.size``, ``.limit``), ``SecurityFailure``, ``DataAccessError``
  (``.class_id``, ``.obis``, ``.member``, ``.method``, ``.result``),
  ``TransportError``; all derive from ``SessionError``.
* Elsewhere in this package: transports (:mod:`smmc_gateway.dlms.transport`,
  :mod:`~smmc_gateway.dlms.serial` with the RS-485 ``Bus``,
  :mod:`~smmc_gateway.dlms.optical_port`), the push listener
  (:mod:`smmc_gateway.dlms.push`), the counter store
  (:mod:`smmc_gateway.dlms.ic_store`).

The protocol is the Rust association machine (``_core.ClientAssociation``,
``rust/src/assoc/``); :mod:`smmc_gateway.dlms.driver` is its asyncio adapter
and :mod:`smmc_gateway.dlms.counters` its invocation-counter glue. Block
transfer: GET responses with datablocks are reassembled (next blocks
requested with the same invoke id); SETs and ACTIONs larger than the
negotiated PDU size go out in blocks; ACTION responses in pblocks are
reassembled; general-block-transfer responses are reassembled and
acknowledged window by window; a long SET or ACTION goes out in GBT blocks
when the meter agreed GBT but not that service's own block transfer.
``get_many``/``set_many``/``action_many`` use one with-list request when the
association agreed multiple-references. A late answer to a request that
timed out is dropped, not taken for the next answer. With a ciphered
association every request is sent glo- (or ded- with a dedicated key)
ciphered, security control 0x30 by default, and every response must carry
the policy's protection and a fresh invocation counter; the only plain
answer taken is a bounded exception-response, whose invocation-counter hint
is followed tentatively and persisted only after an authenticated answer
(see :mod:`smmc_gateway.dlms.counters` and :mod:`smmc_gateway.dlms.ic_store`).
"""

from __future__ import annotations

from smmc_gateway.dlms.access import EntryAccess, RangeAccess
from smmc_gateway.dlms.association import DEFAULT_QUIRKS, Security, SessionSettings
from smmc_gateway.dlms.client import ClientSession
from smmc_gateway.dlms.errors import (
    AssociationRefused,
    DataAccessError,
    LimitExceeded,
    LinkLost,
    MeterTimeout,
    ProtocolError,
    SecurityFailure,
    ServiceNotAllowed,
    SessionError,
    TransportError,
)
from smmc_gateway.dlms.observe import SessionObserver

__all__ = [
    "DEFAULT_QUIRKS",
    "AssociationRefused",
    "ClientSession",
    "DataAccessError",
    "EntryAccess",
    "LimitExceeded",
    "LinkLost",
    "MeterTimeout",
    "ProtocolError",
    "RangeAccess",
    "Security",
    "SecurityFailure",
    "ServiceNotAllowed",
    "SessionError",
    "SessionObserver",
    "SessionSettings",
    "TransportError",
]
