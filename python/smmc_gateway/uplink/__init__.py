"""The MQTT uplink: topics, envelope, durable outbox, command journal and the MQTT loop.

It knows nothing of DLMS. The contract is docs/asyncapi.yaml and docs/schemas/.
"""

from smmc_gateway.uplink.client import CommandHandler, Outcome, Uplink, UplinkCounters
from smmc_gateway.uplink.config import TlsFiles, UplinkConfig
from smmc_gateway.uplink.envelope import MessageClass
from smmc_gateway.uplink.journal import AlreadyReplied
from smmc_gateway.uplink.outbox import ClassLimit

__all__ = [
    "AlreadyReplied",
    "ClassLimit",
    "CommandHandler",
    "MessageClass",
    "Outcome",
    "TlsFiles",
    "Uplink",
    "UplinkConfig",
    "UplinkCounters",
]
