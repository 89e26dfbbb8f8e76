"""Interoperability profiles (IEC 62559-2 style), rendered from scenarios that really run.

``scenarios`` runs a Mosquitto broker, a simulated fleet and the gateway in one event
loop and records what was observed (MQTT in/out, DLMS services at the meter);
``render`` turns the observations into docs/profiles/NN-name.md; ``cli`` adds
``smmc-gateway profiles render|check``.
"""
