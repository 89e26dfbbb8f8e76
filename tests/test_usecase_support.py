"""Shared by the use-case tests: an open client session to a simulated meter."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from smmc_gateway.dlms.ic_store import InvocationCounterStore
from smmc_gateway.dlms.session import ClientSession, Security, SessionSettings
from smmc_gateway.dlms.transport import WrapperTransport


@contextlib.asynccontextmanager
async def session_to(
    port: int, info: dict[str, Any], store: InvocationCounterStore | None = None
) -> AsyncIterator[ClientSession]:
    """A session with its own counter store (pass one to share it across sessions: the
    simulated meter refuses a client counter that does not increase)."""
    sec = Security.hls_gmac(
        system_title=b"SMMCGW01",
        ek=bytes.fromhex(info["ek"]),
        ak=bytes.fromhex(info["ak"]),
        ic_store=store or InvocationCounterStore(":memory:"),
        ic_scope=info["meter_id"],
    )
    settings = SessionSettings(client_sap=1, security=sec, response_timeout=5)
    async with ClientSession(
        WrapperTransport.tcp("127.0.0.1", port, client_sap=1), settings, meter_id=info["meter_id"]
    ) as s:
        yield s
