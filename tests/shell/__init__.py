"""Tests of the async shells: buses, transports, doorbells, remoteproc, platforms and their
hardware models, in one process or with helper processes (tests/peers.py, sim core processes)."""
