"""What the UML guest runs, and where the kernel is.

Theory of operation: the guest's root file system is the host's ``/`` over hostfs, read-only, so
the guest sees the host's ``/bin/sh``, kmod's ``insmod``, this project's virtualenv Python and
any file the harness writes into a host temporary directory, all at the same paths as on the
host. The generated init script mounts ``/proc`` and ``/sys`` (``/dev`` is devtmpfs, mounted by
the kernel), runs the caller's command with its output on the console, prints the command's
exit status on a marker line the harness parses, and halts the machine with ``halt -f``
(systemd's ``halt`` with ``-f`` calls reboot(2) directly: no init system needed).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from .errors import KernelNotFoundError, UmlArgumentError

#: Environment variable naming the kernel binary (default: build/uml/linux of the checkout).
KERNEL_ENV = "AIOAMP_UML_KERNEL"
#: The marker line the init script prints after the command: ``<marker> <status>``.
STATUS_MARKER = "aioamp-uml: command exit status"
#: The console line printed when halt(8) returned, i.e. failed to halt.
HALT_FAILED_MARKER = "aioamp-uml: halt failed"

_REPO = Path(__file__).resolve().parents[2]
_BUILD_HINT = (
    "build it with `make kernel` in the aioamp checkout (apt packages: linux-source-6.12 "
    f"flex bison bc kmod), or point {KERNEL_ENV} at a kernel built from kernel/"
)
#: A command-line word: no whitespace or quotes (UML joins its argv with spaces).
_WORD = re.compile(r'[^\s"]+')
#: virtio device id of rpmsg (include/uapi/linux/virtio_ids.h: VIRTIO_ID_RPMSG).
VIRTIO_ID_RPMSG = 7


def default_kernel_path() -> Path:
    """``$AIOAMP_UML_KERNEL``, else ``build/uml/linux`` in the checkout this module is in."""
    env = os.environ.get(KERNEL_ENV)
    return Path(env) if env else _REPO / "build" / "uml" / "linux"


def find_kernel(path: str | os.PathLike[str] | None = None) -> Path:
    """The kernel binary at ``path`` (default: :func:`default_kernel_path`), checked to be an
    executable file.

    Raises:
        KernelNotFoundError: there is none; the message says how to build one.
    """
    kernel = Path(path) if path is not None else default_kernel_path()
    if not kernel.is_file() or not os.access(kernel, os.X_OK):
        raise KernelNotFoundError(f"no User-Mode Linux kernel at {kernel}: {_BUILD_HINT}")
    return kernel.resolve()


def find_module(name: str, kernel: str | os.PathLike[str] | None = None) -> Path:
    """The module ``name.ko`` that ``make kernel`` put next to the kernel binary, e.g.
    ``find_module("rpmsg_client_sample")``.

    Raises:
        KernelNotFoundError: it is not there.
    """
    if not name or "/" in name:
        raise UmlArgumentError(f"module name {name!r} is not a plain name")
    binary = Path(kernel) if kernel is not None else default_kernel_path()
    module = binary.parent / f"{name}.ko"
    if not module.is_file():
        raise KernelNotFoundError(f"no kernel module {module}: {_BUILD_HINT}")
    return module.resolve()


def insmod_command(module: str | os.PathLike[str], *params: str) -> str:
    """A guest shell line loading ``module`` (a host path: hostfs shows it to the guest) with
    kmod's ``insmod``, which calls finit_module(2) on it."""
    return shlex.join(["insmod", os.fspath(module), *params])


def wait_for_log_command(text: str, timeout: float = 20.0) -> str:
    """A guest shell line that waits (polling ``dmesg`` every 10 ms, at most ``timeout``
    seconds) until the kernel log holds ``text`` (a fixed string), then exits 0; else prints
    ``guest: timed out waiting for ...`` and exits 1."""
    if not timeout > 0:
        raise UmlArgumentError(f"timeout {timeout!r} is not a positive number of seconds")
    tries = max(1, round(timeout * 100))
    quoted = shlex.quote(text)
    return (
        f"for i in $(seq {tries}); do dmesg | grep -qF -- {quoted} && exit 0; sleep 0.01; "
        f"done; echo guest: timed out waiting for {quoted}; exit 1"
    )


def python_command(code: str, *args: str) -> list[str]:
    """argv running ``code`` with this interpreter (the project's virtualenv Python, which the
    guest sees read-only through hostfs)."""
    return [sys.executable, "-c", code, *args]


def check_word(what: str, value: str) -> str:
    """``value`` if the kernel command line can carry it as one word.

    Raises:
        UmlArgumentError: it is empty or holds whitespace or a double quote.
    """
    if not _WORD.fullmatch(value):
        raise UmlArgumentError(f"{what} {value!r} cannot be passed on the kernel command line")
    return value


def init_script(
    command: str | Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
) -> str:
    """The guest's init: mount, run ``command``, report its status, halt.

    Args:
        command: a shell snippet (run by ``/bin/sh``, so ``exit`` in it ends only it) or an
            argv list (run as is).
        env: extra environment for the command.
    """
    if isinstance(command, str):
        run = f"/bin/sh -c {shlex.quote(command)}"
    else:
        if not command:
            raise UmlArgumentError("the guest command is an empty argv")
        run = shlex.join(command)
    exports = []
    for key, value in (env or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UmlArgumentError(f"environment name {key!r} is not a shell identifier")
        exports.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(
        [
            "#!/bin/sh",
            "# Generated by platforms.uml: the UML guest's init.",
            "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "export HOME=/ TERM=dumb PYTHONDONTWRITEBYTECODE=1",
            *exports,
            "mount -t proc proc /proc",
            "mount -t sysfs sysfs /sys",
            # DEVTMPFS_MOUNT mounts /dev once the root is up; a kernel without it still works.
            "[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev",
            "cd /",
            run,
            f'echo "{STATUS_MARKER} $?"',
            "halt -f",
            f'echo "{HALT_FAILED_MARKER} ($?)"',
            # init must not exit (the kernel would panic): wait for the harness's timeout.
            "while :; do sleep 3600; done",
            "",
        ]
    )


@attrs.frozen
class VirtioDevice:
    """A ``virtio_uml.device=SOCKET:ID`` boot argument: the kernel connects to the vhost-user
    backend listening on ``socket`` and drives it as a virtio device of type ``device_id``."""

    socket: str | os.PathLike[str]
    device_id: int = VIRTIO_ID_RPMSG

    def boot_arg(self) -> str:
        path = check_word("virtio socket path", os.fspath(self.socket))
        if ":" in path:
            raise UmlArgumentError(f"virtio socket path {path!r} holds a ':'")
        if not 0 <= self.device_id < 1 << 32:
            raise UmlArgumentError(f"virtio device id {self.device_id} is not a u32")
        return f"virtio_uml.device={path}:{self.device_id}"
