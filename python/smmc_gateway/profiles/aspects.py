"""The 15 aspects the regulator asks to document: annex articles, triggers, objects, nouns.

One row per aspect, as in the design table: number, aspect (with the NTD technical annex
articles in parentheses), trigger, DLMS/COSEM objects, MQTT (CIM noun).
"""

# ruff: noqa: E501  (the design table, one row a line)

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Aspect:
    number: int
    title: str
    articles: str
    trigger: str
    objects: str
    nouns: str


_TABLE = """\
| 1 | General architecture: AMI head-end to/from meter (3-2, 4-4) | meter registration, discovery | Association LN (15) 0.0.40.0.0.255 object_list; SAP assignment (17); Security setup (64) 0.0.43.0.x.255; device id (1) 0.0.96.1.0.255 | EndDeviceConfig (discovered model, objects) |
| 2 | Bulk meter readings: 4-hourly collection, daily export to MDM, distribution to ODS/CIS (3-3, 4-10) | schedule (cron-like), on-demand read | Profile generic (7) 1.0.99.1.0.255 buffer with range selective access from the last stored entry; billing profile 0.0.98.1.0.255; registers (3) 1.0.1.8.0.255…1.0.4.8.0.255 | MeterReadings (per read and as a daily bulk set); MeterReadSchedule |
| 3 | Customer access to all their data (2-1-11, 2-1-17) | customer or portal request | none new: served from what 2 and 7 collected | CustomerMeterDataSet / MeterReadings query → reply |
| 4 | Interface I1: meter to in-home display / HAN devices (3-10) | HAN device join, price or DR event, customer opt-out | Push setup (40) on the local/HAN port; consumer message 0.0.96.13.x.255; active tariff 0.0.96.14.0.255 | EndDeviceConfig (HAN device provisioning), EndDeviceControls (price/DR event), EndDeviceEvents (opt-out) |
| 5 | In-field programming and firmware upgrade via the optical port (4-11) | technician at the meter | IEC 62056-21 mode E handshake then HDLC; same objects as 9 and 10 | audit record uplinked when the gateway is next online: EndDeviceEvents |
| 6 | Remote connect / disconnect (3-3) | CIS service order | Disconnect control (70) 0.0.96.3.10.255: methods 1 remote_disconnect, 2 remote_reconnect; read back attrs 2 output_state, 3 control_state; attr 4 control_mode | EndDeviceControls → reply + EndDeviceEvents |
| 7 | Events and alarms; OMS poll unicast and multicast; outage and restoration notification (5-4) | meter push (last gasp, alarm), log poll, OMS request | Event logs (7) 0.0.99.98.e.255; power-failure log 1.0.99.97.0.255; alarm register/filter 0.0.97.98.x.255; Data-notification pushes (Push setup 0.x.25.9.0.255) received on a listening port; poll = GET clock or voltage 1.0.32.7.0.255 | EndDeviceEvents (outage, restoration, alarms); EndDeviceControls "ping" → reply per meter, for one meter or a group |
| 8 | Demand management and tariff notification (4-17-6, 4-10-8) | price or DR program change | Activity calendar (20) 0.0.13.0.0.255 passive attrs 6–9, attr 10 / method 1; Special days (11); Limiter (71) emergency profile for DR; consumer message for price display | PricingStructureConfig, EndDeviceControls |
| 9 | Remote firmware update (4-21, 5-3-8) | firmware campaign | Image transfer (18) 0.0.44.0.0.255: methods 1 initiate, 2 block transfer, 3 verify, 4 activate; attrs 2 block size, 3/4 missing blocks, 6 status, 7 image_to_activate_info; activation schedule 0.0.15.0.2.255; confirm 1.0.0.2.0.255 | EndDeviceFirmware (campaign, per-meter progress), EndDeviceEvents |
| 10 | Remote programming (4-21, 5-3) | configuration change | SET of configuration attributes (capture period, push destinations, thresholds…); Script table (9) execute; Security setup (64) key_transfer / security_activate; Association change_HLS_secret | MeterConfig / EndDeviceConfig (change) → reply |
| 11 | Data store and reports (5-1, 3-6) | continuous; report request | none new | report replies (read success rate, gaps, events) and bulk exports |
| 12 | Customer account move (5-1) | CIS move-out / move-in | final read: end-of-billing script 0.0.10.0.1.255 or capture on 0.0.98.1.0.255; disconnect (70) at the old premise, reconnect at the new | MasterDataLinkageConfig; final MeterReadings; EndDeviceControls |
| 13 | Remote time synchronisation (3-11) | schedule, drift detected, on demand | Clock (8) 0.0.1.0.0.255: attr 2 time, 3 time_zone, 4 status; method 6 shift_time (±900 s) for small drift; last sync 0.0.96.2.12.255 | EndDeviceEvents (clock adjusted, with the deviation before and after) |
| 14 | Remote power limitation (5-3) | CIS / DR order | Limiter (71) 0.0.17.0.0.255: attrs 2 monitored_value, 3–5 thresholds, 6–7 min durations, 8–10 emergency profile, 11 actions; disconnect control_mode | EndDeviceControls → reply; EndDeviceEvents (limiter trip) |
| 15 | Local power limitation (5-3) | technician at the meter (optical port), or the meter's own trip | same Limiter, set through the optical-port CLI; the meter's own trip shows up in event log 0.0.99.98.2.255 | EndDeviceEvents |
"""


def _parse() -> dict[int, Aspect]:
    out: dict[int, Aspect] = {}
    for line in _TABLE.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        title, _, arts = cells[1].rpartition(" (")
        out[int(cells[0])] = Aspect(
            int(cells[0]), title, arts.rstrip(")"), cells[2], cells[3], cells[4]
        )
    return out


ASPECTS: dict[int, Aspect] = _parse()
