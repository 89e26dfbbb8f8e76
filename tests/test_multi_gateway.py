"""Many gateways, one central system (issue 11 item 10), at a size CI carries: gateway
processes with simulated meters against one Mosquitto, three consumers in one MQTT v5
shared-subscription group, one gateway SIGKILLed and restarted mid-run. Every message a
gateway stored reaches the group (its gap-free outbox seq), a repeat is the same
messageId with the same payload, the same readings never come under two ids, every
meter's readings arrive and every consumer takes a share. The full size (10 x 100) and
the clustered broker are in bench/multi_gateway.py."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import Broker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from multi_gateway import Spec, run


async def test_gateways_share_one_broker_and_a_killed_one_loses_nothing(
    mosquitto: Broker, tmp_path: Path
) -> None:
    spec = Spec(
        gateways=3,
        meters=6,
        consumers=3,
        duration_s=35.0,
        kill_after_s=6.0,
        down_s=3.0,
        drain_s=60.0,
        broker=(mosquitto.host, mosquitto.port),
        workdir=tmp_path,
    )
    report = await run(spec)
    assert report.problems == [], report
    assert len(report.gateways) == 3 and all(g.stored > 0 for g in report.gateways)
    assert sum(g.restarted for g in report.gateways) == 1
    assert all(n > 0 for n in report.per_consumer)
    assert report.readings_messages >= 3 * 6
