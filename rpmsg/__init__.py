"""rpmsg: named channels and addressed endpoints over virtio split vrings.

Wire compatible with the Linux kernel's virtio_rpmsg_bus and with OpenAMP, in both roles.
"""

from .bus import DEFAULT_SEND_TIMEOUT, BusStatistics, RpmsgBus
from .channel import Channel, Driver
from .endpoint import DEFAULT, Endpoint, EndpointStatistics, Message, Overflow
from .engine import DROP_REASONS, VdevSetupError
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
    "AddressTypeError",
    "ArgumentTypeError",
    "BusClosedError",
    "BusStatistics",
    "Channel",
    "Driver",
    "DriverError",
    "Endpoint",
    "EndpointClosedError",
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
]
