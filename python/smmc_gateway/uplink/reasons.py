"""MQTT v5 reason codes by name, and what the uplink does with a broker's refusal.

The names are the MQTT 5.0 specification's (OASIS standard, section 2.4 "Reason Code",
tables in 3.2.2.2 CONNACK, 3.4.2.1 PUBACK and 3.14.2.1 DISCONNECT); paho's own table
lacks some of them (0x99 in a CONNACK, for one) and raises on them, so the uplink names
codes from here.

A CONNACK refusal is one of three kinds (:func:`connack_action`):

* ``retry`` — the broker may accept later (busy, unavailable, quota, rate limit, an
  unspecified or implementation-specific error): reconnect with backoff;
* ``no_retain`` — 0x9A "Retain not supported": the broker refuses our retained will;
  reconnect at once with a non-retained will and publish the status periodically;
* ``fatal`` — retrying cannot fix it (bad credentials, not authorised, banned, a client
  identifier or protocol version it refuses, ...): :class:`BrokerRefused` ends the
  uplink and the daemon exits non-zero naming the reason (systemd restarts it with its
  back-off; the operator sees why in the journal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

#: Every reason code of MQTT 5.0 (section 2.4), by value.
REASON_NAMES: Mapping[int, str] = {
    0x00: "Success",
    0x01: "Granted QoS 1",
    0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message",
    0x10: "No matching subscribers",
    0x11: "No subscription existed",
    0x18: "Continue authentication",
    0x19: "Re-authenticate",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x96: "Message rate too high",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9A: "Retain not supported",
    0x9B: "QoS not supported",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}

RETAIN_NOT_SUPPORTED = 0x9A

#: CONNACK codes that retrying cannot fix, with what the operator should look at.
FATAL_CONNACK: Mapping[int, str] = {
    0x81: "the broker could not parse our CONNECT (a client or broker bug)",
    0x82: "the broker saw a protocol error in our CONNECT (a client or broker bug)",
    0x84: "the broker does not speak MQTT v5, which the gateway needs",
    0x85: "broker.client_id is not accepted by the broker (its client id rules)",
    0x86: "broker.username / broker.password_file are not accepted by the broker",
    0x87: "the broker does not authorise this client (its ACL or auth plugin)",
    0x8A: "the broker has banned this client",
    0x8C: "the broker refuses our authentication method",
    0x90: "the broker refuses the will topic (its topic rules or ACL)",
    0x95: "the broker refuses our CONNECT as too large",
    0x99: "the broker refuses the will payload's format",
    0x9B: "the broker does not support QoS 1, which the gateway needs",
    0x9D: "the broker has moved (see its Server Reference): update broker.host",
}

ConnackAction = Literal["ok", "retry", "no_retain", "fatal"]


def reason_name(code: int) -> str:
    """The specification's name of a reason code (``0x9A`` -> "Retain not supported")."""
    return REASON_NAMES.get(code, f"unknown reason code 0x{code:02X}")


def describe(code: int) -> str:
    """``"0x9A Retain not supported"``."""
    return f"0x{code:02X} {reason_name(code)}"


def connack_action(code: int) -> ConnackAction:
    """What the uplink does after a CONNACK with this reason code (see the module doc)."""
    if code < 0x80:
        return "ok"
    if code == RETAIN_NOT_SUPPORTED:
        return "no_retain"
    if code in FATAL_CONNACK:
        return "fatal"
    return "retry"


class BrokerRefused(Exception):
    """The broker refused the connection for a reason retrying cannot fix.

    ``code`` is the CONNACK reason code; the message names it, the broker and what to
    check. :meth:`~smmc_gateway.uplink.client.Uplink.run` raises it; the daemon logs it
    and exits non-zero."""

    def __init__(self, code: int, host: str, port: int) -> None:
        self.code = code
        self.reason = reason_name(code)
        hint = FATAL_CONNACK.get(code, "retrying does not help")
        super().__init__(
            f"broker {host}:{port} refused the connection: CONNACK {describe(code)}: {hint}"
        )
