"""Errors of the User-Mode Linux harness, in remoteproc's tree like every platform's.

A caller's mistake (a bad argument) and the kernel's own failure (it crashed, hung, or the guest
command failed) are different errors; each mixes in the matching builtin.
"""

from __future__ import annotations

from remoteproc.errors import RemoteprocError


class UmlError(RemoteprocError):
    """Root of the UML harness's errors."""


class UmlArgumentError(UmlError, ValueError):
    """A boot parameter the kernel command line cannot carry (whitespace, a ':' in a socket
    path, a malformed memory size): the caller's mistake, raised before anything starts."""


class KernelNotFoundError(UmlError, FileNotFoundError):
    """No kernel binary (or module) where one was looked for; the message says how to build
    it."""


class KernelTimeoutError(UmlError, TimeoutError):
    """The kernel did not halt (or print an awaited line) in time; it was killed."""


class KernelExitedError(UmlError, ChildProcessError):
    """The kernel exited before printing an awaited line."""


class GuestCommandError(UmlError, ChildProcessError):
    """The guest's command failed, or never finished because the kernel died first."""
