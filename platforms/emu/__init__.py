"""The ``emu`` platform: firmware ELFs executed on an emulated Cortex-M3/M4 (unicorn).

:class:`EmuPlatform` runs an image on the aioamp virtual board (docs/emulated-firmware.md);
:class:`CortexM` is the core itself, which boards (the PandaBoard model too) attach to their
own buses. Needs the ``emu`` extra (``pip install 'aioamp[emu]'``); names are imported on first
use, so ``import platforms.emu`` alone does not load unicorn.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".attach": ("AttachedCore", "PhysicalPort", "TranslatingBus"),
        ".base": ("CoreStatistics", "Limits"),
        ".core": ("CortexM",),
        ".faults": ("CoreFault", "FaultKind"),
        ".memory": ("BusError", "CoreBus", "Stall", "Window"),
        ".platform": ("EmuPlatform", "EmuStatistics"),
        ".images": ("project_firmware",),
    },
)

if TYPE_CHECKING:
    from .attach import AttachedCore as AttachedCore
    from .attach import PhysicalPort as PhysicalPort
    from .attach import TranslatingBus as TranslatingBus
    from .base import CoreStatistics as CoreStatistics
    from .base import Limits as Limits
    from .core import CortexM as CortexM
    from .faults import CoreFault as CoreFault
    from .faults import FaultKind as FaultKind
    from .images import project_firmware as project_firmware
    from .memory import BusError as BusError
    from .memory import CoreBus as CoreBus
    from .memory import Stall as Stall
    from .memory import Window as Window
    from .platform import EmuPlatform as EmuPlatform
    from .platform import EmuStatistics as EmuStatistics
