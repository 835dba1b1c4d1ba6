"""The Linux kernel as the rpmsg host and remoteproc: the same aioamp API over ``/dev/rpmsg*``,
``/sys/bus/rpmsg`` and ``/sys/class/remoteproc`` (docs/linux.md). A model of the remoteproc
sysfs to test against is :mod:`platforms.linux.model`.

Names are imported lazily, on first use: the pure modules (:mod:`.uapi`, :mod:`.sysfs_text`,
:mod:`.errors`, :mod:`.url`, :mod:`.rproc_sysfs`) load no event loop or socket.
"""

from typing import TYPE_CHECKING

from transports._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    globals(),
    {
        ".bus": ("DEFAULT_MTU", "LinuxRpmsgBus"),
        ".errors": ("KernelError", "RemoteprocPermissionError", "RpmsgPermissionError"),
        ".files": ("HostFiles", "KernelFiles"),
        ".firmware": ("FirmwareConflictError", "FirmwareLocationError", "FirmwareStore"),
        ".remoteproc": ("LinuxRemoteProc", "LinuxRemoteProcStatistics"),
        ".rproc_files": ("ProcessorGoneError", "list_remoteprocs"),
        ".rpmsg_sysfs": ("ChannelBoundError",),
        ".tty": ("RpmsgTty",),
        ".url": ("LinuxConfig", "linux_config"),
    },
)

if TYPE_CHECKING:
    from .bus import DEFAULT_MTU as DEFAULT_MTU
    from .bus import LinuxRpmsgBus as LinuxRpmsgBus
    from .errors import KernelError as KernelError
    from .errors import RemoteprocPermissionError as RemoteprocPermissionError
    from .errors import RpmsgPermissionError as RpmsgPermissionError
    from .files import HostFiles as HostFiles
    from .files import KernelFiles as KernelFiles
    from .firmware import FirmwareConflictError as FirmwareConflictError
    from .firmware import FirmwareLocationError as FirmwareLocationError
    from .firmware import FirmwareStore as FirmwareStore
    from .remoteproc import LinuxRemoteProc as LinuxRemoteProc
    from .remoteproc import LinuxRemoteProcStatistics as LinuxRemoteProcStatistics
    from .rpmsg_sysfs import ChannelBoundError as ChannelBoundError
    from .rproc_files import ProcessorGoneError as ProcessorGoneError
    from .rproc_files import list_remoteprocs as list_remoteprocs
    from .tty import RpmsgTty as RpmsgTty
    from .url import LinuxConfig as LinuxConfig
    from .url import linux_config as linux_config
