"""Use cases: one module per aspect of the mission (readings, clock, connect, oms, ...).

Each works on an open client session through the session API only, never on bytes.
"""
