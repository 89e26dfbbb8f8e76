"""Interoperability: Gurux reads every readable attribute the simulator lists.

Gurux builds the management association's object list into its own interface
class objects, then reads every attribute the list marks readable (profile
buffers excepted: they are covered by selective access elsewhere) and stores
each value with its own class model (``updateValue``). Where Gurux's model
fixes a simple data type for an attribute (Blue Book), the type on the wire
must be that type.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "gurux_dlms", reason="gurux-dlms is not installed (pip install -e '.[interop]')"
)

from gurux_dlms.enums import Authentication, DataType, ObjectType

from tests.interop.gurux_peer import GuruxPeer
from tests.interop.sim_values import still_fleet

# Where the simulator follows a standard whose type differs from Gurux's model, named:
KNOWN_DIFFERENCES = {
    # IDIS / DSMR P1 give the consumer message text and code as octet-string; Gurux's OBIS
    # table guesses visible-string for these Data objects.
    "1/0.0.96.13.0.255/2": (DataType.OCTET_STRING, DataType.STRING),
    "1/0.0.96.13.1.255/2": (DataType.OCTET_STRING, DataType.STRING),
    # Blue Book: date-time attributes of interface classes are octet-strings formatted as
    # date-time (as Gurux itself models Clock.time and ActivityCalendar attribute 10);
    # Gurux's Charge model declares the date-time type for last_collection_time.
    "113/0.0.19.20.0.255/10": (DataType.OCTET_STRING, DataType.DATETIME),
}


async def test_gurux_reads_every_listed_attribute() -> None:
    async with still_fleet("lls", hdlc=False) as (sim, _t0):
        peer = await GuruxPeer.connect(
            sim.ports[0],
            hdlc=False,
            client_address=1,
            authentication=Authentication.LOW,
            password=sim.info[0]["password"].encode(),
        )
        try:
            await peer.open()
            objects = await peer.object_list()
            read, wrong_type, failed = 0, [], []
            for obj in objects:
                for attr in range(2, obj.getAttributeCount() + 1):
                    if not int(obj.getAccess(attr)) & 1:  # not readable
                        continue
                    if obj.objectType == ObjectType.PROFILE_GENERIC and attr == 2:
                        continue
                    where = f"{int(obj.objectType)}/{obj.logicalName}/{attr}"
                    try:
                        reply = await peer.exchange(peer.client.read(obj, attr))
                        peer.client.updateValue(obj, attr, reply.value)
                    except Exception as exc:
                        failed.append(f"{where}: {type(exc).__name__}: {exc}")
                        continue
                    read += 1
                    want, got = obj.getDataType(attr), reply.valueType
                    if KNOWN_DIFFERENCES.get(where) == (got, want):
                        continue
                    if want != DataType.NONE and got != DataType.NONE and got != want:
                        wrong_type.append(f"{where}: sent {got!r}, Blue Book {want!r}")
            await peer.release()
        finally:
            await peer.close()
    assert failed == []
    assert wrong_type == []
    assert len(objects) >= 40 and read >= 140
