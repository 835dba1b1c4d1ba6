"""The kernel's errors as aioamp's typed errors, and what to do about a missing permission. Pure.

Theory of operation: every failing system call on an rpmsg char device, a sysfs attribute or a
firmware directory comes here with the errno it got and the file it touched. What an errno
means depends on the file: EINVAL from a remoteproc ``state`` write is a command the kernel
refused, from an endpoint's ``open()`` an address that is taken. The mapping follows the
kernel source the docstrings cite; anything unforeseen becomes a :class:`KernelError`
(an ``OSError`` that keeps the errno and the path).

A missing permission is the error non-root users meet first, and its fix is not obvious: the
message names the file and the udev rule that grants a group access to it (docs/linux.md has
the full set).
"""

from __future__ import annotations

import errno
import fnmatch

from remoteproc.errors import RemoteprocError
from rpmsg.errors import (
    AddressInUseError,
    EndpointClosedError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgError,
)

#: errnos meaning "the device or its endpoint went away": rpmsg_char.c returns EPIPE once the
#: channel's endpoint is destroyed, ENETRESET on open after; a removed /dev node gives ENXIO,
#: ENODEV or ENOENT.
GONE = frozenset({errno.EPIPE, errno.ENETRESET, errno.ENXIO, errno.ENODEV, errno.ENOENT})
_DENIED = frozenset({errno.EACCES, errno.EPERM})

_CHRDEV_RULE = 'SUBSYSTEM=="rpmsg", KERNEL=="rpmsg*", GROUP="rpmsg", MODE="0660"'
_TTY_RULE = 'SUBSYSTEM=="tty", KERNEL=="ttyRPMSG*", GROUP="dialout", MODE="0660"'


def _run_rule(match: str, group: str, files: str) -> str:
    paths = " ".join(f"/sys%p/{f}" for f in files.split())
    return f'{match}, RUN+="/bin/chgrp {group} {paths}", RUN+="/bin/chmod g+w {paths}"'


#: (glob of the kernel path, how to grant a group access). First match wins.
UDEV_HINTS: tuple[tuple[str, str], ...] = (
    ("/dev/rpmsg*", "a udev rule: " + _CHRDEV_RULE),
    ("/dev/ttyRPMSG*", "a udev rule: " + _TTY_RULE),
    (
        "/sys/bus/rpmsg/devices/*/driver_override",
        "a udev rule: "
        + _run_rule('SUBSYSTEM=="rpmsg", ACTION=="add"', "rpmsg", "driver_override"),
    ),
    (
        "/sys/bus/rpmsg/drivers/*/bind",
        "a udev rule: "
        + _run_rule('SUBSYSTEM=="drivers", KERNEL=="rpmsg_chrdev", ACTION=="add"', "rpmsg", "bind")
        + " (or bind the channel in udev itself: RUN+=\"/bin/sh -c 'echo rpmsg_chrdev > "
        "/sys%p/driver_override; echo %k > /sys/bus/rpmsg/drivers/rpmsg_chrdev/bind'\")",
    ),
    (
        "/sys/class/remoteproc/*",
        "a udev rule: "
        + _run_rule(
            'SUBSYSTEM=="remoteproc", ACTION=="add"', "rproc", "state firmware recovery coredump"
        ),
    ),
    (
        "/sys/kernel/debug/*",
        "debugfs access: it is mounted root-only (mode 0700) by default; mount it with "
        "`mount -t debugfs -o remount,mode=0750,gid=rproc debugfs /sys/kernel/debug`",
    ),
    (
        "/lib/firmware/*",
        "a firmware directory your group may write: a tmpfiles.d line "
        "`d /lib/firmware/aioamp 2775 root rproc -`",
    ),
    (
        "/sys/module/firmware_class/parameters/path",
        "root: the firmware search path is global; set it at boot instead "
        "(firmware_class.path=DIR on the kernel command line)",
    ),
)


def permission_hint(path: str) -> str:
    """How to grant access to the kernel file ``path`` (its logical path, e.g.
    ``/sys/class/remoteproc/remoteproc0/state``)."""
    for pattern, hint in UDEV_HINTS:
        if fnmatch.fnmatchcase(path, pattern):
            return hint
    return "root, or a udev rule granting your group access (see docs/linux.md)"


def permission_message(path: str, action: str) -> str:
    return (
        f"permission denied to {action} {path}: run as root, or grant your group access with "
        f"{permission_hint(path)} (docs/linux.md lists the rules)"
    )


class KernelError(RpmsgError, OSError):
    """A system call on a kernel file failed in a way this library does not expect; keeps the
    errno (``.errno``) and the file (``.filename``)."""


class RpmsgPermissionError(RpmsgError, PermissionError):
    """An rpmsg device or attribute this process may not open; the message says which udev
    rule grants access."""


class RemoteprocPermissionError(RemoteprocError, PermissionError):
    """A remoteproc sysfs attribute, the debugfs trace or a firmware directory this process
    may not use; the message says how to grant access."""


def _strerror(err: int) -> str:
    return errno.errorcode.get(err, f"errno {err}")


def kernel_error(err: int, path: str, action: str) -> KernelError:
    exc = KernelError(err, f"{action} {path}: {_strerror(err)}")
    exc.filename = path
    return exc


def rpmsg_error(err: int, path: str, action: str) -> RpmsgError:
    """What a failed open/read/write/ioctl on an rpmsg device means, as a typed error
    (rpmsg_char.c, rpmsg_ctrl.c, virtio_rpmsg_bus.c):

    * EMSGSIZE: the payload is over the buffer size (rpmsg_send_offchannel_raw);
    * EAGAIN: no free tx buffer under O_NONBLOCK (rpmsg_eptdev_write_iter turns the bus's
      ENOMEM into it);
    * EPIPE, ENETRESET, ENXIO, ENODEV, ENOENT: the endpoint or its channel is gone;
    * EBUSY on open: another process has the endpoint open (one open per endpoint device);
    * EACCES, EPERM: see :func:`permission_message`.
    """
    if err == errno.EMSGSIZE:
        return PayloadTooLargeError(f"{path}: the kernel refused the payload as too large")
    if err == errno.EAGAIN:
        return NoBufferError(f"{path}: every tx buffer is in flight")
    if err in GONE:
        return EndpointClosedError(f"{path}: the endpoint or its channel is gone ({action})")
    if err == errno.EBUSY and action == "open":
        return AddressInUseError(f"{path} is open in another process (one open per endpoint)")
    if err in _DENIED:
        return RpmsgPermissionError(err, permission_message(path, action))
    return kernel_error(err, path, action)


def remoteproc_permission_error(err: int, path: str, action: str) -> RemoteprocError | None:
    """The permission error for ``err`` on ``path``, or None if ``err`` is something else."""
    if err in _DENIED:
        return RemoteprocPermissionError(err, permission_message(path, action))
    return None
