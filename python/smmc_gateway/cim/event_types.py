"""IEC 61968-9 ``EndDeviceEventType`` codes of every event the gateway publishes.

A code is ``type.domain.subdomain.eventOrAction``; the type is always 3 (ElectricMeter).
:data:`EVENT_TYPES` is the one table: readable event name (``smmc.*``, published beside
the code as ``EndDeviceEventType.name``) -> code parts by name, meaning, public source.
:data:`FAMILIES` give a code to the names the gateway builds at run time for things it
cannot name (an unknown IDIS code keeps its number: ``smmc.meter.fraud.77``).
:func:`event_type` is the only way from a name to a code and refuses a name that is in
neither, naming the file to add it to; ``tests/test_cim_event_types.py`` fails when any
``smmc.*`` name written anywhere in the code base has no code.

Adding an event: add one ``_t(...)`` line below (or a family), then run
``python -m smmc_gateway.cim render`` (regenerates docs/event-codes.md and the event-type
JSON Schemas) and commit the result.

Sources of the numbers (facts, no code copied): see :data:`SOURCES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ELECTRIC_METER = 3
"""EndDeviceType 3 = ElectricMeter."""

#: EndDeviceDomain (the values used here).
DOMAINS: Mapping[str, int] = {
    "NA": 0,
    "Communication": 1,
    "Battery": 2,
    "Configuration": 7,
    "Pairing": 10,
    "Firmware": 11,
    "Security": 12,
    "VideoDisplay": 13,
    "LoadControl": 15,
    "LoadProfile": 16,
    "Logs": 17,
    "Memory": 18,
    "Billing": 20,
    "Metrology": 21,
    "Power": 26,
    "RCDSwitch": 31,
    "Clock": 36,
    "Watchdog": 37,
}
#: EndDeviceSubdomain (the values used here).
SUBDOMAINS: Mapping[str, int] = {
    "NA": 0,
    "AUTDProcess": 3,
    "Charge": 22,
    "Password": 24,
    "PowerQuality": 28,
    "Cover": 29,
    "SecurityKey": 32,
    "Voltage": 38,
    "Event": 43,
    "EventLog": 44,
    "DaylightSavingsTime": 56,
    "Interval": 59,
    "LastRead": 62,
    "MagneticSwitch": 66,
    "Measurement": 67,
    "NVRAM": 72,
    "Program": 83,
    "RAM": 85,
    "Readings": 87,
    "Register": 89,
    "Schedule": 95,
    "TextMessage": 112,
    "Time": 114,
    "TimeSync": 116,
    "TimeVariance": 117,
    "TOU": 121,
    "EmergencySupplyCapacityLimit": 138,
    "SupplyCapacityLimit": 139,
    "MeterBus": 147,
    "Threshold": 261,
    "Activation": 283,
    "AlarmTable": 285,
}
#: EndDeviceEventOrAction (the values used here).
ACTIONS: Mapping[str, int] = {
    "NA": 0,
    "Aborted": 1,
    "Activated": 4,
    "Cancelled": 10,
    "ArmedForClosure": 11,
    "ChangePending": 14,
    "Closed": 16,
    "Changed": 24,
    "Cleared": 28,
    "InProgress": 34,
    "Invalid": 35,
    "Normal": 37,
    "Connected": 42,
    "Read": 46,
    "Registered": 50,
    "Succeeded": 58,
    "Uploaded": 60,
    "Disabled": 66,
    "Disconnected": 68,
    "Enabled": 76,
    "Displayed": 78,
    "Error": 79,
    "OptedOut": 81,
    "Failed": 85,
    "Installed": 105,
    "Exceeded": 139,
    "MinLimitReached": 150,
    "Mismatched": 159,
    "Removed": 212,
    "Restored": 216,
    "SagStarted": 223,
    "Scheduled": 225,
    "Started": 242,
    "SwellStarted": 248,
    "TamperDetected": 257,
    "ReadyForActivation": 280,
    "Missing": 285,
    "TamperCleared": 291,
}

SOURCES: Mapping[str, str] = {
    "annexE": "Composed from the public enumerations of IEC 61968-9 Annex E (EndDeviceType, "
    "EndDeviceDomain, EndDeviceSubdomain, EndDeviceEventOrAction) as published with "
    "their numbers in the open-source Connexo MDM (github.com/chandangeek/"
    "Connexo_Code, package com.elster.jupiter.cbo, 'See CIM Annex E, table E.1').",
    "aclara": "The same domain.subdomain.eventOrAction in a public AMI endpoint's alarm table "
    "(Aclara RF endpoint firmware, ALRM_Handler.h on GitHub): device type 3 there "
    "too for the meter's alarms (e.g. ALRM_MTR_POWER_FAILURE 3.26.0.85), 26 for the "
    "endpoint's own (e.g. ALRM_POWER_RESTORE 26.26.0.216).",
    "connexo": "The same domain.subdomain.eventOrAction in Connexo's public IDIS/DLMS event "
    "mapping (com.energyict.cim.EndDeviceEventTypeFactory and "
    "EndDeviceEventTypeMapping; device type 0 there, 3 here).",
    "osgp": "IDIS/DSMR standard event-log number from the Open Smart Grid Platform "
    "(Apache-2.0, github.com/OSGP, EventType: EVENTLOG_CLEARED(255)).",
}

SCHEMAS = ("gateway", "meter", "firmware")
"""The JSON Schema family files (docs/schemas/{schema}-event-types.schema.json)."""


class UnknownEventName(KeyError):
    """An event name with no EndDeviceEventType code (add it to :data:`EVENT_TYPES`)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"event name {self.name!r} has no IEC 61968-9 EndDeviceEventType code: add it "
            "to EVENT_TYPES (or FAMILIES) in python/smmc_gateway/cim/event_types.py, then "
            "run `python -m smmc_gateway.cim render`"
        )


@dataclass(frozen=True)
class EventType:
    """One event name (or a family of names) and its code."""

    name: str
    domain: str
    subdomain: str
    action: str
    meaning: str
    source: str
    schema: str
    note: str = ""
    pattern: str | None = None
    """For a family: the names it covers (a regular expression, full match)."""

    def __post_init__(self) -> None:
        for what, value, table in (
            ("domain", self.domain, DOMAINS),
            ("subdomain", self.subdomain, SUBDOMAINS),
            ("action", self.action, ACTIONS),
        ):
            if value not in table:
                raise ValueError(
                    f"{self.name}: {what} {value!r} is not in the table "
                    f"({', '.join(sorted(table))}); add its number with a source"
                )
        if self.source not in SOURCES:
            raise ValueError(f"{self.name}: source {self.source!r} is not in SOURCES")
        if self.schema not in SCHEMAS:
            raise ValueError(f"{self.name}: schema {self.schema!r} is not one of {SCHEMAS}")

    @property
    def code(self) -> str:
        return (
            f"{ELECTRIC_METER}.{DOMAINS[self.domain]}.{SUBDOMAINS[self.subdomain]}."
            f"{ACTIONS[self.action]}"
        )

    @property
    def parts(self) -> str:
        return f"ElectricMeter · {self.domain} · {self.subdomain} · {self.action}"


def _t(
    name: str,
    domain: str,
    subdomain: str,
    action: str,
    meaning: str,
    source: str,
    schema: str = "meter",
    note: str = "",
) -> EventType:
    return EventType(name, domain, subdomain, action, meaning, source, schema, note)


#: IDIS event-log codes -> event name (``smmc.meter.<name>``): the numbering of the IDIS
#: package 2 event code tables, shared with the simulator (simulator/events.py), which
#: marks its own additions "(sim)". Vendor tables differ (DSMR meters number the
#: disconnector events 60..67); a code not here keeps its number (see FAMILIES).
IDIS_EVENT_NAMES: Mapping[int, str] = {
    1: "powerDown",
    2: "powerUp",
    3: "daylightSavingChanged",
    4: "clockAdjustedOldTime",
    5: "clockAdjustedNewTime",
    6: "clockInvalid",
    7: "replaceBattery",
    8: "batteryVoltageLow",
    9: "tariffActivated",
    10: "errorRegisterCleared",
    11: "alarmRegisterCleared",
    12: "programMemoryError",
    13: "ramError",
    14: "nvMemoryError",
    15: "watchdogError",
    16: "measurementSystemError",
    17: "firmwareReadyForActivation",
    18: "firmwareActivated",
    20: "calendarActivated",  # (sim)
    40: "terminalCoverRemoved",
    41: "terminalCoverClosed",
    42: "strongDcFieldDetected",
    43: "noStrongDcField",
    44: "meterCoverRemoved",
    45: "meterCoverClosed",
    46: "wrongPasswordNTimes",
    47: "readyForManualReconnection",
    48: "manualDisconnection",
    49: "manualConnection",
    50: "remoteDisconnection",
    51: "remoteConnection",
    52: "localDisconnection",
    53: "limiterThresholdExceeded",
    54: "limiterThresholdOk",
    55: "limiterThresholdChanged",
    60: "localReconnection",  # (sim)
    255: "eventLogCleared",  # osgp
}
METER_LOGS = ("standard", "fraud", "disconnector", "powerQuality")
"""Event logs whose unknown codes keep their number (``smmc.meter.<log>.<code>``)."""

_SWITCH = "RCDSwitch"
_ROW = "a row of the meter's {log} event log (IDIS code {code}): "
_TABLE: list[EventType] = [
    # -- meter event logs (createdDateTime: the meter's time of the row; reason: the log) --
    _t(
        "smmc.meter.powerDown",
        "Power",
        "NA",
        "Failed",
        _ROW.format(log="standard", code=1) + "power down (outage began)",
        "aclara",
    ),
    _t(
        "smmc.meter.powerUp",
        "Power",
        "NA",
        "Restored",
        _ROW.format(log="standard", code=2) + "power up (outage ended)",
        "aclara",
    ),
    _t(
        "smmc.meter.longPowerFailure",
        "Power",
        "NA",
        "Restored",
        "a row of the power failure log 1.0.99.97.0.255: a long power failure ended "
        "(details: its duration)",
        "aclara",
        note="the row marks the end of the failure; its duration is in details",
    ),
    _t(
        "smmc.meter.daylightSavingChanged",
        "Clock",
        "DaylightSavingsTime",
        "Changed",
        _ROW.format(log="standard", code=3) + "daylight saving time switched",
        "connexo",
    ),
    _t(
        "smmc.meter.clockAdjustedOldTime",
        "Clock",
        "Time",
        "ChangePending",
        _ROW.format(log="standard", code=4) + "clock adjusted, the row stamped with the old time",
        "annexE",
        note="the old/new pair as ChangePending/Changed, as Connexo maps its clock-set pair",
    ),
    _t(
        "smmc.meter.clockAdjustedNewTime",
        "Clock",
        "Time",
        "Changed",
        _ROW.format(log="standard", code=5) + "clock adjusted, the row stamped with the new time",
        "aclara",
    ),
    _t(
        "smmc.meter.clockInvalid",
        "Clock",
        "Time",
        "Invalid",
        _ROW.format(log="standard", code=6) + "clock invalid",
        "connexo",
    ),
    _t(
        "smmc.meter.replaceBattery",
        "Battery",
        "NA",
        "Failed",
        _ROW.format(log="standard", code=7) + "replace the battery",
        "connexo",
    ),
    _t(
        "smmc.meter.batteryVoltageLow",
        "Battery",
        "Charge",
        "MinLimitReached",
        _ROW.format(log="standard", code=8) + "battery voltage low",
        "aclara",
    ),
    _t(
        "smmc.meter.tariffActivated",
        "Billing",
        "TOU",
        "Activated",
        _ROW.format(log="standard", code=9) + "a tariff (TOU rate) became active",
        "connexo",
    ),
    _t(
        "smmc.meter.errorRegisterCleared",
        "Logs",
        "Register",
        "Cleared",
        _ROW.format(log="standard", code=10) + "error register cleared",
        "connexo",
    ),
    _t(
        "smmc.meter.alarmRegisterCleared",
        "Logs",
        "AlarmTable",
        "Cleared",
        _ROW.format(log="standard", code=11) + "alarm register cleared",
        "connexo",
    ),
    _t(
        "smmc.meter.programMemoryError",
        "Memory",
        "Program",
        "Error",
        _ROW.format(log="standard", code=12) + "program memory error",
        "aclara",
    ),
    _t(
        "smmc.meter.ramError",
        "Memory",
        "RAM",
        "Error",
        _ROW.format(log="standard", code=13) + "RAM error",
        "connexo",
    ),
    _t(
        "smmc.meter.nvMemoryError",
        "Memory",
        "NVRAM",
        "Error",
        _ROW.format(log="standard", code=14) + "non-volatile memory error",
        "connexo",
    ),
    _t(
        "smmc.meter.watchdogError",
        "Watchdog",
        "AUTDProcess",
        "Error",
        _ROW.format(log="standard", code=15) + "watchdog error",
        "connexo",
    ),
    _t(
        "smmc.meter.measurementSystemError",
        "Metrology",
        "Measurement",
        "Error",
        _ROW.format(log="standard", code=16) + "measurement system error",
        "aclara",
    ),
    _t(
        "smmc.meter.firmwareReadyForActivation",
        "Firmware",
        "Activation",
        "ReadyForActivation",
        _ROW.format(log="standard", code=17) + "firmware image ready for activation",
        "connexo",
    ),
    _t(
        "smmc.meter.firmwareActivated",
        "Firmware",
        "Activation",
        "Activated",
        _ROW.format(log="standard", code=18) + "firmware activated",
        "connexo",
    ),
    _t(
        "smmc.meter.calendarActivated",
        "Billing",
        "Schedule",
        "Activated",
        _ROW.format(log="standard", code=20) + "the passive activity calendar became active",
        "annexE",
        note="code 20 is the simulator's own (sim); no IDIS number is claimed",
    ),
    _t(
        "smmc.meter.eventLogCleared",
        "Logs",
        "EventLog",
        "Cleared",
        _ROW.format(log="standard", code=255) + "an event log was cleared",
        "connexo",
        note="IDIS number 255 from OSGP's table (source osgp)",
    ),
    _t(
        "smmc.meter.terminalCoverRemoved",
        "Security",
        "Cover",
        "Removed",
        _ROW.format(log="fraud", code=40) + "terminal cover removed (tamper)",
        "aclara",
        note="no public subdomain of its own for the terminal cover was found: both covers "
        "are Security/Cover, the name tells which",
    ),
    _t(
        "smmc.meter.terminalCoverClosed",
        "Security",
        "Cover",
        "Closed",
        _ROW.format(log="fraud", code=41) + "terminal cover closed",
        "connexo",
    ),
    _t(
        "smmc.meter.strongDcFieldDetected",
        "Security",
        "MagneticSwitch",
        "TamperDetected",
        _ROW.format(log="fraud", code=42) + "strong DC (magnetic) field detected (tamper)",
        "annexE",
        note="Connexo maps this IDIS event to MagneticSwitch/Started; TamperDetected "
        "says what an MDM's tamper analysis needs",
    ),
    _t(
        "smmc.meter.noStrongDcField",
        "Security",
        "MagneticSwitch",
        "TamperCleared",
        _ROW.format(log="fraud", code=43) + "the strong DC field is gone",
        "annexE",
    ),
    _t(
        "smmc.meter.meterCoverRemoved",
        "Security",
        "Cover",
        "Removed",
        _ROW.format(log="fraud", code=44) + "meter cover removed (tamper)",
        "aclara",
    ),
    _t(
        "smmc.meter.meterCoverClosed",
        "Security",
        "Cover",
        "Closed",
        _ROW.format(log="fraud", code=45) + "meter cover closed",
        "connexo",
    ),
    _t(
        "smmc.meter.wrongPasswordNTimes",
        "Security",
        "Password",
        "Invalid",
        _ROW.format(log="fraud", code=46) + "wrong password N times (authentication failure)",
        "aclara",
    ),
    _t(
        "smmc.meter.readyForManualReconnection",
        _SWITCH,
        "NA",
        "ArmedForClosure",
        _ROW.format(log="disconnector", code=47) + "armed: ready for manual reconnection",
        "annexE",
    ),
    _t(
        "smmc.meter.manualDisconnection",
        _SWITCH,
        "NA",
        "Disconnected",
        _ROW.format(log="disconnector", code=48) + "disconnected by the button",
        "connexo",
    ),
    _t(
        "smmc.meter.manualConnection",
        _SWITCH,
        "NA",
        "Connected",
        _ROW.format(log="disconnector", code=49) + "connected by the button",
        "connexo",
    ),
    _t(
        "smmc.meter.remoteDisconnection",
        _SWITCH,
        "NA",
        "Disconnected",
        _ROW.format(log="disconnector", code=50) + "remote disconnection",
        "connexo",
    ),
    _t(
        "smmc.meter.remoteConnection",
        _SWITCH,
        "NA",
        "Connected",
        _ROW.format(log="disconnector", code=51) + "remote connection",
        "connexo",
    ),
    _t(
        "smmc.meter.localDisconnection",
        _SWITCH,
        "NA",
        "Disconnected",
        _ROW.format(log="disconnector", code=52) + "local disconnection (e.g. by the limiter)",
        "connexo",
    ),
    _t(
        "smmc.meter.localReconnection",
        _SWITCH,
        "NA",
        "Connected",
        _ROW.format(log="disconnector", code=60) + "local reconnection",
        "connexo",
        note="code 60 is the simulator's own (sim)",
    ),
    _t(
        "smmc.meter.limiterThresholdExceeded",
        "LoadControl",
        "Threshold",
        "Exceeded",
        _ROW.format(log="disconnector", code=53) + "load limit exceeded",
        "connexo",
    ),
    _t(
        "smmc.meter.limiterThresholdOk",
        "LoadControl",
        "Threshold",
        "Restored",
        _ROW.format(log="disconnector", code=54) + "load back under the limit",
        "connexo",
    ),
    _t(
        "smmc.meter.limiterThresholdChanged",
        "LoadControl",
        "Threshold",
        "Changed",
        _ROW.format(log="disconnector", code=55) + "limiter threshold changed",
        "connexo",
    ),
    # -- alarm pushes: a bit of the alarm register (reason names it; suffix Repeated when the
    #    meter pushed with no bit newly set) --
    _t(
        "smmc.alarm.outage",
        "Power",
        "NA",
        "Failed",
        "alarm push, bit 0: power down (last gasp)",
        "aclara",
    ),
    _t(
        "smmc.alarm.restoration", "Power", "NA", "Restored", "alarm push, bit 1: power up", "aclara"
    ),
    _t(
        "smmc.alarm.limiterTrip",
        "LoadControl",
        "Threshold",
        "Exceeded",
        "alarm push, bit 2: the limiter tripped (load limit exceeded)",
        "connexo",
    ),
    _t(
        "smmc.alarm.disconnected",
        _SWITCH,
        "NA",
        "Disconnected",
        "alarm push, bit 3: the switch opened",
        "connexo",
    ),
    _t(
        "smmc.alarm.firmware",
        "Firmware",
        "Activation",
        "Activated",
        "alarm push, bit 4: firmware activated",
        "connexo",
    ),
    _t(
        "smmc.alarm.tamper",
        "Security",
        "Event",
        "TamperDetected",
        "alarm push, bit 5: tamper",
        "connexo",
    ),
    # -- limiter and account move (meter-event-types) --
    _t(
        "smmc.limiter.configured",
        "LoadControl",
        "SupplyCapacityLimit",
        "Changed",
        "a confirmed limit (details: the values read back; reason limit|limitOff)",
        "annexE",
    ),
    _t(
        "smmc.limiter.emergencyScheduled",
        "LoadControl",
        "EmergencySupplyCapacityLimit",
        "Scheduled",
        "a confirmed emergency profile (demand response)",
        "annexE",
    ),
    _t(
        "smmc.account.step",
        "Billing",
        "NA",
        "InProgress",
        "one step of a customer move (reason moveOut|moveIn, details the step)",
        "annexE",
        note="no public code for a customer move: the Billing domain (the account), InProgress",
    ),
    _t(
        "smmc.account.finalRead",
        "Billing",
        "LastRead",
        "Read",
        "the move-out's final read (details: the MeterReadings messageId and the last "
        "billing entry)",
        "annexE",
    ),
    _t(
        "smmc.account.openingRead",
        "Billing",
        "Readings",
        "Read",
        "the move-in's opening read (details as finalRead)",
        "annexE",
        note="no public subdomain for a first read: Readings",
    ),
    # -- the gateway's own events (gateway-event-types) --
    _t(
        "smmc.clock.checked",
        "Clock",
        "TimeVariance",
        "Normal",
        "a clock sync left the clock alone: deviation within tolerance (details: deviation "
        "before and after, method none, round trip)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.clock.adjusted",
        "Clock",
        "TimeSync",
        "Changed",
        "a clock sync adjusted the meter clock (details: deviation before and after, method "
        "shift_time|set, round trip)",
        "connexo",
        "gateway",
    ),
    _t(
        "smmc.clock.syncRefused",
        "Clock",
        "TimeSync",
        "Failed",
        "clock sync refused: the concentrator clock is not synchronised",
        "annexE",
        "gateway",
        note="the cause is the gateway's own time source; no code says so",
    ),
    _t(
        "smmc.clock.syncFailed",
        "Clock",
        "TimeSync",
        "Failed",
        "a clock sync did not take: the meter accepted shift_time or the SET but its clock "
        "read back is still off by more than the tolerance (details: deviation before and "
        "after, method)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.clock.driftDetected",
        "Clock",
        "TimeVariance",
        "Exceeded",
        "a scheduled collection found the meter clock off by more than "
        "clock_drift_threshold: a clock sync of that meter follows (details: the deviation)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.switch.disconnected",
        _SWITCH,
        "NA",
        "Disconnected",
        "a confirmed disconnect control operation (details: output_state and control_state "
        "before -> after)",
        "connexo",
        "gateway",
    ),
    _t(
        "smmc.switch.connected",
        _SWITCH,
        "NA",
        "Connected",
        "a confirmed connect control operation (details as disconnected)",
        "connexo",
        "gateway",
    ),
    _t(
        "smmc.readings.gap",
        "LoadProfile",
        "Interval",
        "Missing",
        "load-profile intervals missing (details: count and range)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.push.eventNotification",
        "Communication",
        "NA",
        "Uploaded",
        "an event-notification pushed by the meter: one attribute's value (details: the "
        "value as compact JSON; reason ciphered|plain and the attribute class/OBIS/attribute)",
        "annexE",
        "gateway",
        note="as smmc.push.dataNotification; an alarm register's bits are also published "
        "as named alarms",
    ),
    _t(
        "smmc.push.dataNotification",
        "Communication",
        "NA",
        "Uploaded",
        "a data-notification pushed by the meter (details: the body as compact JSON; reason "
        "ciphered|plain)",
        "annexE",
        "gateway",
        note="no code for 'the meter pushed data': Uploaded = sent from the device to the network",
    ),
    _t(
        "smmc.discovery.modelMismatch",
        "Configuration",
        "NA",
        "Mismatched",
        "discovery found objects of the configured model absent from the meter, or of "
        "another class (details: each object and its problem)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.audit.opticalOperation",
        "Configuration",
        "NA",
        "Changed",
        "a write done at the meter with the technician's CLI (optical port or local link), "
        "uplinked from the audit spool (details: the audit record; reason: the result)",
        "aclara",
        "gateway",
        note="the record in details tells what was written",
    ),
    # -- use case 4 and 8, the customer side and HAN (M-Bus) devices: the names of
    #    headend/han_links.py, headend/commands/customer_controls.py and usecases/events.py --
    _t(
        "smmc.customer.optOut",
        "LoadControl",
        "NA",
        "OptedOut",
        "the customer opted out of a demand response event (a row of the standard log with "
        "the simulator's code 70 in-home display / 71 local interface, or alarm bit 6)",
        "annexE",
    ),
    _t(
        "smmc.customer.displayUpdated",
        "VideoDisplay",
        "TextMessage",
        "Displayed",
        "a confirmed consumer message (display) update",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.customer.interfaceEnabled",
        "Communication",
        "NA",
        "Enabled",
        "the meter's customer interface (the consumer information push feeding the in-home "
        "display) was switched on",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.customer.interfaceDisabled",
        "Communication",
        "NA",
        "Disabled",
        "the meter's customer interface was switched off",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.han.deviceJoined",
        "Pairing",
        "MeterBus",
        "Registered",
        "an M-Bus (HAN) device the meter installed by itself, or found on a poll",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.han.deviceInstalled",
        "Pairing",
        "MeterBus",
        "Installed",
        "an M-Bus (HAN) device installed on a central system's request",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.han.deviceRemoved",
        "Pairing",
        "MeterBus",
        "Removed",
        "an M-Bus (HAN) device gone from its channel",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.han.deviceUnreachable",
        "Communication",
        "MeterBus",
        "Error",
        "an M-Bus (HAN) device's last telegram shows a communication error",
        "connexo",
        "gateway",
    ),
    _t(
        "smmc.han.deviceReachable",
        "Communication",
        "MeterBus",
        "Restored",
        "an M-Bus (HAN) device communicates again",
        "connexo",
        "gateway",
    ),
    _t(
        "smmc.han.keySet",
        "Security",
        "SecurityKey",
        "Changed",
        "an M-Bus (HAN) device's encryption key status changed",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.alarm.mbusCommunicationError",
        "Communication",
        "MeterBus",
        "Error",
        "alarm push, bits 16..19: M-Bus communication error on channel 1..4 (reason names "
        "the channel)",
        "connexo",
    ),
    _t(
        "smmc.alarm.mbusDeviceDiscovered",
        "Pairing",
        "MeterBus",
        "Registered",
        "alarm push, bits 24..27: new M-Bus device discovered on channel 1..4",
        "annexE",
    ),
    # -- effective-dated orders (EndDeviceControls connect/disconnect, account moves with an
    #    effectiveDateTime): the outcome of one order; the event's mRID is the orderId --
    _t(
        "smmc.order.executed",
        "NA",
        "Schedule",
        "Succeeded",
        "an effective-dated order ran at its time (reason: connect|disconnect|moveOut|moveIn; "
        "details: order id, effective time, what was done)",
        "annexE",
        "gateway",
        note="no code for 'a scheduled command ran': the Schedule subdomain, Succeeded",
    ),
    _t(
        "smmc.order.failed",
        "NA",
        "Schedule",
        "Failed",
        "an effective-dated order ran and failed, or the meter did not answer within "
        "order_grace (details: why)",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.order.expired",
        "NA",
        "Schedule",
        "Aborted",
        "an effective-dated order was not run: it came due while the gateway was down and "
        "the gateway came back later than order_grace",
        "annexE",
        "gateway",
    ),
    _t(
        "smmc.order.cancelled",
        "NA",
        "Schedule",
        "Cancelled",
        "an effective-dated order was cancelled on request before it ran",
        "annexE",
        "gateway",
    ),
    # -- firmware campaign steps (firmware-event-types; reason is the step) --
    _t(
        "smmc.firmware.started",
        "Firmware",
        "NA",
        "Started",
        "image transfer started (details: image and size)",
        "annexE",
        "firmware",
    ),
    _t(
        "smmc.firmware.progress",
        "Firmware",
        "NA",
        "InProgress",
        "transfer progress, every 25 % (details: 'N% (done of total bytes)')",
        "annexE",
        "firmware",
    ),
    _t(
        "smmc.firmware.verified",
        "Firmware",
        "Activation",
        "ReadyForActivation",
        "image verified by the meter (details: blocks, already held = resumed, sent)",
        "connexo",
        "firmware",
    ),
    _t(
        "smmc.firmware.activationScheduled",
        "Firmware",
        "Activation",
        "Scheduled",
        "activation scheduled (details: the time)",
        "annexE",
        "firmware",
    ),
    _t(
        "smmc.firmware.activated",
        "Firmware",
        "Activation",
        "Activated",
        "activated (details: the firmware identifier read back from 1.0.0.2.0.255)",
        "connexo",
        "firmware",
    ),
    _t(
        "smmc.firmware.failed",
        "Firmware",
        "NA",
        "Failed",
        "the campaign failed for this meter (details: the reason and the last step)",
        "annexE",
        "firmware",
    ),
]
EVENT_TYPES: Mapping[str, EventType] = {t.name: t for t in _TABLE}
if len(EVENT_TYPES) != len(_TABLE):  # pragma: no cover - a programming error at import
    raise ValueError("cim.event_types: an event name is listed twice")


def _family(log: str, domain: str, subdomain: str, what: str) -> EventType:
    return EventType(
        f"smmc.meter.{log}.<code>",
        domain,
        subdomain,
        "NA",
        f"a row of the meter's {log} log with an IDIS code the gateway has no "
        f"name for ({what}; the number is kept in the name and details)",
        "annexE",
        "meter",
        pattern=rf"smmc\.meter\.{log}\.-?\d+",
    )


FAMILIES: tuple[EventType, ...] = (
    _family("standard", "NA", "NA", "not applicable: any kind of event"),
    _family("fraud", "Security", "NA", "a security event"),
    _family("disconnector", _SWITCH, "NA", "a switch event"),
    _family("powerQuality", "Power", "PowerQuality", "a power-quality event, e.g. a sag or swell"),
    EventType(
        "smmc.alarm.bit<n>",
        "Logs",
        "AlarmTable",
        "NA",
        "alarm push: a bit of the alarm register without a name (the bit number is "
        "kept in the name)",
        "annexE",
        "meter",
        pattern=r"smmc\.alarm\.bit\d+",
    ),
)
_FAMILY_RES = tuple((re.compile(f.pattern or ""), f) for f in FAMILIES)


def lookup(name: str) -> EventType | None:
    """The event type of ``name`` (the table, then the families), or None."""
    found = EVENT_TYPES.get(name)
    if found is not None:
        return found
    for pattern, family in _FAMILY_RES:
        if pattern.fullmatch(name):
            return family
    return None


def event_type(name: str) -> EventType:
    """The event type of ``name``; :class:`UnknownEventName` when it has no code."""
    found = lookup(name)
    if found is None:
        raise UnknownEventName(name)
    return found


def meter_event_name(log: str, code: int) -> str:
    """The event name of IDIS code ``code`` in event log ``log`` (one of METER_LOGS)."""
    name = IDIS_EVENT_NAMES.get(code)
    return f"smmc.meter.{name}" if name else f"smmc.meter.{log}.{code}"
