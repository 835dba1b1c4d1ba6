"""A register-level model of the OMAP4 parts the PandaBoard driver touches."""

from .board import OmapModel
from .bus import ModelBus, ModelError
from .core import CoreModel
from .mailbox import MailboxModel
from .mmu import MmuFault, MmuModel
from .port import CoreFactory, CorePort, RemoteCore
from .prcm import PrcmModel
from .uio import FakeUio, build_sysfs

__all__ = [
    "CoreFactory",
    "CoreModel",
    "CorePort",
    "FakeUio",
    "MailboxModel",
    "MmuFault",
    "MmuModel",
    "ModelBus",
    "ModelError",
    "OmapModel",
    "PrcmModel",
    "RemoteCore",
    "build_sysfs",
]
