"""User-Mode Linux: the real Linux kernel (``make kernel`` builds it) as a process, booted with
hostfs as its root, for tests and demos where the kernel is the rpmsg host."""

from .errors import (
    GuestCommandError,
    KernelExitedError,
    KernelNotFoundError,
    KernelTimeoutError,
    UmlArgumentError,
    UmlError,
)
from .guest import (
    KERNEL_ENV,
    VIRTIO_ID_RPMSG,
    VirtioDevice,
    default_kernel_path,
    find_kernel,
    find_module,
    init_script,
    insmod_command,
    python_command,
    wait_for_log_command,
)
from .kernel import UmlKernel
from .run import EXPECTED_WARNINGS, KernelRun, command_status, kernel_faults

__all__ = [
    "EXPECTED_WARNINGS",
    "KERNEL_ENV",
    "VIRTIO_ID_RPMSG",
    "GuestCommandError",
    "KernelExitedError",
    "KernelNotFoundError",
    "KernelRun",
    "KernelTimeoutError",
    "UmlArgumentError",
    "UmlError",
    "UmlKernel",
    "VirtioDevice",
    "command_status",
    "default_kernel_path",
    "find_kernel",
    "find_module",
    "init_script",
    "insmod_command",
    "kernel_faults",
    "python_command",
    "wait_for_log_command",
]
