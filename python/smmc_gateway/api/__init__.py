"""The public Python API for scripting meters (documented in ``docs/api.md``).

::

    import smmc_gateway

    async with smmc_gateway.connect("tcp://127.0.0.1:4059", client=1, auth="hls-gmac",
                                    ek=EK, ak=AK, ic_store="counters.sqlite") as meter:
        energy = await meter.get("3/1.0.1.8.0.255/2")                 # an int
        kwh = await meter.get(Register("1.0.1.8.0.255").value, scaled=True)
        rows = await meter.profile("1.0.99.1.0.255", start=t0, end=t1)  # list of tuples
        await meter.set(Clock().time, datetime.now(UTC))
        await meter.action(DisconnectControl().remote_disconnect)

:func:`connect` ``(url, *, client, server, logical_device, auth, password, ek, ak,
system_title, ic_store, timeout, referencing)`` checks everything before it connects
and returns an unopened :class:`Meter` (``async with``, or ``await``).

* ``url``: ``tcp://H:P`` (wrapper), ``hdlc+tcp://H:P``, ``mode-e+tcp://H:P``,
  ``serial:///dev/ttyX?baud=9600``, ``optical:///dev/ttyX`` (:mod:`.url`).
* ``client``: client SAP (default 16 without authentication, else 1 as in IDIS);
  ``server``: HDLC physical address (RS-485 multi-drop); ``logical_device`` (1).
* ``auth``: ``"none"``, ``"lls"`` (``password``), ``"hls-gmac"`` (``ek``, ``ak``: 16
  bytes or 32 hex digits). Invocation counters: ``ic_store`` (a file path, or an
  :class:`~smmc_gateway.dlms.ic_store.InvocationCounterStore`) keeps them across runs,
  with our system title kept beside it (the CLI's, for the same file). Without
  ``ic_store`` each connection takes a fresh random system title, since its counters
  start at 1; a fixed ``system_title`` therefore needs ``ic_store``.
* ``timeout``: seconds to wait for each answer; ``referencing``: ``"ln"`` (``"sn"``
  and ``"auto"`` once the client session has SN referencing; ``"auto"`` means LN
  until then); ``quirks``: the meter deviations tolerated, by name
  (``_core.known_quirks()``; None: the session's default, the harmless structural
  ones; ``()``: strict).

:class:`Meter`: ``get(ref, scaled=False)``, ``get_many(refs)``, ``get_typed(ref)``,
``set(ref, value)``, ``action(ref, parameter=None)``, ``profile(obis, start=, end=,
columns=)``, ``object_list()``, ``clock()``; ``session`` is the underlying client
session. References: ``"CLASS/OBIS/INDEX"`` text, ``(class, obis, index)`` tuples, or
the named objects of :mod:`smmc_gateway.cosem.objects`. Values: :mod:`.values`.

Errors: :class:`~smmc_gateway.dlms.endpoint.ConfigurationError` (a bad URL or
setting, ``part`` names it), :class:`~smmc_gateway.cosem.objects.ReferenceError_`,
:class:`~smmc_gateway.cosem.values.ValueTypeError` (all ``ValueError``), and the
session's :class:`~smmc_gateway.dlms.errors.SessionError` family
(``AssociationRefused``, ``MeterTimeout``, ``LinkLost``, ``SecurityFailure``,
``DataAccessError``, ``ProtocolError``, ``TransportError``).
"""

from __future__ import annotations

from smmc_gateway.api.connecting import connect
from smmc_gateway.api.meter import Meter
from smmc_gateway.api.url import parse_url
from smmc_gateway.api.values import from_python, to_python
from smmc_gateway.dlms.endpoint import ConfigurationError

__all__ = ["ConfigurationError", "Meter", "connect", "from_python", "parse_url", "to_python"]
