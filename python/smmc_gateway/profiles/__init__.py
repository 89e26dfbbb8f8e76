"""Interoperability profiles (IEC 62559-2 template), rendered from scenarios that really run.

``scenarios`` (with ``scenarios_han``, ``scenarios_more``; the run order in ``catalog``)
runs a Mosquitto broker, a simulated fleet and the gateway in one event loop and records
what was observed (``observe``: MQTT in/out, DLMS services at the meter, ordered by cause);
``render`` turns the observations, the per-language texts (``texts/*.toml``) and a
configuration's architecture (``architecture``) into docs/profiles/{es,en}/; ``export``
bundles the committed documents into one DOCX/HTML/PDF (diagrams drawn by ``images``);
``cli`` adds ``smmc-gateway profiles render|check|export``.
"""
