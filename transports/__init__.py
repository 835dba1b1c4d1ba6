"""Vring transports: shared memory, split virtqueues, and kick / interrupt notifiers.

The abstract parts (this package's ``errors``, ``memory``, ``vdev``, ``vring``, ``base`` and
``registry`` modules) import no concrete backend; backends are reached through
:func:`open_transport` and imported lazily.
"""

from .base import Role, Transport
from .errors import (
    MemoryAccessError,
    RemoteProtocolError,
    RingFullError,
    RoleClashError,
    TransportClosedError,
    TransportError,
    TransportURLError,
)
from .layout import SharedLayout
from .loopback import LoopbackLink, LoopbackTransport, loopback_pair
from .memory import DeviceMemory, Region
from .registry import open_transport, register_transport
from .vdev import VdevView, VringInfo
from .vring import VringDevice, VringDriver, VringLayout, vring_size

__all__ = [
    "DeviceMemory",
    "LoopbackLink",
    "LoopbackTransport",
    "MemoryAccessError",
    "Region",
    "RemoteProtocolError",
    "RingFullError",
    "Role",
    "RoleClashError",
    "SharedLayout",
    "Transport",
    "TransportClosedError",
    "TransportError",
    "TransportURLError",
    "VdevView",
    "VringDevice",
    "VringDriver",
    "VringInfo",
    "VringLayout",
    "loopback_pair",
    "open_transport",
    "register_transport",
    "vring_size",
]
