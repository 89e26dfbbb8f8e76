"""Behaviour of the simulated meter's COSEM objects, one module per interface class."""
