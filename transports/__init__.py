"""Vring transports: shared memory, split virtqueues, and kick / interrupt notifiers.

The floors, from the bottom: :mod:`transports.virtio` holds the pure virtio structures (the
split vring, the vdev entry, the layout, device memory, the constants); :mod:`transports.base`
the abstract :class:`Transport`; :mod:`transports.backends` the concrete backends, reached
through :func:`open_transport` and imported lazily. This package imports none of aioamp's
other packages.

Names are re-exported lazily (PEP 562): ``import transports.virtio.vring`` alone loads no
event loop, socket or mmap module, and ``from transports import loopback_pair`` imports the
loopback backend only then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends.loopback import LoopbackLink, LoopbackTransport, loopback_pair
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
    from .registry import open_transport, register_transport
    from .virtio.layout import SharedLayout
    from .virtio.memory import DeviceMemory, Region
    from .virtio.vdev import VdevView, VringInfo
    from .virtio.vring import VringDevice, VringDriver, VringLayout, vring_size

_EXPORTS: dict[str, str] = {
    "DeviceMemory": ".virtio.memory",
    "LoopbackLink": ".backends.loopback",
    "LoopbackTransport": ".backends.loopback",
    "MemoryAccessError": ".errors",
    "Region": ".virtio.memory",
    "RemoteProtocolError": ".errors",
    "RingFullError": ".errors",
    "Role": ".base",
    "RoleClashError": ".errors",
    "SharedLayout": ".virtio.layout",
    "Transport": ".base",
    "TransportClosedError": ".errors",
    "TransportError": ".errors",
    "TransportURLError": ".errors",
    "VdevView": ".virtio.vdev",
    "VringDevice": ".virtio.vring",
    "VringDriver": ".virtio.vring",
    "VringInfo": ".virtio.vdev",
    "VringLayout": ".virtio.vring",
    "loopback_pair": ".backends.loopback",
    "open_transport": ".registry",
    "register_transport": ".registry",
    "vring_size": ".virtio.vring",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
