"""The asyncio adapter of the association machine (dlms/driver.py) over a
scripted in-memory transport: the machine's silence timer is kept alive by the
transport's progress (a long answer still arriving on a slow link), and not
by silence; the operation's deadline bounds everything."""

from __future__ import annotations

import asyncio

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.errors import MeterTimeout
from smmc_gateway.dlms.session import ClientSession, SessionSettings
from smmc_gateway.dlms.stream import Transport, WireCounters

VALUE = _core.encode({"type": "long-unsigned", "value": 230})
AARE = _core.encode_apdu(
    {  # accepted, LN, get/set/action/block-transfer-with-get, PDU 1024
        "apdu": "aare",
        "application_context_name": "logical-name",
        "result": "accepted",
        "result_source_diagnostic": {"source": "acse-service-user", "value": "null"},
        "user_information": {
            "apdu": "initiate-response",
            "negotiated_dlms_version_number": 6,
            "negotiated_conformance": ["get", "set", "action"],
            "server_max_receive_pdu_size": 1024,
            "vaa_name": 7,
        },
    }
)


class SlowLink(Transport):
    """Answers the AARQ at once and each GET after ``steps`` waits, making
    progress on every wait when ``progressing`` (segments of the answer arriving)."""

    def __init__(self, steps: int, progressing: bool) -> None:
        self.counters = WireCounters()
        self.description = "slow-link"
        self.steps = steps
        self.progressing = progressing
        self.queue: list[bytes] = []
        self.pending: bytes | None = None
        self.waited = 0
        self.moved = 0

    async def open(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        return None

    async def close(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        return None

    @property
    def progress(self) -> int:
        return self.moved

    async def send_apdu(self, apdu: bytes) -> None:
        self.counters.apdus_sent += 1
        if apdu[0] == 0x60:
            self.queue.append(AARE)
        elif apdu[0] == 0xC0:
            invoke = apdu[2]
            self.pending = bytes([0xC4, 0x01, invoke, 0x00]) + VALUE
            self.waited = 0

    async def receive_apdu(self, timeout: float) -> bytes:  # noqa: ASYNC109
        if self.queue:
            return self.queue.pop(0)
        await asyncio.sleep(timeout)
        if self.pending is not None:
            self.waited += 1
            if self.progressing:
                self.moved += 1
            if self.waited >= self.steps:
                answer, self.pending = self.pending, None
                return answer
        raise MeterTimeout("an APDU from slow-link", timeout)


def session(link: SlowLink, **kw: object) -> ClientSession:
    settings = SessionSettings(response_timeout=0.05, release=False, **kw)  # type: ignore[arg-type]
    return ClientSession(link, settings)


async def test_progress_on_the_link_keeps_the_silence_timer_alive() -> None:
    link = SlowLink(steps=4, progressing=True)  # about 4 response timeouts to arrive
    async with session(link) as s:
        assert (await s.get(3, "1.0.1.8.0.255", 2))["value"] == 230
    assert link.waited >= 4


async def test_silence_is_a_timeout_and_the_deadline_bounds_a_dripping_answer() -> None:
    async with session(SlowLink(steps=4, progressing=False)) as s:
        with pytest.raises(MeterTimeout, match=r"GET 3/1\.0\.1\.8\.0\.255/2 from slow-link"):
            await s.get(3, "1.0.1.8.0.255", 2)
    link = SlowLink(steps=1000, progressing=True)  # progress forever, never the answer
    async with session(link, operation_timeout=0.3) as s:
        with pytest.raises(MeterTimeout) as caught:
            await s.get(3, "1.0.1.8.0.255", 2)
    assert caught.value.timeout == pytest.approx(0.3)
