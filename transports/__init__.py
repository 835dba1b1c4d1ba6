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

from typing import TYPE_CHECKING

from ._compiled import install as _install_compiled
from ._lazy import lazy_exports

_install_compiled()  # AIOAMP_PURE_PYTHON: the pure sources of the mypyc-compiled modules

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".backends.loopback": (
            "LoopbackLink",
            "LoopbackTransport",
            "loopback_pair",
        ),
        ".base": (
            "Role",
            "Transport",
        ),
        ".errors": (
            "MemoryAccessError",
            "RemoteProtocolError",
            "RingFullError",
            "RoleClashError",
            "TransportClosedError",
            "TransportError",
            "TransportURLError",
        ),
        ".registry": (
            "open_transport",
            "register_transport",
        ),
        ".virtio.layout": ("SharedLayout",),
        ".virtio.memory": (
            "DeviceMemory",
            "Region",
        ),
        ".virtio.vdev": (
            "VdevView",
            "VringInfo",
        ),
        ".virtio.vring": (
            "VringDevice",
            "VringDriver",
            "VringLayout",
            "vring_size",
        ),
    },
)

if TYPE_CHECKING:
    from .backends.loopback import LoopbackLink as LoopbackLink
    from .backends.loopback import LoopbackTransport as LoopbackTransport
    from .backends.loopback import loopback_pair as loopback_pair
    from .base import Role as Role
    from .base import Transport as Transport
    from .errors import MemoryAccessError as MemoryAccessError
    from .errors import RemoteProtocolError as RemoteProtocolError
    from .errors import RingFullError as RingFullError
    from .errors import RoleClashError as RoleClashError
    from .errors import TransportClosedError as TransportClosedError
    from .errors import TransportError as TransportError
    from .errors import TransportURLError as TransportURLError
    from .registry import open_transport as open_transport
    from .registry import register_transport as register_transport
    from .virtio.layout import SharedLayout as SharedLayout
    from .virtio.memory import DeviceMemory as DeviceMemory
    from .virtio.memory import Region as Region
    from .virtio.vdev import VdevView as VdevView
    from .virtio.vdev import VringInfo as VringInfo
    from .virtio.vring import VringDevice as VringDevice
    from .virtio.vring import VringDriver as VringDriver
    from .virtio.vring import VringLayout as VringLayout
    from .virtio.vring import vring_size as vring_size
