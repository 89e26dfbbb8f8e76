"""The MDM contract in the standard's codes (IEC 61968-9): one home for the mappings.

- :mod:`~smmc_gateway.cim.event_types`: every event name the gateway publishes ->
  its ``EndDeviceEventType`` code (``type.domain.subdomain.eventOrAction``), meaning
  and public source; the IDIS event-log codes -> event names.
- :mod:`~smmc_gateway.cim.reading_types`: OBIS code + unit (+ capture period) -> the
  18-part ``ReadingType`` code.
- :mod:`~smmc_gateway.cim.render`: ``python -m smmc_gateway.cim render|check`` writes
  (or checks) docs/event-codes.md, docs/reading-types.md and the event-type JSON Schemas
  from these tables, so the documents never drift from the code.

Numbers are facts taken from public sources (named next to each number); no code was
copied. This package imports nothing from the layers above it.
"""

from smmc_gateway.cim.event_types import (
    EventType,
    UnknownEventName,
    event_type,
    lookup,
    meter_event_name,
)
from smmc_gateway.cim.reading_types import ReadingTypeCode, reading_type, reading_type_parts

__all__ = [
    "EventType",
    "ReadingTypeCode",
    "UnknownEventName",
    "event_type",
    "lookup",
    "meter_event_name",
    "reading_type",
    "reading_type_parts",
]
