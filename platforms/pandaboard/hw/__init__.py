"""OMAP4 backend: the system mailbox over physical memory, and Linux UIO interrupts.

Concrete backend (DESIGN.md): imports only the stdlib, anyio, attrs, python-periphery (lazily)
and the abstract parts of :mod:`transports`; ``rpmsg`` never imports it.
"""

from .errors import MailboxError, Omap4Error, UioError
from .mailbox import (
    OMAP_MESSAGE_MAX,
    Mailbox,
    MailboxConfig,
    MailboxStatistics,
    OmapMessage,
)
from .mmio import DevMemBus, PhysicalBus, RegisterWindow
from .uio import MmapWindow, UioDevice, UioMap, find_uio, uio_maps

__all__ = [
    "OMAP_MESSAGE_MAX",
    "DevMemBus",
    "Mailbox",
    "MailboxConfig",
    "MailboxError",
    "MailboxStatistics",
    "MmapWindow",
    "Omap4Error",
    "OmapMessage",
    "PhysicalBus",
    "RegisterWindow",
    "UioDevice",
    "UioError",
    "UioMap",
    "find_uio",
    "uio_maps",
]
