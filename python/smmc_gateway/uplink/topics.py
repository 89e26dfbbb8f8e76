"""MQTT topic names of the uplink contract (docs: /docs/asyncapi.yaml, MQTT.md).

Every topic is ``smmc/v1/{gateway}/...``. Ids that go into a topic level are
checked here: a wildcard (``+``, ``#``), a level separator (``/``), NUL, an empty
id or an over-long one would change the meaning of the topic, so they are refused
with a :class:`TopicError` naming the field and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "smmc/v1"
MAX_ID_LENGTH = 128
"""Longest id accepted in one topic level (characters)."""

_FORBIDDEN = {
    "+": "a '+' wildcard",
    "#": "a '#' wildcard",
    "/": "a '/' level separator",
    "\x00": "a NUL character",
}


class TopicError(ValueError):
    """An id cannot be used as an MQTT topic level."""


def check_level(field: str, value: object) -> str:
    """Return ``value`` if it is safe as one topic level, else raise :class:`TopicError`."""
    if not isinstance(value, str):
        raise TopicError(f"{field}: expected a string, got {type(value).__name__}")
    if value == "":
        raise TopicError(f"{field}: empty id is not allowed in a topic level")
    if len(value) > MAX_ID_LENGTH:
        raise TopicError(f"{field}: id is {len(value)} characters, at most {MAX_ID_LENGTH} allowed")
    for ch, what in _FORBIDDEN.items():
        pos = value.find(ch)
        if pos >= 0:
            raise TopicError(f"{field}: {value[:40]!r} contains {what} at offset {pos}")
    for pos, ch in enumerate(value):
        # MQTT topics are UTF-8 without control characters: a lone surrogate cannot be
        # encoded at all (it would fail later, in the store or the client, after the
        # request was taken), and control characters must not appear (MQTT 5, 1.5.4).
        if 0xD800 <= ord(ch) <= 0xDFFF or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            raise TopicError(
                f"{field}: {value[:40]!r} contains the character "
                f"U+{ord(ch):04X} at offset {pos}, not allowed in a topic"
            )
    return value


@dataclass(frozen=True)
class Topics:
    """The topics of one gateway."""

    gateway: str

    def __post_init__(self) -> None:
        check_level("gateway", self.gateway)

    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.gateway}"

    def status(self) -> str:
        return f"{self.base}/status"

    def readings(self, meter: str) -> str:
        return f"{self.base}/meter/{check_level('meter', meter)}/readings"

    def events(self, meter: str) -> str:
        return f"{self.base}/meter/{check_level('meter', meter)}/events"

    def config(self, meter: str) -> str:
        """The meter's discovered configuration (EndDeviceConfig, retained: use case 1)."""
        return f"{self.base}/meter/{check_level('meter', meter)}/config"

    def linkage(self, meter: str) -> str:
        """The meter's HAN devices (MasterDataLinkageConfig, retained: use case 4)."""
        return f"{self.base}/meter/{check_level('meter', meter)}/linkage"

    def keys(self, meter: str) -> str:
        """The meter's keys wrapped with the central KEK (KeyBundle: key escrow)."""
        return f"{self.base}/meter/{check_level('meter', meter)}/keys"

    def registry(self) -> str:
        """The meters this gateway serves (GatewayRegistry, retained)."""
        return f"{self.base}/registry"

    def bulk_readings(self) -> str:
        return f"{self.base}/bulk/readings"

    def commands(self) -> str:
        """The subscription filter for every inbound request."""
        return f"{self.base}/cmd/+"

    def command(self, noun: str) -> str:
        return f"{self.base}/cmd/{check_level('noun', noun)}"

    def reply(self, correlation_id: str) -> str:
        return f"{self.base}/reply/{check_level('correlationId', correlation_id)}"

    def noun_of(self, topic: str) -> str:
        """The noun of an inbound ``cmd/{noun}`` topic; TopicError if it is not one."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            raise TopicError(f"topic: {topic!r} is not under {head!r}")
        return check_level("noun", topic[len(head) :])
