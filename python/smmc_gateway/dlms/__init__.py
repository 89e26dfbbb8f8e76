"""DLMS/COSEM over the wire: transports, the client session, the push listener (asyncio)."""
