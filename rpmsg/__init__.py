"""rpmsg: named channels and addressed endpoints over virtio split vrings.

Wire compatible with the Linux kernel's virtio_rpmsg_bus and with OpenAMP, in both roles.
"""

from .bus import DEFAULT_SEND_TIMEOUT, BusStatistics, RpmsgBus
from .channel import Channel, Driver
from .endpoint import DEFAULT, Endpoint, EndpointStatistics, Message, Overflow
from .engine import DROP_REASONS, VdevSetupError
from .errors import (
    AddressInUseError,
    BusClosedError,
    DriverError,
    EndpointClosedError,
    InvalidAddressError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgError,
    RpmsgTimeoutError,
)
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
    "BusClosedError",
    "BusStatistics",
    "Channel",
    "Driver",
    "DriverError",
    "Endpoint",
    "EndpointClosedError",
    "EndpointStatistics",
    "InvalidAddressError",
    "Message",
    "NoBufferError",
    "NsFlags",
    "Overflow",
    "PayloadTooLargeError",
    "RpmsgBus",
    "RpmsgError",
    "RpmsgTimeoutError",
    "VdevSetupError",
]
