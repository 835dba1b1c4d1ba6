"""Vring transports: shared memory, split virtqueues, and kick / interrupt notifiers.

The abstract parts (this package's ``errors``, ``memory``, ``vdev``, ``vring``, ``base`` and
``registry`` modules) import no concrete backend; backends are reached through
:func:`open_transport` and imported lazily.
"""

from .errors import (
    MemoryAccessError,
    RemoteProtocolError,
    RingFullError,
    TransportClosedError,
    TransportError,
)
from .memory import DeviceMemory, Region
from .vdev import VdevView, VringInfo
from .vring import VringDevice, VringDriver, VringLayout, vring_size

__all__ = [
    "DeviceMemory",
    "MemoryAccessError",
    "Region",
    "RemoteProtocolError",
    "RingFullError",
    "TransportClosedError",
    "TransportError",
    "VdevView",
    "VringDevice",
    "VringDriver",
    "VringInfo",
    "VringLayout",
    "vring_size",
]
