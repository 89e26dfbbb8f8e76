"""Every scenario behind the profiles, in the order they run (one lab, one after the other).

The order matters where one leaves the lab in a state the next one needs: the bulk export
after a collection, meter B unpowered by the OMS poll exception for the unreachable meter
exception (which restores it), the HAN device joined before it is installed, the
technician's limiter trip last (it leaves meter A disconnected). A document lists its
aspect's scenarios in this order.
"""

from __future__ import annotations

from smmc_gateway.profiles import scenarios as s
from smmc_gateway.profiles import scenarios_han as h
from smmc_gateway.profiles import scenarios_more as m
from smmc_gateway.profiles.scenarios import Scenario

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(1, "discovery", "Discovery of a newly registered meter", s._discovery),
    Scenario(
        1,
        "config-unknown-meter",
        "Exception: configuration of a meter not configured",
        m.config_unknown_meter,
        exception=True,
    ),
    Scenario(2, "collection", "Scheduled collection (load profile and registers)", s._collection),
    Scenario(2, "on-demand", "On-demand read (MeterReadings get)", s._on_demand_read),
    Scenario(
        2, "bulk-export", "Daily export of the day's readings to the MDM (bulk)", m.bulk_export
    ),
    Scenario(
        2,
        "read-unknown-meter",
        "Exception: a read for a meter not configured",
        m.read_unknown_meter,
        exception=True,
    ),
    Scenario(
        3, "customer-data", "Customer data from the data store (no meter touched)", s._customer_data
    ),
    Scenario(
        3,
        "customer-bad-window",
        "Exception: a period that ends before it starts",
        m.customer_bad_window,
        exception=True,
    ),
    Scenario(11, "readings-report", "Collection quality report of a group", s._readings_report),
    Scenario(
        11,
        "report-unknown-group",
        "Exception: a report for a group not configured",
        m.report_unknown_group,
        exception=True,
    ),
    Scenario(10, "programming", "Remote programming (MeterConfig change)", s._programming),
    Scenario(
        10,
        "programming-not-allowed",
        "Exception: a setting the allowlist refuses",
        m.programming_not_allowed,
        exception=True,
    ),
    Scenario(12, "account-move", "Move-out then move-in", s._account_move),
    Scenario(
        12,
        "move-bad-reason",
        "Exception: an unknown move reason",
        m.move_bad_reason,
        exception=True,
    ),
    Scenario(13, "clock-sync", "Clock synchronisation on demand", s._clock),
    Scenario(
        13,
        "clock-unsynchronised",
        "Exception: the gateway's own clock is not synchronised",
        m.clock_unsynchronised,
        exception=True,
    ),
    Scenario(14, "limit", "Remote power limitation", s._limit),
    Scenario(
        14,
        "limit-bad-unit",
        "Exception: a limit in a unit the gateway does not take",
        m.limit_bad_unit,
        exception=True,
    ),
    Scenario(6, "disconnect-connect", "Remote disconnect, then reconnect", s._disconnect_connect),
    Scenario(
        6,
        "unknown-meter",
        "Exception: a command for a meter not configured",
        s._unknown_meter,
        exception=True,
    ),
    Scenario(7, "oms-poll", "OMS poll (ping) of a group", s._oms),
    Scenario(7, "outage", "Outage and restoration pushed by the meter", s._outage),
    Scenario(
        7,
        "poll-meter-down",
        "Exception: a meter of the polled group has no supply",
        m.poll_with_meter_down,
        exception=True,
    ),
    Scenario(
        6, "unreachable", "Exception: the meter does not answer", s._unreachable, exception=True
    ),
    Scenario(4, "han-join", "A HAN device (in-home display) joins the meter's M-Bus", h.han_join),
    Scenario(
        4,
        "han-install",
        "The central system links the HAN device to a usage point",
        h.han_install_keyed,
    ),
    Scenario(4, "han-list", "The HAN devices of a meter, on request", h.han_list),
    Scenario(
        4,
        "customer-display",
        "Consumer message and prices shown to the customer",
        h.customer_display,
    ),
    Scenario(
        4, "customer-interface", "The customer interface switched off and on", h.customer_interface
    ),
    Scenario(
        4,
        "han-remove-unknown",
        "Exception: removing a HAN device the meter does not have",
        m.han_remove_unknown,
        exception=True,
    ),
    Scenario(4, "han-remove", "The HAN device removed", h.han_remove),
    Scenario(
        8, "tariff-calendar", "Time-of-use calendar programmed and activated", m.tariff_calendar
    ),
    Scenario(
        8, "demand-response", "Demand response: the limiter's emergency profile", m.demand_response
    ),
    Scenario(8, "dr-event", "A DR event announced to the customer and enforced", h.dr_event),
    Scenario(8, "opt-out", "The customer opts out at the meter", h.opt_out),
    Scenario(
        8,
        "tariff-invalid",
        "Exception: a calendar that names an undefined day profile",
        m.tariff_invalid,
        exception=True,
    ),
    Scenario(9, "firmware", "Firmware campaign: transfer, verify, activate, confirm", s._firmware),
    Scenario(
        9,
        "firmware-unknown-image",
        "Exception: an image the gateway does not have",
        m.firmware_unknown_image,
        exception=True,
    ),
    Scenario(
        5,
        "optical-programming",
        "A setting written at the optical port, audited and uplinked",
        m.optical_programming,
    ),
    Scenario(
        5,
        "optical-refused",
        "Exception: a write the meter refuses at the optical port",
        m.optical_refused,
        exception=True,
    ),
    Scenario(
        15,
        "local-limit-trip",
        "Limit set at the optical port; the meter trips by itself",
        m.local_limit_trip,
    ),
    Scenario(
        15,
        "local-limit-refused",
        "Exception: a threshold the CLI refuses",
        m.local_limit_refused,
        exception=True,
    ),
)
