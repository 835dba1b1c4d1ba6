"""rpmsg: named channels and addressed endpoints, over virtio split vrings or any other bus.

Wire compatible with the Linux kernel's virtio_rpmsg_bus and with OpenAMP, in both roles.

The public names are imported lazily, on first use (a module ``__getattr__``): ``import
rpmsg.core`` (or ``rpmsg.wire``, ``rpmsg.addresses``, ``rpmsg.rings``), the pure parts, loads
no event loop, socket or shell module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import Channel, Driver
    from .core_bus import DEFAULT_SEND_TIMEOUT
    from .endpoint import Endpoint
    from .errors import (
        AddressInUseError,
        AddressTypeError,
        ArgumentTypeError,
        BusClosedError,
        DriverError,
        EndpointClosedError,
        ForeignEndpointError,
        InvalidAddressError,
        InvalidArgumentError,
        InvalidPayloadError,
        InvalidServiceNameError,
        NoBufferError,
        PayloadTooLargeError,
        RpmsgError,
        RpmsgTimeoutError,
        TransportInUseError,
        VdevSetupError,
    )
    from .message import DEFAULT, EndpointOptions, Message, Overflow
    from .open import open_bus, register_bus
    from .protocol import Bus, EndpointPort
    from .stats import DROP_REASONS, BusStatistics, EndpointStatistics
    from .vring_bus import RpmsgBus
    from .wire import ADDR_ANY, HDR_SIZE, NS_ADDR, RESERVED_ADDRESSES, NsFlags

__all__ = [
    "ADDR_ANY",
    "DEFAULT",
    "DEFAULT_SEND_TIMEOUT",
    "DROP_REASONS",
    "HDR_SIZE",
    "NS_ADDR",
    "RESERVED_ADDRESSES",
    "AddressInUseError",
    "AddressTypeError",
    "ArgumentTypeError",
    "Bus",
    "BusClosedError",
    "BusStatistics",
    "Channel",
    "Driver",
    "DriverError",
    "Endpoint",
    "EndpointClosedError",
    "EndpointOptions",
    "EndpointPort",
    "EndpointStatistics",
    "ForeignEndpointError",
    "InvalidAddressError",
    "InvalidArgumentError",
    "InvalidPayloadError",
    "InvalidServiceNameError",
    "Message",
    "NoBufferError",
    "NsFlags",
    "Overflow",
    "PayloadTooLargeError",
    "RpmsgBus",
    "RpmsgError",
    "RpmsgTimeoutError",
    "TransportInUseError",
    "VdevSetupError",
    "open_bus",
    "register_bus",
]

# The module that defines each public name (tests/unit/test_package_exports.py checks both
# lists agree).
_MODULES = {
    "channel": ("Channel", "Driver"),
    "endpoint": ("Endpoint",),
    "errors": tuple(n for n in __all__ if n.endswith("Error")),
    "message": ("DEFAULT", "EndpointOptions", "Message", "Overflow"),
    "open": ("open_bus", "register_bus"),
    "protocol": ("Bus", "EndpointPort"),
    "stats": ("DROP_REASONS", "BusStatistics", "EndpointStatistics"),
    "core_bus": ("DEFAULT_SEND_TIMEOUT",),
    "vring_bus": ("RpmsgBus",),
    "wire": ("ADDR_ANY", "HDR_SIZE", "NS_ADDR", "RESERVED_ADDRESSES", "NsFlags"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
