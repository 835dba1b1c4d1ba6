"""rpmsg: named channels and addressed endpoints, over virtio split vrings or any other bus.

Wire compatible with the Linux kernel's virtio_rpmsg_bus and with OpenAMP, in both roles.

The public names are imported lazily, on first use (a module ``__getattr__``): ``import
rpmsg.core`` (or ``rpmsg.wire``, ``rpmsg.addresses``, ``rpmsg.rings``), the pure parts, loads
no event loop, socket or shell module.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".channel": (
            "Channel",
            "Driver",
        ),
        ".core_bus": ("DEFAULT_SEND_TIMEOUT",),
        ".endpoint": ("Endpoint",),
        ".errors": (
            "AddressInUseError",
            "AddressTypeError",
            "ArgumentTypeError",
            "BufferInUseError",
            "BufferReleasedError",
            "BusClosedError",
            "DriverError",
            "EndpointClosedError",
            "ForeignEndpointError",
            "InvalidAddressError",
            "InvalidArgumentError",
            "InvalidPayloadError",
            "InvalidServiceNameError",
            "NoBufferError",
            "PayloadTooLargeError",
            "RpmsgError",
            "RpmsgTimeoutError",
            "TransportInUseError",
            "UnsupportedOperationError",
            "VdevSetupError",
        ),
        ".message": (
            "DEFAULT",
            "EndpointOptions",
            "Message",
            "Overflow",
        ),
        ".open": (
            "open_bus",
            "register_bus",
        ),
        ".protocol": (
            "Bus",
            "EndpointPort",
        ),
        ".stats": (
            "BusStatistics",
            "DROP_REASONS",
            "EndpointStatistics",
        ),
        ".tap": (
            "Capture",
            "Direction",
            "LinkInfo",
            "MemoryCapture",
            "NsEvent",
            "TapRecord",
            "capturing",
        ),
        ".vring_bus": ("RpmsgBus",),
        ".zc_endpoint": ("ZeroCopyEndpoint",),
        ".zero_copy": (
            "HeldMessage",
            "TxBuffer",
        ),
        ".wire": (
            "ADDR_ANY",
            "HDR_SIZE",
            "NS_ADDR",
            "NsFlags",
            "RESERVED_ADDRESSES",
        ),
    },
)

if TYPE_CHECKING:
    from .channel import Channel as Channel
    from .channel import Driver as Driver
    from .core_bus import DEFAULT_SEND_TIMEOUT as DEFAULT_SEND_TIMEOUT
    from .endpoint import Endpoint as Endpoint
    from .errors import AddressInUseError as AddressInUseError
    from .errors import AddressTypeError as AddressTypeError
    from .errors import ArgumentTypeError as ArgumentTypeError
    from .errors import BufferInUseError as BufferInUseError
    from .errors import BufferReleasedError as BufferReleasedError
    from .errors import BusClosedError as BusClosedError
    from .errors import DriverError as DriverError
    from .errors import EndpointClosedError as EndpointClosedError
    from .errors import ForeignEndpointError as ForeignEndpointError
    from .errors import InvalidAddressError as InvalidAddressError
    from .errors import InvalidArgumentError as InvalidArgumentError
    from .errors import InvalidPayloadError as InvalidPayloadError
    from .errors import InvalidServiceNameError as InvalidServiceNameError
    from .errors import NoBufferError as NoBufferError
    from .errors import PayloadTooLargeError as PayloadTooLargeError
    from .errors import RpmsgError as RpmsgError
    from .errors import RpmsgTimeoutError as RpmsgTimeoutError
    from .errors import TransportInUseError as TransportInUseError
    from .errors import UnsupportedOperationError as UnsupportedOperationError
    from .errors import VdevSetupError as VdevSetupError
    from .message import DEFAULT as DEFAULT
    from .message import EndpointOptions as EndpointOptions
    from .message import Message as Message
    from .message import Overflow as Overflow
    from .open import open_bus as open_bus
    from .open import register_bus as register_bus
    from .protocol import Bus as Bus
    from .protocol import EndpointPort as EndpointPort
    from .stats import DROP_REASONS as DROP_REASONS
    from .stats import BusStatistics as BusStatistics
    from .stats import EndpointStatistics as EndpointStatistics
    from .tap import Capture as Capture
    from .tap import Direction as Direction
    from .tap import LinkInfo as LinkInfo
    from .tap import MemoryCapture as MemoryCapture
    from .tap import NsEvent as NsEvent
    from .tap import TapRecord as TapRecord
    from .tap import capturing as capturing
    from .vring_bus import RpmsgBus as RpmsgBus
    from .wire import ADDR_ANY as ADDR_ANY
    from .wire import HDR_SIZE as HDR_SIZE
    from .wire import NS_ADDR as NS_ADDR
    from .wire import RESERVED_ADDRESSES as RESERVED_ADDRESSES
    from .wire import NsFlags as NsFlags
    from .zc_endpoint import ZeroCopyEndpoint as ZeroCopyEndpoint
    from .zero_copy import HeldMessage as HeldMessage
    from .zero_copy import TxBuffer as TxBuffer
