"""The hand-written parts of each profile: what the scenario cannot observe by itself.

Summary, assumptions, pre/post-conditions and exceptions per implemented aspect; the
sequences themselves are never written here (they come from the scenario run).
``NOT_RECORDED`` names aspects the gateway implements but for which no scenario is
recorded yet; every other aspect without prose is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prose:
    summary: str
    assumptions: tuple[str, ...]
    pre: tuple[str, ...]
    post: tuple[str, ...]
    exceptions: tuple[str, ...]


_COMMON_ASSUMPTIONS = (
    "The gateway reaches each meter over TCP (DLMS wrapper), management client 1, "
    "HLS-GMAC (security suite 0): every APDU after the association is ciphered.",
    "The central system talks to the gateway only through the MQTT broker "
    "(topics smmc/v1/{gateway}/..., MQTT v5, CIM nouns; see docs/asyncapi.yaml).",
    "OBIS codes are the Blue Book defaults of the meter model 'default'; every one "
    "can be changed per model in the configuration.",
)

_UNREACHABLE = ("Meter unreachable or not answering: the session ends with a clear error "
                "within the configured response timeout (and retries); the reply is FAILED "
                "and names the meter and the cause.")
_UNKNOWN = ("A meter id the gateway does not know: FAILED reply naming it, no DLMS "
            "session (recorded in the scenario 06-unknown-meter).")

PROSE: dict[int, Prose] = {
    1: Prose(
        summary="When a meter is new in the configuration the gateway associates with it, "
                "reads its object list, identification, time zone, SAP assignment and "
                "security setup, compares them with the configured model, keeps the result "
                "and publishes it as EndDeviceConfig (retained) on meter/{meter}/config.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The meter is in the configuration with its keys and model.",),
        post=("The discovered configuration is kept in the fleet state and retained on "
              "meter/{meter}/config; EndDeviceConfig get answers from it.",),
        exceptions=(_UNREACHABLE.replace("the reply is FAILED and names the meter and the "
                                         "cause", "the meter stays undiscovered and is tried "
                                         "again on the next start"),
                    "Objects of the model absent from the object list: a modelMismatch list "
                    "in EndDeviceConfig and an event naming each one."),
    ),
    2: Prose(
        summary="Interval (load profile) data and the energy registers are collected on a "
                "schedule, from the last stored entry, and published per meter as "
                "MeterReadings; the central system can also read a meter on demand "
                "(MeterReadings get) and gets the values in the reply.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The meter is configured and was read before (the gateway keeps the newest "
             "profile entry per meter, so the next collection asks only for what is new).",),
        post=("The readings are on meter/{meter}/readings (scheduled) or in the reply "
              "(on demand); the last stored entry moves forward.",),
        exceptions=(_UNREACHABLE, "Missing intervals in the profile: an EndDeviceEvents "
                    "loadProfileGap naming the range.", _UNKNOWN),
    ),
    6: Prose(
        summary="A service order from the CIS disconnects or reconnects the supply: the "
                "gateway checks the disconnect control, calls remote_disconnect or "
                "remote_reconnect, reads the states back, and answers with the result and "
                "an event.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The meter's disconnect control mode allows remote operation.",),
        post=("The output state read back matches the order; reply OK and an "
              "EndDeviceEvents (switch disconnected / connected).",),
        exceptions=(_UNREACHABLE, _UNKNOWN, "The meter refuses the method (control mode, "
                    "access rights): FAILED reply with the Action-Result."),
    ),
    7: Prose(
        summary="The outage management system polls meters (one or a group) to know if "
                "they are energised; meters push a last-gasp on power loss and a "
                "notification when the supply comes back, which the gateway turns into "
                "outage and restoration events.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "The meters' push setup points at the gateway's push listener."),
        pre=("For the push: the meter's push setup destination is the gateway.",),
        post=("Ping: one reply listing each meter's state. Push: EndDeviceEvents "
              "(outage, restoration) on meter/{meter}/events.",),
        exceptions=("A meter of the group does not answer the poll: it is reported as "
                    "not reachable in the same reply (the others are still answered).",
                    "A push from an unknown system title or with a bad tag is refused and "
                    "counted, never published."),
    ),
    13: Prose(
        summary="The gateway compares the meter clock with its own synchronised time and "
                "corrects a small deviation with shift_time (a large one with a SET of the "
                "time), then reads the clock back and reports the deviation before and "
                "after.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "The gateway's own clock is synchronised (NTP); if it is not, no meter "
                     "clock is touched."),
        pre=("In the scenario the meters' clocks run 40 s ahead.",),
        post=("The meter clock is within the tolerance; an EndDeviceEvents says whether "
              "the clock was checked or adjusted, with the deviations.",),
        exceptions=(_UNREACHABLE, "Gateway clock not synchronised: FAILED reply, the meter "
                    "is not touched."),
    ),
    14: Prose(
        summary="A CIS or demand-response order sets the limiter's active threshold (and "
                "optionally the minimum durations); the gateway writes it and reads the "
                "limiter settings back, reporting them in the reply and an event.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The meter has a limiter (class 71) at the model's OBIS code.",),
        post=("The threshold read back equals the one ordered; reply OK with the limiter "
              "settings and an EndDeviceEvents (limiter configured).",),
        exceptions=(_UNREACHABLE, _UNKNOWN, "A demandLimit outside 1 W .. 2^32-1 W or a bad "
                    "unit: FAILED reply naming the field, nothing written."),
    ),
}

PROSE.update({
    9: Prose(
        summary="A campaign names a signed image and the meters (or groups); the gateway "
                "verifies the image's signed manifest, then per meter initiates the image "
                "transfer, sends the blocks the meter reports missing, verifies, activates "
                "(now or at the activation time) and confirms the new version, reporting "
                "progress as events and one reply when every meter has ended.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "The image and its manifest are in the gateway's firmware directory, "
                     "signed by a trusted key (here the TEST-ONLY sample key)."),
        pre=("The meter supports image transfer (class 18) with the model's OBIS code.",),
        post=("The meter runs the new version (read back from 1.0.0.2.0.255); events "
              "started, progress, verified, activated; reply OK with one result per "
              "meter.",),
        exceptions=(_UNREACHABLE.replace("the reply is FAILED", "that meter's result is "
                                         "FAILED"),
                    "Unknown, unsigned, untrusted or tampered image: FAILED reply "
                    "(ImageRefused) before any meter is touched.",
                    "A gateway stop during a campaign: no reply; the request stays "
                    "journaled and each meter resumes where it says it stopped."),
    ),
    10: Prose(
        summary="A MeterConfig change carries settings (class, OBIS, attribute, typed "
                "value) for meters or groups; the gateway writes each one and reads it back, "
                "and the reply lists the result per meter and setting.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The attribute is writable for the management client.",),
        post=("Each setting is reported OK with the value read back, or FAILED with the "
              "Data-Access-Result; the reply is OK, PARTIAL or FAILED accordingly.",),
        exceptions=(_UNREACHABLE, "The meter refuses a write (read-write-denied …): that "
                    "setting is FAILED and named, the others still go.",
                    "A malformed setting (bad OBIS, unknown type): FAILED reply naming the "
                    "field, nothing sent."),
    ),
    12: Prose(
        summary="On a move-out the gateway takes a final read (end-of-billing script, or a "
                "capture of the billing profile when the script is missing), reads the "
                "registers and disconnects the supply; on a move-in it reconnects and takes "
                "the opening read. Readings, events and the reply carry the account.",
        assumptions=_COMMON_ASSUMPTIONS,
        pre=("The meter is configured; the account is named in the request.",),
        post=("Move-out: final billing entry and registers published, supply disconnected. "
              "Move-in: supply reconnected, opening registers published.",),
        exceptions=(_UNREACHABLE, _UNKNOWN, "A reason other than moveOut or moveIn: FAILED "
                    "reply naming it."),
    ),
})

PROSE.update({
    5: Prose(
        summary="A technician programs a meter (or pushes firmware) at its optical port with "
                "the CLI (smmc-gateway meter --optical: IEC 62056-21 mode E, then HDLC and "
                "DLMS). Every command that writes leaves one audit record (who, when, which "
                "meter, each set/action with its value, secrets redacted, the result) in a "
                "spool; dropped into the gateway's state_dir/audit-inbox (or written there "
                "directly with SMMC_AUDIT_DIR), each record is published as an EndDeviceEvents "
                "smmc.audit.opticalOperation on the meter's events topic, exactly once.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "The optical session itself is the technician's and is not observed "
                     "here: the scenario drops the record the CLI would have written (made "
                     "by the CLI's own writer, ops/audit.py) and observes the uplink."),
        pre=("The spool file is complete (the inbox waits for a file changed in the last "
             "second or with an unterminated last line).",),
        post=("The event is on meter/{meter}/events (meter from the device id the CLI read); "
              "the file moves to audit-inbox/done/; a re-scan publishes nothing again.",),
        exceptions=("A line that is not a record: the valid records are published, the file "
                    "goes to audit-inbox/rejected/ for a person to look at.",
                    "The device id is missing or not usable as a topic level: the event goes "
                    "on meter/unidentified/events.",
                    "Gateway offline: the event waits in the durable outbox."),
    ),
    3: Prose(
        summary="A customer portal (through the central system) asks for what was collected "
                "from a meter over a period: CustomerMeterDataSet get, or MeterReadings get "
                "with \"fromStore\": true. The gateway answers from its data store alone "
                "(registers and interval blocks stamped in the window); no DLMS session is "
                "opened, so the answer comes even when the meter is off.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "The data store keeps what the scheduled collections (aspect 2) and the "
                     "pushes published; in the scenario it holds the start-up collection."),
        pre=("The meter is configured and was collected at least once in the window.",),
        post=("Reply OK with a MeterReadings payload (one MeterReading per meter); the meter "
              "is not touched (no DLMS step in the sequence).",),
        exceptions=(_UNKNOWN.replace("FAILED reply naming it, no DLMS session (recorded in "
                                     "the scenario 06-unknown-meter)",
                                     "FAILED reply naming it"),
                    "More interval stamps than maxIntervals (default and ceiling 2000): "
                    "PARTIAL reply with an error Truncated naming the first stamp left out; "
                    "repeating the request from that stamp pages through the rest.",
                    "A missing or malformed timeSchedule (not UTC ISO-8601, start not before "
                    "end): FAILED reply naming the field."),
    ),
    11: Prose(
        summary="The central system asks for the collection quality of meters or groups "
                "over a period: ReadingsReport get. The gateway answers from its data "
                "store: per meter expected and received intervals (readSuccessRate), the "
                "gaps as ranges, scheduled reads ok/failed and event counts by type.",
        assumptions=(*_COMMON_ASSUMPTIONS,
                     "ReadingsReport is a gateway-specific noun (CIM has none for collection "
                     "quality); docs/schemas/readings-report.schema.json describes it."),
        pre=("The meters were collected in the window; the capture period is given "
             "(intervalSeconds) or inferred from the stored stamps.",),
        post=("Reply OK with one ReadingsReport entry per meter of the request; no meter is "
              "touched (no DLMS step in the sequence).",),
        exceptions=("A meter or group the gateway does not know: FAILED reply naming it.",
                    "A verb other than get, or a malformed timeSchedule: FAILED reply "
                    "naming what was wrong."),
    ),
})

NOT_RECORDED: dict[int, str] = {
    9: "firmware campaigns are implemented (smmc-gateway firmware, EndDeviceFirmware; "
       "tests/test_firmware_*.py); a scenario runs, but its progress events interleave "
       "with the block transfer by timing, so its sequence is not yet reproducible",
    15: "the optical-port CLI can set the limiter, and the meter's own limiter trip reaches "
        "the central system through the scheduled event-log poll "
        "(tests/test_usecase_events.py)",
    8: "tariff (activity calendar) and demand-response commands are implemented "
       "(tests/test_usecase_tariff.py)",
}
