"""remoteproc: boot, watch and recover remote processors, as Linux's remoteproc does.

``from remoteproc import RemoteprocManager`` gives the public API; each name is imported from
its module on first use, so the pure cores (:mod:`remoteproc.lifecycle`,
:mod:`remoteproc.recovery`, :mod:`remoteproc.crash_plan`, :mod:`remoteproc.rsc_table`) import
alone without the async shell. Firmware images are built with :mod:`remoteproc.elfwriter` and
resource tables parsed and built with :mod:`remoteproc.rsc_table`.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".crash_plan": ("CrashPlan", "CrashPlanError", "plan_crash"),
        ".errors": (
            "ArgumentTypeError",
            "BootError",
            "CrashReport",
            "CrashedError",
            "DevmemNotAllowedError",
            "FirmwareError",
            "FirmwareSourceError",
            "MemoryMapError",
            "ProcessorNotFoundError",
            "RecoveryPolicyError",
            "RegistrationError",
            "RemoteprocError",
            "ResourceTableError",
            "StateError",
        ),
        ".firmware": ("load_firmware", "load_firmware_file"),
        ".image": ("FirmwareImage",),
        ".lifecycle": ("Lifecycle",),
        ".loader": ("LoadedImage",),
        ".manager": ("RemoteprocManager",),
        ".memory": ("PhysicalMemory",),
        ".observe": ("RemoteProcStatistics",),
        ".platform": ("PlatformDriver", "RprocEvents"),
        ".recovery": ("RecoveryPolicy",),
        ".rproc": ("FirmwareSource", "ProcessorOwner", "RemoteProc"),
        ".states": ("Action", "CrashKind", "LifecycleStatistics", "State", "Step", "Transition"),
    },
)

if TYPE_CHECKING:
    from .crash_plan import CrashPlan as CrashPlan
    from .crash_plan import CrashPlanError as CrashPlanError
    from .crash_plan import plan_crash as plan_crash
    from .errors import ArgumentTypeError as ArgumentTypeError
    from .errors import BootError as BootError
    from .errors import CrashedError as CrashedError
    from .errors import CrashReport as CrashReport
    from .errors import DevmemNotAllowedError as DevmemNotAllowedError
    from .errors import FirmwareError as FirmwareError
    from .errors import FirmwareSourceError as FirmwareSourceError
    from .errors import MemoryMapError as MemoryMapError
    from .errors import ProcessorNotFoundError as ProcessorNotFoundError
    from .errors import RecoveryPolicyError as RecoveryPolicyError
    from .errors import RegistrationError as RegistrationError
    from .errors import RemoteprocError as RemoteprocError
    from .errors import ResourceTableError as ResourceTableError
    from .errors import StateError as StateError
    from .firmware import load_firmware as load_firmware
    from .firmware import load_firmware_file as load_firmware_file
    from .image import FirmwareImage as FirmwareImage
    from .lifecycle import Lifecycle as Lifecycle
    from .loader import LoadedImage as LoadedImage
    from .manager import RemoteprocManager as RemoteprocManager
    from .memory import PhysicalMemory as PhysicalMemory
    from .observe import RemoteProcStatistics as RemoteProcStatistics
    from .platform import PlatformDriver as PlatformDriver
    from .platform import RprocEvents as RprocEvents
    from .recovery import RecoveryPolicy as RecoveryPolicy
    from .rproc import FirmwareSource as FirmwareSource
    from .rproc import ProcessorOwner as ProcessorOwner
    from .rproc import RemoteProc as RemoteProc
    from .states import Action as Action
    from .states import CrashKind as CrashKind
    from .states import LifecycleStatistics as LifecycleStatistics
    from .states import State as State
    from .states import Step as Step
    from .states import Transition as Transition
