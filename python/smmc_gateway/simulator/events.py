"""Event codes, event logs and alarm bits of the simulated meter.

Event codes follow the IDIS numbering where the simulator knows it
(standard: 1 power down, 2 power up, 4/5 clock adjusted old/new time;
disconnector: 47..55). Codes marked (sim) are this simulator's own choice.
Alarm register bits are the simulator's own map (IDIS alarm descriptors differ
per profile); the alarm filter 0.0.97.98.10.255 masks which ones are pushed.
"""

from __future__ import annotations

from smmc_gateway.cosem.obis import Obis

STANDARD, FRAUD, DISCONNECTOR, POWER_QUALITY = "standard", "fraud", "disconnector", "power-quality"
MBUS = "mbus"

# log kind -> (profile generic OBIS, event object OBIS)
EVENT_LOGS: dict[str, tuple[Obis, Obis]] = {
    STANDARD: (Obis(0, 0, 99, 98, 0, 255), Obis(0, 0, 96, 11, 0, 255)),
    FRAUD: (Obis(0, 0, 99, 98, 1, 255), Obis(0, 0, 96, 11, 1, 255)),
    DISCONNECTOR: (Obis(0, 0, 99, 98, 2, 255), Obis(0, 0, 96, 11, 2, 255)),
    POWER_QUALITY: (Obis(0, 0, 99, 98, 4, 255), Obis(0, 0, 96, 11, 4, 255)),
    # M-Bus event log (DSMR numbering: 100 + 10 x (channel - 1) + 0 communication error,
    # 1 communication ok, 5 new device discovered; see simulator/han.py)
    MBUS: (Obis(0, 0, 99, 98, 3, 255), Obis(0, 0, 96, 11, 3, 255)),
}

POWER_DOWN = 1
POWER_UP = 2
CLOCK_ADJUSTED_OLD = 4
CLOCK_ADJUSTED_NEW = 5
FIRMWARE_READY = 17  # (sim)
FIRMWARE_ACTIVATED = 18  # (sim)
CALENDAR_ACTIVATED = 20  # (sim)
TERMINAL_COVER_OPENED = 40
TERMINAL_COVER_CLOSED = 41

READY_FOR_RECONNECTION = 47
MANUAL_DISCONNECTION = 48
MANUAL_CONNECTION = 49
REMOTE_DISCONNECTION = 50
REMOTE_CONNECTION = 51
LOCAL_DISCONNECTION = 52
LIMITER_EXCEEDED = 53
LIMITER_OK = 54
LIMITER_CHANGED = 55
LOCAL_RECONNECTION = 60  # (sim)
CUSTOMER_OPT_OUT_IHD = 70  # (sim) the customer opted out of a DR event on the in-home display
CUSTOMER_OPT_OUT_LOCAL = 71  # (sim) ... on the meter's own local interface (its button)

# disconnect-control transition -> disconnector log codes
TRANSITION_EVENTS: dict[str, tuple[int, ...]] = {
    "a": (REMOTE_CONNECTION,),
    "b": (REMOTE_DISCONNECTION,),
    "c": (REMOTE_DISCONNECTION,),
    "d": (READY_FOR_RECONNECTION,),
    "e": (MANUAL_CONNECTION,),
    "f": (MANUAL_DISCONNECTION, READY_FOR_RECONNECTION),
    "g": (LOCAL_DISCONNECTION, READY_FOR_RECONNECTION),
    "h": (LOCAL_RECONNECTION,),
    "mode-0": (REMOTE_CONNECTION,),
}

# alarm register bits (sim)
ALARM_POWER_DOWN = 1 << 0
ALARM_POWER_UP = 1 << 1
ALARM_LIMITER = 1 << 2
ALARM_DISCONNECTED = 1 << 3
ALARM_FIRMWARE = 1 << 4
ALARM_TAMPER = 1 << 5
ALARM_CUSTOMER_OPT_OUT = 1 << 6
# bits 16..19: M-Bus communication error channel 1..4; 24..27: new M-Bus device discovered
# channel 1..4 (DSMR alarm register 1 numbering; simulator/han.py raises them)

# load-profile AMR status bits (IDIS)
STATUS_POWER_DOWN = 0x80
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_DATA_NOT_VALID = 0x04
