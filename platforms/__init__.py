"""Platforms: the remoteproc platform drivers (``sim``, ``pandaboard``, ``uml``) and the
firmware-program runtime their simulated cores share (``runtime``).

``from platforms import SimPlatform, create_platform`` gives the public API; each name is
imported from its module on first use, so importing one platform does not import the others
(nor their optional dependencies). :func:`create_platform` makes a driver by kind name.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".pandaboard": ("PandaBoardPlatform",),
        ".registry": (
            "PlatformUnavailableError",
            "create_platform",
            "platform_kinds",
            "register_platform",
        ),
        ".runtime": ("Faults", "FirmwareContext", "register_program"),
        ".sim": ("SimPlatform", "build_sample_image"),
        ".uml": ("UmlKernel",),
    },
)

if TYPE_CHECKING:
    from .pandaboard import PandaBoardPlatform as PandaBoardPlatform
    from .registry import PlatformUnavailableError as PlatformUnavailableError
    from .registry import create_platform as create_platform
    from .registry import platform_kinds as platform_kinds
    from .registry import register_platform as register_platform
    from .runtime import Faults as Faults
    from .runtime import FirmwareContext as FirmwareContext
    from .runtime import register_program as register_program
    from .sim import SimPlatform as SimPlatform
    from .sim import build_sample_image as build_sample_image
    from .uml import UmlKernel as UmlKernel
