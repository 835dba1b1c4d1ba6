"""The virtio split virtqueue (legacy layout) over a memoryview.

Theory of operation: a vring is three arrays in shared memory (virtio 1.x spec, 2.7 "Split
Virtqueues"; Linux include/uapi/linux/virtio_ring.h):

* the descriptor table, written by the driver: ``num`` x ``struct vring_desc``;
* the avail ring, written by the driver: ``{u16 flags; u16 idx; u16 ring[num]; u16 used_event}``;
* the used ring, written by the device, starting at the next ``align`` boundary:
  ``{u16 flags; u16 idx; struct vring_used_elem ring[num]; u16 avail_event}``.

The *driver* half (:class:`VringDriver`, the rpmsg host) posts buffers: it fills a descriptor,
puts its id in the next avail slot and bumps ``avail.idx``. The *device* half
(:class:`VringDevice`, the rpmsg remote) takes them in order, and gives them back through the
used ring with the number of bytes written. Indices are free-running u16 counters that wrap; the
slot is ``idx % num``.

Each half keeps its own shadow state (its own index, the addresses it posted) and treats
everything the other half wrote as untrusted: a descriptor id ``>= num``, an index that moved by
more than ``num``, a chain that loops or is longer than ``num``, a buffer outside the allowed
region, or a used length larger than the buffer raise :class:`RemoteProtocolError`. The error
says whether the bad entry was consumed, so the caller can count it and carry on.

Pure: no I/O, no event loop; only struct over memoryviews.

Per-message methods: ``add_message`` / ``get_message`` (driver) and ``take_message`` /
``put_message`` (device) do one rpmsg side's whole work per message; they come from
:mod:`transports.virtio.messages`, the one module here that knows the rpmsg header.

Accelerator: :class:`PyVringDriver` and :class:`PyVringDevice` below are the reference
implementation. Their per-call cost (about a microsecond for each post, take, give or get_used)
dominated the rpmsg message path, so the optional C extension ``transports._vring_accel`` (built by
``pip install`` when a compiler is available) provides drop-in equivalents: same signatures, return
values, exceptions, messages and state changes, per-message methods included, checked against these
classes by tests/unit/test_vring_accel.py. The public names :data:`VringDriver` and
:data:`VringDevice` are the C classes when the extension imports and the pure classes otherwise;
:data:`ACCELERATED` says which. Set the environment variable ``AIOAMP_PURE_PYTHON`` to a non-empty
value other than ``0`` (before this module is first imported) to force the pure classes: the
extension then refuses to import.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from .constants import (
    MAX_VRING_NUM,
    VRING_AVAIL_F_NO_INTERRUPT,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    VRING_USED_F_NO_NOTIFY,
)
from .ring_layout import (
    VRING_DESC,
    VRING_USED_ELEM,
    RegionCheck,
    VringLayout,
    first_posted,
    vring_size,
)
from .vring_device import PyVringDevice
from .vring_driver import PyVringDriver

__all__ = [  # the ring flags, defined in .constants, are part of this module's API too
    "ACCELERATED",
    "MAX_VRING_NUM",
    "VRING_AVAIL_F_NO_INTERRUPT",
    "VRING_DESC",
    "VRING_DESC_F_INDIRECT",
    "VRING_DESC_F_NEXT",
    "VRING_DESC_F_WRITE",
    "VRING_USED_ELEM",
    "VRING_USED_F_NO_NOTIFY",
    "PyVringDevice",
    "PyVringDriver",
    "RegionCheck",
    "VringDevice",
    "VringDriver",
    "VringLayout",
    "first_posted",
    "vring_size",
]

# The optional C extension (no compiler at install time: not built). It reads
# AIOAMP_PURE_PYTHON itself and refuses to import when that asks for the pure classes.
_accel: ModuleType | None
try:
    from .. import _vring_accel as _accel
except ImportError:
    _accel = None
#: Whether :data:`VringDriver` and :data:`VringDevice` are the C accelerator's classes.
ACCELERATED: bool = _accel is not None

if TYPE_CHECKING:
    # Statically the public names are the pure classes: the C classes have the very same
    # interface (transports/_vring_accel.pyi; tests/unit/test_vring_accel.py compares them).
    VringDriver = PyVringDriver
    VringDevice = PyVringDevice
elif _accel is not None:
    VringDriver = _accel.VringDriver
    VringDevice = _accel.VringDevice
else:
    VringDriver = PyVringDriver
    VringDevice = PyVringDevice
