"""The kernel's errnos as typed errors, and the permission hints (platforms.linux.errors)."""

from __future__ import annotations

import errno

import pytest

from platforms.linux.errors import (
    KernelError,
    RemoteprocPermissionError,
    RpmsgPermissionError,
    permission_hint,
    remoteproc_permission_error,
    rpmsg_error,
)
from remoteproc.errors import RemoteprocError
from rpmsg.errors import (
    AddressInUseError,
    EndpointClosedError,
    NoBufferError,
    PayloadTooLargeError,
    RpmsgError,
)


@pytest.mark.parametrize(
    ("err", "action", "kind", "builtin"),
    [
        (errno.EMSGSIZE, "write", PayloadTooLargeError, ValueError),
        (errno.EAGAIN, "write", NoBufferError, BlockingIOError),
        (errno.EPIPE, "read", EndpointClosedError, ConnectionError),
        (errno.ENETRESET, "open", EndpointClosedError, ConnectionError),
        (errno.ENODEV, "write", EndpointClosedError, ConnectionError),
        (errno.EBUSY, "open", AddressInUseError, ValueError),
        (errno.EACCES, "open", RpmsgPermissionError, PermissionError),
        (errno.EPERM, "write", RpmsgPermissionError, PermissionError),
        (errno.EIO, "write", KernelError, OSError),
        (errno.EBUSY, "write", KernelError, OSError),  # EBUSY means "in use" only on open
    ],
)
def test_rpmsg_errnos(err: int, action: str, kind: type, builtin: type) -> None:
    exc = rpmsg_error(err, "/dev/rpmsg3", action)
    assert type(exc) is kind
    assert isinstance(exc, RpmsgError) and isinstance(exc, builtin)
    assert "/dev/rpmsg3" in str(exc)


def test_an_unexpected_errno_keeps_errno_and_file() -> None:
    exc = rpmsg_error(errno.EIO, "/dev/rpmsg3", "write")
    assert isinstance(exc, KernelError)
    assert exc.errno == errno.EIO and exc.filename == "/dev/rpmsg3"
    assert "EIO" in str(exc)


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/dev/rpmsg_ctrl0", 'KERNEL=="rpmsg*", GROUP="rpmsg", MODE="0660"'),
        ("/dev/rpmsg12", 'KERNEL=="rpmsg*", GROUP="rpmsg", MODE="0660"'),
        ("/dev/ttyRPMSG0", 'KERNEL=="ttyRPMSG*", GROUP="dialout"'),
        (
            "/sys/bus/rpmsg/devices/virtio0.echo.-1.1025/driver_override",
            "chgrp rpmsg /sys%p/driver_override",
        ),
        ("/sys/bus/rpmsg/drivers/rpmsg_chrdev/bind", 'KERNEL=="rpmsg_chrdev"'),
        (
            "/sys/class/remoteproc/remoteproc0/state",
            'SUBSYSTEM=="remoteproc", ACTION=="add", RUN+="/bin/chgrp rproc /sys%p/state',
        ),
        ("/sys/kernel/debug/remoteproc/remoteproc0/trace0", "mode=0750,gid=rproc"),
        ("/lib/firmware/aioamp/x.elf", "d /lib/firmware/aioamp 2775 root rproc -"),
    ],
)
def test_each_kind_of_file_gets_its_rule(path: str, rule: str) -> None:
    assert rule in permission_hint(path)


def test_the_permission_error_names_the_file_and_the_rule() -> None:
    exc = rpmsg_error(errno.EACCES, "/dev/rpmsg_ctrl0", "open")
    text = str(exc)
    assert "/dev/rpmsg_ctrl0" in text and 'GROUP="rpmsg"' in text and "docs/linux.md" in text
    assert exc.errno == errno.EACCES


def test_remoteproc_permission_errors() -> None:
    exc = remoteproc_permission_error(
        errno.EACCES, "/sys/class/remoteproc/remoteproc0/state", "write"
    )
    assert isinstance(exc, RemoteprocPermissionError)
    assert isinstance(exc, RemoteprocError) and isinstance(exc, PermissionError)
    assert "chgrp rproc" in str(exc)
    assert remoteproc_permission_error(errno.EBUSY, "/x", "write") is None
